"""Drift of served traffic against the training-time reference in a bundle's metadata.

The reference (training/estimator.py) holds deciles of numeric features, category frequencies
and a 20-bin histogram of test-set scores. Numeric features get PSI over the reference's decile
bins and the Wasserstein distance between served and reference deciles (central 80 %);
categorical ones get PSI and a chi-squared test of served against training counts,
Benjamini-Hochberg corrected across features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel
from scipy import stats

from model.spec import category_codes, parse_numbers

FloatArray = npt.NDArray[np.float64]

# Share given to a bin that one side leaves empty, so that PSI stays finite.
PSI_FLOOR = 1e-4
SCORE = "churn_probability"
# Reference quantile levels: deciles, 0 to 1.
_LEVELS = np.linspace(0, 1, 11)
# Levels at which the decile-interpolated quantile functions are compared (Wasserstein-1):
# the central 80 %, since the minimum and maximum (deciles 0 and 10) grow with the sample size.
_QUANTILE_POINTS = 0.1 + 0.8 * (np.arange(1000) + 0.5) / 1000


class FeatureDrift(BaseModel):
    feature: str
    kind: Literal["numeric", "categorical", "score"]
    rows: int
    psi: float
    statistic: Literal["wasserstein", "chi2"] | None = None
    value: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    drifted: bool = False


def psi(observed: FloatArray, expected: FloatArray) -> float:
    """Population stability index of two bin-count (or share) vectors over the same bins."""
    actual = np.maximum(observed / observed.sum(), PSI_FLOOR)
    reference = np.maximum(expected / expected.sum(), PSI_FLOOR)
    return float(np.sum((actual - reference) * np.log(actual / reference)))


def decile_bins(deciles: Sequence[float]) -> tuple[FloatArray, FloatArray]:
    """Right-closed bin edges from the distinct inner deciles, and each bin's reference share.

    Tied deciles (a discrete feature) merge into one edge whose share is the highest level at
    that value: the reference knows a point mass only to a decile.
    """
    values = np.asarray(deciles, dtype=np.float64)
    edges = np.unique(values[1:-1])
    cdf = _LEVELS[np.searchsorted(values, edges, side="right") - 1]
    return edges, np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def numeric_drift(name: str, values: FloatArray, deciles: Sequence[float]) -> FeatureDrift:
    edges, shares = decile_bins(deciles)
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=shares.size)
    # Both sides reduced to their deciles: the reference knows no more.
    served = np.interp(_QUANTILE_POINTS, _LEVELS, np.quantile(values, _LEVELS))
    reference = np.interp(_QUANTILE_POINTS, _LEVELS, np.asarray(deciles, dtype=np.float64))
    return FeatureDrift(
        feature=name,
        kind="numeric",
        rows=int(values.size),
        psi=psi(counts.astype(np.float64), shares),
        statistic="wasserstein",
        value=float(stats.wasserstein_distance(served, reference)),
    )


def categorical_drift(
    name: str, values: Sequence[Any], frequencies: Mapping[str, float], reference_rows: int
) -> FeatureDrift:
    """PSI, and a chi-squared test that served and training rows share one distribution.

    The reference counts are its frequencies times the training rows: a two-sample test, since
    the reference is itself a sample, not the true distribution.
    """
    vocabulary = tuple(frequencies)
    codes = category_codes(list(values), vocabulary)
    # Unknown and blank values share one extra bin the reference never saw.
    counts = np.bincount(np.where(codes < 0, len(vocabulary), codes), minlength=len(vocabulary) + 1)
    observed = counts.astype(np.float64)
    expected = np.array([*frequencies.values(), 0.0]) * reference_rows
    table = np.vstack([observed, expected])
    test = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
    return FeatureDrift(
        feature=name,
        kind="categorical",
        rows=int(codes.size),
        psi=psi(observed, expected),
        statistic="chi2",
        value=float(test.statistic),
        p_value=float(test.pvalue),
    )


def score_drift(scores: FloatArray, histogram: Mapping[str, Sequence[float]]) -> FeatureDrift:
    edges = np.asarray(histogram["edges"], dtype=np.float64)
    counts, _ = np.histogram(scores, bins=edges)
    return FeatureDrift(
        feature=SCORE,
        kind="score",
        rows=int(scores.size),
        psi=psi(counts.astype(np.float64), np.asarray(histogram["counts"], dtype=np.float64)),
    )


def measure_drift(
    frame: pd.DataFrame,
    reference: Mapping[str, Any],
    reference_rows: int,
    psi_alert: float,
    alpha: float,
) -> list[FeatureDrift]:
    """Every reference feature present in the frame, then the score; tests BH-corrected."""
    results: list[FeatureDrift] = []
    for name, deciles in reference.get("numeric_deciles", {}).items():
        if name in frame.columns:
            values, _ = parse_numbers(frame[name].to_numpy())
            results.append(numeric_drift(name, values[np.isfinite(values)], deciles))
    for name, frequencies in reference.get("category_frequencies", {}).items():
        if name in frame.columns:
            results.append(
                categorical_drift(
                    name, frame[name].astype(str).tolist(), frequencies, reference_rows
                )
            )
    if "score_histogram" in reference:
        results.append(score_drift(frame[SCORE].to_numpy(np.float64), reference["score_histogram"]))
    tested = [r for r in results if r.p_value is not None]
    if tested:
        adjusted = stats.false_discovery_control([r.p_value for r in tested], method="bh")
        for result, p in zip(tested, adjusted, strict=True):
            result.p_adjusted = float(p)
    for result in results:
        significant = result.p_adjusted is not None and result.p_adjusted < alpha
        result.drifted = result.psi >= psi_alert or significant
    return results
