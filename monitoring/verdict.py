"""The A/B verdict: is the candidate's realized quality better than the stable arm's?

The arms score different customers, so no pairing exists: each arm is resampled on its own
(a bootstrap stratified by arm, and by outcome within an arm so every resample has both
classes), and the percentile interval of candidate minus stable is read off the resampled
differences. The rule, in docs/monitoring.md:

- insufficient_data: an arm has fewer than `min_rows` joined rows, or fewer than `min_events`
  churners or non-churners.
- candidate_better: the ROC AUC difference interval lies above 0, and the Brier difference
  interval does not lie above 0 (the candidate is not significantly worse calibrated).
- stable_better: the mirror image.
- no_difference: anything else, including AUC and Brier pointing opposite ways.

AUC is the primary metric and Brier can only veto, so with two-sided 95 % intervals a
candidate_better (or stable_better) verdict between equal models has a rate of at most 2.5 %
each, 5 % together.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Bound on resamples x rows held in memory at once.
_CHUNK_CELLS = 4_000_000


class Verdict(StrEnum):
    CANDIDATE_BETTER = "candidate_better"
    STABLE_BETTER = "stable_better"
    NO_DIFFERENCE = "no_difference"
    INSUFFICIENT_DATA = "insufficient_data"


class Interval(BaseModel):
    estimate: float
    low: float
    high: float


class Comparison(BaseModel):
    verdict: Verdict
    reason: str
    # Candidate minus stable; a positive AUC and a negative Brier difference favour the candidate.
    roc_auc_difference: Interval | None = None
    brier_difference: Interval | None = None
    confidence: float
    resamples: int


@dataclass(frozen=True, slots=True)
class ArmOutcomes:
    outcomes: IntArray
    scores: FloatArray

    @property
    def events(self) -> int:
        return int(self.outcomes.sum())


@dataclass(frozen=True, slots=True)
class Rule:
    min_rows: int
    min_events: int
    confidence: float
    resamples: int


def weighted_auc(
    positives: FloatArray, negatives: FloatArray, pos_weights: FloatArray, neg_weights: FloatArray
) -> FloatArray:
    """ROC AUC of each weighted resample (one row of weights each), ties counted half.

    Each positive's score is placed once among the sorted negatives; a resample only
    re-weights, so no resample is sorted again.
    """
    order = np.argsort(negatives, kind="stable")
    sorted_negatives = negatives[order]
    weights = neg_weights[:, order]
    cumulative = np.concatenate([np.zeros((weights.shape[0], 1)), weights.cumsum(axis=1)], axis=1)
    below = cumulative[:, np.searchsorted(sorted_negatives, positives, side="left")]
    up_to = cumulative[:, np.searchsorted(sorted_negatives, positives, side="right")]
    wins = (pos_weights * (below + 0.5 * (up_to - below))).sum(axis=1)
    return np.asarray(wins / (pos_weights.sum(axis=1) * weights.sum(axis=1)), dtype=np.float64)


def _resample_weights(rng: np.random.Generator, rows: int, resamples: int) -> FloatArray:
    """How often each row is drawn, per resample of `rows` draws with replacement."""
    draws = rng.integers(0, rows, size=(resamples, rows)) + rows * np.arange(resamples)[:, None]
    counts = np.bincount(draws.ravel(), minlength=resamples * rows)
    return counts.reshape(resamples, rows).astype(np.float64)


def bootstrap(
    arm: ArmOutcomes, resamples: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """Resampled ROC AUC and Brier score of one arm, resampling churners and the rest apart."""
    positive = arm.outcomes == 1
    pos_scores, neg_scores = arm.scores[positive], arm.scores[~positive]
    pos_loss, neg_loss = (1 - pos_scores) ** 2, neg_scores**2
    chunk = max(1, _CHUNK_CELLS // arm.outcomes.size)
    aucs, briers = [], []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        pos_w = _resample_weights(rng, pos_scores.size, size)
        neg_w = _resample_weights(rng, neg_scores.size, size)
        aucs.append(weighted_auc(pos_scores, neg_scores, pos_w, neg_w))
        briers.append((pos_w @ pos_loss + neg_w @ neg_loss) / arm.outcomes.size)
    return np.concatenate(aucs), np.concatenate(briers)


def _interval(estimate: float, resampled: FloatArray, confidence: float) -> Interval:
    tail = (1 - confidence) / 2
    low, high = np.quantile(resampled, [tail, 1 - tail])
    return Interval(estimate=estimate, low=float(low), high=float(high))


def _shortfall(name: str, arm: ArmOutcomes | None, rule: Rule) -> str | None:
    if arm is None:
        return f"no joined rows for the {name} arm"
    rows, events = arm.outcomes.size, arm.events
    if rows < rule.min_rows:
        return f"{name} has {rows} joined rows, fewer than the {rule.min_rows} required"
    if min(events, rows - events) < rule.min_events:
        return (
            f"{name} has {events} churners and {rows - events} non-churners; "
            f"each needs at least {rule.min_events}"
        )
    return None


def _point(arm: ArmOutcomes) -> tuple[float, float]:
    """ROC AUC and Brier score of the arm's rows as they are (every weight 1)."""
    positive = arm.outcomes == 1
    auc = weighted_auc(
        arm.scores[positive],
        arm.scores[~positive],
        np.ones((1, arm.events)),
        np.ones((1, arm.outcomes.size - arm.events)),
    )
    return float(auc[0]), float(np.mean((arm.scores - arm.outcomes) ** 2))


def compare(
    stable: ArmOutcomes | None, candidate: ArmOutcomes | None, rule: Rule, seed: int
) -> Comparison:
    common = {"confidence": rule.confidence, "resamples": rule.resamples}
    shortfalls = [
        reason
        for reason in (_shortfall("stable", stable, rule), _shortfall("candidate", candidate, rule))
        if reason
    ]
    if shortfalls or stable is None or candidate is None:
        return Comparison(verdict=Verdict.INSUFFICIENT_DATA, reason="; ".join(shortfalls), **common)
    rng = np.random.default_rng(seed)
    stable_auc, stable_brier = bootstrap(stable, rule.resamples, rng)
    candidate_auc, candidate_brier = bootstrap(candidate, rule.resamples, rng)
    (stable_auc_point, stable_brier_point) = _point(stable)
    (candidate_auc_point, candidate_brier_point) = _point(candidate)
    auc = _interval(
        candidate_auc_point - stable_auc_point, candidate_auc - stable_auc, rule.confidence
    )
    brier = _interval(
        candidate_brier_point - stable_brier_point,
        candidate_brier - stable_brier,
        rule.confidence,
    )
    level = f"{rule.confidence:.0%}"
    if auc.low > 0 and brier.low <= 0:
        verdict, reason = (
            Verdict.CANDIDATE_BETTER,
            f"the {level} interval of the AUC gain lies above 0",
        )
    elif auc.high < 0 and brier.high >= 0:
        verdict, reason = (
            Verdict.STABLE_BETTER,
            f"the {level} interval of the AUC gain lies below 0",
        )
    elif auc.low > 0 or auc.high < 0:
        verdict, reason = Verdict.NO_DIFFERENCE, "AUC and Brier score point opposite ways"
    else:
        verdict, reason = Verdict.NO_DIFFERENCE, f"the {level} interval of the AUC gain contains 0"
    return Comparison(
        verdict=verdict, reason=reason, roc_auc_difference=auc, brier_difference=brier, **common
    )
