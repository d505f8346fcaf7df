"""Realized quality of one arm's scores against the delayed outcomes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class Reliability(BaseModel):
    """The reliability curve: per non-empty bin of equal width, mean score and churn rate."""

    mean_predicted: list[float]
    observed_rate: list[float]
    rows: list[int]


class Quality(BaseModel):
    rows: int
    positives: int
    base_rate: float
    mean_score: float
    # None where a metric needs both classes and the rows hold one.
    roc_auc: float | None
    pr_auc: float | None
    brier: float
    log_loss: float
    expected_calibration_error: float
    reliability: Reliability
    threshold: float | None
    precision: float
    recall: float | None


def _bin_index(scores: FloatArray, bins: int) -> IntArray:
    """Equal-width bins, bounds as in sklearn's calibration_curve (a bin holds its upper edge)."""
    return np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], scores).astype(np.int64)


def expected_calibration_error(outcomes: IntArray, scores: FloatArray, bins: int) -> float:
    """Row-weighted mean |mean score - churn rate| over equal-width score bins."""
    index = _bin_index(scores, bins)
    rows = np.bincount(index, minlength=bins)
    gap = np.abs(
        np.bincount(index, weights=scores, minlength=bins)
        - np.bincount(index, weights=outcomes, minlength=bins)
    )
    return float(gap.sum() / rows.sum())


def quality(
    outcomes: IntArray,
    scores: FloatArray,
    decisions: BoolArray,
    threshold: float | None,
    bins: int,
) -> Quality:
    both_classes = 0 < outcomes.sum() < outcomes.size
    observed, predicted = calibration_curve(outcomes, scores, n_bins=bins, strategy="uniform")
    rows = np.bincount(_bin_index(scores, bins), minlength=bins)
    return Quality(
        rows=int(outcomes.size),
        positives=int(outcomes.sum()),
        base_rate=float(outcomes.mean()),
        mean_score=float(scores.mean()),
        roc_auc=float(roc_auc_score(outcomes, scores)) if both_classes else None,
        pr_auc=float(average_precision_score(outcomes, scores)) if both_classes else None,
        brier=float(brier_score_loss(outcomes, scores)),
        log_loss=float(log_loss(outcomes, scores, labels=[0, 1])),
        expected_calibration_error=expected_calibration_error(outcomes, scores, bins),
        reliability=Reliability(
            mean_predicted=predicted.tolist(),
            observed_rate=observed.tolist(),
            rows=rows[rows > 0].tolist(),
        ),
        threshold=threshold,
        precision=float(precision_score(outcomes, decisions, zero_division=0)),
        recall=float(recall_score(outcomes, decisions)) if outcomes.any() else None,
    )
