"""Fitting the logistic regression, choosing its threshold, and scoring it.

Preprocessing is refitted inside every CV fold, so the search never sees held-out statistics.
The threshold is chosen on out-of-fold predictions of the training split (validation data);
the test split is touched once, for the reported metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_predict,
    train_test_split,
)
from sklearn.pipeline import Pipeline

from model.schema import FEATURE_NAMES, TARGET
from training.features import build_preprocessor
from training.settings import TrainingSettings

log = logging.getLogger(__name__)

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class FitResult:
    pipeline: Pipeline  # fitted preprocessor + classifier
    best_c: float
    cv_roc_auc: float
    threshold: float
    threshold_rule: str
    metrics: dict[str, float]
    calibration: list[dict[str, float]]
    test_probabilities: np.ndarray


def choose_threshold(y: np.ndarray, probability: np.ndarray, rule: str, cost_ratio: float) -> float:
    """The cut-off on P(churn) chosen on validation predictions.

    max_f1: the candidate with the highest F1. min_cost: the lowest expected cost when a
    missed churner costs `cost_ratio` times a false alarm. Candidates are the distinct
    predicted probabilities, so the rule is exact, not grid-limited.
    """
    order = np.argsort(-probability, kind="stable")
    sorted_p, sorted_y = probability[order], y[order].astype(np.int64)
    # Predicting churn for the top k rows: true positives and false positives per k.
    true_pos = np.cumsum(sorted_y)
    false_pos = np.cumsum(1 - sorted_y)
    last_of_value = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    candidates = sorted_p[last_of_value]
    tp, fp = true_pos[last_of_value], false_pos[last_of_value]
    positives = true_pos[-1]
    if rule == "max_f1":
        score = 2 * tp / (tp + fp + positives)
        return float(candidates[int(np.argmax(score))])
    if rule == "min_cost":
        cost = cost_ratio * (positives - tp) + fp
        return float(candidates[int(np.argmin(cost))])
    raise ValueError(f"unknown threshold rule {rule!r}")


def calibration_table(y: np.ndarray, probability: np.ndarray) -> list[dict[str, float]]:
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    bins = np.clip(np.digitize(probability, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    table = []
    for b in range(CALIBRATION_BINS):
        members = bins == b
        if members.any():
            table.append(
                {
                    "lower": float(edges[b]),
                    "upper": float(edges[b + 1]),
                    "rows": float(members.sum()),
                    "mean_predicted": float(probability[members].mean()),
                    "observed_rate": float(y[members].mean()),
                }
            )
    return table


def fit(clean: pd.DataFrame, settings: TrainingSettings) -> FitResult:
    features = clean[list(FEATURE_NAMES)]
    labels = clean[TARGET].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        labels,
        test_size=settings.test_fraction,
        stratify=labels,
        random_state=settings.seed,
    )
    folds = StratifiedKFold(settings.cv_folds, shuffle=True, random_state=settings.seed)
    pipeline = Pipeline(
        [
            ("preprocess", build_preprocessor()),
            ("classifier", LogisticRegression(max_iter=2000)),
        ]
    )
    log.info(
        "searching C over %s with %d-fold stratified CV on %d rows",
        list(settings.c_grid),
        settings.cv_folds,
        len(x_train),
    )
    search = GridSearchCV(
        pipeline,
        {"classifier__C": list(settings.c_grid)},
        scoring="roc_auc",
        cv=folds,
        refit=True,
        verbose=0,
    )
    search.fit(x_train, y_train)
    best_c = float(search.best_params_["classifier__C"])
    log.info(
        "best C=%g (CV ROC AUC %.4f); choosing the threshold out of fold",
        best_c,
        search.best_score_,
    )

    validation_p = cross_val_predict(
        search.best_estimator_, x_train, y_train, cv=folds, method="predict_proba"
    )[:, 1]
    threshold = choose_threshold(
        y_train, validation_p, settings.threshold_rule, settings.cost_ratio
    )

    fitted: Pipeline = search.best_estimator_
    test_p = fitted.predict_proba(x_test)[:, 1]
    predicted = test_p >= threshold
    metrics = {
        "test_roc_auc": float(roc_auc_score(y_test, test_p)),
        "test_pr_auc": float(average_precision_score(y_test, test_p)),
        "test_f1": float(f1_score(y_test, predicted)),
        "test_precision": float(precision_score(y_test, predicted, zero_division=0)),
        "test_recall": float(recall_score(y_test, predicted)),
        "test_brier": float(brier_score_loss(y_test, test_p)),
        "cv_roc_auc": float(search.best_score_),
        "threshold": threshold,
        "train_rows": float(len(x_train)),
        "test_rows": float(len(x_test)),
    }
    calibration = calibration_table(y_test, test_p)
    metrics["test_expected_calibration_error"] = float(
        sum(b["rows"] * abs(b["mean_predicted"] - b["observed_rate"]) for b in calibration)
        / len(y_test)
    )
    return FitResult(
        pipeline=fitted,
        best_c=best_c,
        cv_roc_auc=float(search.best_score_),
        threshold=threshold,
        threshold_rule=settings.threshold_rule,
        metrics=metrics,
        calibration=calibration,
        test_probabilities=test_p,
    )


def reference_distributions(clean: pd.DataFrame, result: FitResult) -> dict[str, Any]:
    """Training-time distributions for later drift checks: quantiles, frequencies, scores."""
    quantiles = np.linspace(0, 1, 11)
    reference: dict[str, Any] = {"numeric_deciles": {}, "category_frequencies": {}}
    for name in FEATURE_NAMES:
        column = clean[name]
        if column.dtype.kind == "f":
            reference["numeric_deciles"][name] = [
                float(v) for v in np.nanquantile(column.to_numpy(), quantiles)
            ]
        else:
            reference["category_frequencies"][name] = {
                str(k): float(v) for k, v in column.value_counts(normalize=True).items()
            }
    counts, edges = np.histogram(result.test_probabilities, bins=20, range=(0, 1))
    reference["score_histogram"] = {"edges": edges.tolist(), "counts": counts.tolist()}
    return reference
