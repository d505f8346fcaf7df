"""The A/B verdict on simulated experiments: equal, better, worse and too small candidates."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitoring.verdict import ArmOutcomes, Rule, Verdict, compare

RULE = Rule(min_rows=500, min_events=50, confidence=0.95, resamples=1000)
NOMINAL_FALSE_POSITIVE_RATE = 0.05  # docs/monitoring.md: 2.5 % each direction


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1 / (1 + np.exp(-x)))


def customers(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two risk factors and the outcome they drive."""
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    outcomes = (rng.random(rows) < _sigmoid(-1 + 1.2 * x1 + 1.2 * x2)).astype(np.int64)
    return x1, x2, outcomes


def arm(rng: np.random.Generator, rows: int, model: str) -> ArmOutcomes:
    x1, x2, outcomes = customers(rng, rows)
    scores = {
        # Knows both factors: the true probability.
        "full": _sigmoid(-1 + 1.2 * x1 + 1.2 * x2),
        # Knows one factor only.
        "partial": _sigmoid(-1 + 1.2 * x1),
        # Ranks like "full" but squeezes every probability towards 0: badly calibrated.
        "overconfident": _sigmoid(-1 + 1.2 * x1 + 1.2 * x2) ** 6,
    }[model]
    return ArmOutcomes(outcomes, scores)


def test_equal_models_get_a_directional_verdict_at_most_at_the_documented_rate() -> None:
    # Bounded work: 300 experiments of 2 x 500 rows, 400 resamples per arm.
    experiments, rows = 300, 500
    rule = Rule(min_rows=300, min_events=50, confidence=0.95, resamples=400)
    rng = np.random.default_rng(2024)
    verdicts = [
        compare(arm(rng, rows, "partial"), arm(rng, rows, "partial"), rule, seed=i).verdict
        for i in range(experiments)
    ]
    directional = sum(v in (Verdict.CANDIDATE_BETTER, Verdict.STABLE_BETTER) for v in verdicts)
    # Binomial tolerance: fail only when the rate is implausible at the nominal level.
    tolerance = stats.binom.ppf(0.995, experiments, NOMINAL_FALSE_POSITIVE_RATE)
    assert directional <= tolerance
    assert set(verdicts) <= {Verdict.NO_DIFFERENCE, Verdict.CANDIDATE_BETTER, Verdict.STABLE_BETTER}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_genuinely_better_candidate_wins(seed: int) -> None:
    rng = np.random.default_rng(seed)
    result = compare(arm(rng, 3000, "partial"), arm(rng, 3000, "full"), RULE, seed=seed)
    assert result.verdict == Verdict.CANDIDATE_BETTER, result.reason
    assert result.roc_auc_difference is not None
    assert result.roc_auc_difference.low > 0
    assert result.brier_difference is not None
    assert result.brier_difference.estimate < 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_genuinely_worse_candidate_loses(seed: int) -> None:
    rng = np.random.default_rng(seed)
    result = compare(arm(rng, 3000, "full"), arm(rng, 3000, "partial"), RULE, seed=seed)
    assert result.verdict == Verdict.STABLE_BETTER, result.reason
    assert result.roc_auc_difference is not None
    assert result.roc_auc_difference.high < 0


def test_a_better_ranking_with_much_worse_brier_is_no_difference() -> None:
    rng = np.random.default_rng(7)
    result = compare(arm(rng, 3000, "partial"), arm(rng, 3000, "overconfident"), RULE, seed=7)
    assert result.roc_auc_difference is not None
    assert result.brier_difference is not None
    assert result.roc_auc_difference.low > 0
    assert result.brier_difference.low > 0
    assert result.verdict == Verdict.NO_DIFFERENCE
    assert "opposite" in result.reason


def test_the_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(4)
    stable, candidate = arm(rng, 800, "partial"), arm(rng, 800, "full")
    assert compare(stable, candidate, RULE, seed=5) == compare(stable, candidate, RULE, seed=5)


def test_too_few_rows_or_events_is_insufficient_data() -> None:
    rng = np.random.default_rng(8)
    small = compare(arm(rng, 3000, "partial"), arm(rng, 120, "full"), RULE, seed=0)
    assert small.verdict == Verdict.INSUFFICIENT_DATA
    assert small.reason == "candidate has 120 joined rows, fewer than the 500 required"
    assert small.roc_auc_difference is None

    x1, _, _ = customers(rng, 2000)
    rare = ArmOutcomes(np.r_[np.ones(30), np.zeros(1970)].astype(np.int64), _sigmoid(x1))
    few_events = compare(rare, arm(rng, 2000, "full"), RULE, seed=0)
    assert few_events.verdict == Verdict.INSUFFICIENT_DATA
    assert "stable has 30 churners and 1970 non-churners" in few_events.reason

    missing = compare(None, None, RULE, seed=0)
    assert missing.verdict == Verdict.INSUFFICIENT_DATA
    assert missing.reason == (
        "no joined rows for the stable arm; no joined rows for the candidate arm"
    )
