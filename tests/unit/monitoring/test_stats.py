"""The hand-written statistics against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from monitoring.drift import (
    PSI_FLOOR,
    categorical_drift,
    decile_bins,
    measure_drift,
    numeric_drift,
    psi,
)
from monitoring.metrics import expected_calibration_error
from monitoring.verdict import weighted_auc

LEVELS = np.linspace(0, 1, 11)


def test_psi_is_the_symmetric_kullback_leibler_divergence() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        observed, expected = rng.integers(1, 500, 8), rng.integers(1, 500, 8)
        a, e = observed / observed.sum(), expected / expected.sum()
        assert psi(observed.astype(float), expected.astype(float)) == pytest.approx(
            stats.entropy(a, e) + stats.entropy(e, a)
        )


def test_psi_textbook_example_and_empty_bins() -> None:
    # Two bins: 60/40 served against 50/50 trained.
    by_hand = (0.6 - 0.5) * np.log(0.6 / 0.5) + (0.4 - 0.5) * np.log(0.4 / 0.5)
    assert psi(np.array([60.0, 40.0]), np.array([1.0, 1.0])) == pytest.approx(by_hand)
    assert psi(np.array([5.0, 5.0]), np.array([5.0, 5.0])) == 0
    # A bin one side never filled counts with the floor share, so PSI stays finite.
    empty = psi(np.array([10.0, 0.0]), np.array([5.0, 5.0]))
    floor = (1 - 0.5) * np.log(1 / 0.5) + (PSI_FLOOR - 0.5) * np.log(PSI_FLOOR / 0.5)
    assert empty == pytest.approx(floor, rel=1e-3)


def test_decile_bins_of_continuous_and_tied_deciles() -> None:
    edges, shares = decile_bins(np.arange(11.0))
    assert edges.tolist() == list(range(1, 10))
    assert shares == pytest.approx(np.full(10, 0.1))
    # SeniorCitizen: nine deciles at 0, two at 1 -> bins (-inf, 0], (0, 1], (1, inf).
    edges, shares = decile_bins([0.0] * 9 + [1.0, 1.0])
    assert edges.tolist() == [0.0, 1.0]
    assert shares == pytest.approx([0.8, 0.2, 0.0])


def test_numeric_drift_finds_a_shift_and_not_a_resample() -> None:
    rng = np.random.default_rng(5)
    deciles = np.quantile(rng.normal(50, 10, 200_000), LEVELS)
    same = numeric_drift("x", rng.normal(50, 10, 20_000), deciles)
    shifted = numeric_drift("x", rng.normal(55, 10, 20_000), deciles)
    assert same.psi < 0.01
    assert shifted.psi > 0.2
    # A 5-unit shift of the mean moves the distribution 5 units (Wasserstein-1).
    assert same.value == pytest.approx(0, abs=0.3)
    assert shifted.value == pytest.approx(5, abs=0.3)


def test_categorical_drift_is_a_two_sample_chi_squared_test() -> None:
    frequencies = {"Month-to-month": 0.5, "One year": 0.3, "Two year": 0.2}
    values = ["Month-to-month"] * 60 + ["One year"] * 25 + ["two  YEAR"] * 15
    result = categorical_drift("Contract", values, frequencies, reference_rows=1000)
    table = np.array([[60, 25, 15], [500, 300, 200]])
    expected = stats.chi2_contingency(table, correction=False)
    assert result.value == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.rows == 100


def test_unseen_categories_count_as_drift() -> None:
    frequencies = {"DSL": 0.5, "Fiber optic": 0.5}
    values = ["DSL"] * 50 + ["Fiber optic"] * 40 + ["Satellite"] * 10
    result = categorical_drift("InternetService", values, frequencies, reference_rows=5000)
    assert result.p_value is not None
    assert result.p_value < 1e-6
    assert result.psi > 0.5


def test_drift_p_values_are_benjamini_hochberg_adjusted() -> None:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame(
        {
            "gender": rng.choice(["Female", "Male"], 400, p=[0.5, 0.5]),
            "Partner": rng.choice(["No", "Yes"], 400, p=[0.6, 0.4]),
            "Contract": rng.choice(["Month-to-month", "Two year"], 400, p=[0.7, 0.3]),
            "churn_probability": rng.random(400),
        }
    )
    reference = {
        "category_frequencies": {
            "gender": {"Female": 0.5, "Male": 0.5},
            "Partner": {"No": 0.5, "Yes": 0.5},
            "Contract": {"Month-to-month": 0.5, "Two year": 0.5},
        },
        "score_histogram": {"edges": np.linspace(0, 1, 21).tolist(), "counts": [5] * 20},
    }
    results = measure_drift(frame, reference, reference_rows=2000, psi_alert=0.2, alpha=0.05)
    tested = [r for r in results if r.p_value is not None]
    raw = np.array([r.p_value for r in tested])
    # Benjamini-Hochberg by hand: p_(i) * m / i, made monotone from the largest p down.
    order = np.argsort(raw)
    scaled = raw[order] * len(raw) / np.arange(1, len(raw) + 1)
    by_hand = np.empty_like(raw)
    by_hand[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    assert [r.p_adjusted for r in tested] == pytest.approx(np.minimum(by_hand, 1))
    assert [r.feature for r in results] == ["gender", "Partner", "Contract", "churn_probability"]
    drifted = {r.feature for r in results if r.drifted}
    assert "Contract" in drifted
    assert "gender" not in drifted


def test_weighted_auc_matches_scikit_learn_with_ties_and_repeats() -> None:
    rng = np.random.default_rng(11)
    scores = np.round(rng.random(300), 1)  # many ties
    outcomes = (rng.random(300) < scores).astype(int)
    repeats = rng.integers(0, 4, size=(5, 300)).astype(float)
    pos, neg = outcomes == 1, outcomes == 0
    resampled = weighted_auc(scores[pos], scores[neg], repeats[:, pos], repeats[:, neg])
    for row, auc in zip(repeats.astype(int), resampled, strict=True):
        expected = roc_auc_score(np.repeat(outcomes, row), np.repeat(scores, row))
        assert auc == pytest.approx(expected)


def test_expected_calibration_error_by_hand() -> None:
    scores = np.array([0.05, 0.05, 0.95, 0.95, 0.55])
    outcomes = np.array([0, 1, 1, 1, 0])
    # Bins: [0, .1): gap |0.1 - 1| over 2 rows; [.9, 1]: |1.9 - 2|; [.5, .6): |0.55 - 0|.
    by_hand = (abs(0.1 - 1) + abs(1.9 - 2) + abs(0.55 - 0)) / 5
    assert expected_calibration_error(outcomes, scores, bins=10) == pytest.approx(by_hand)
