"""Parse the prediction log and the labels, and join them on the customer key.

Rules (docs/monitoring.md): a prediction counts only if it was scored inside the window and not
after its label's date; a customer scored several times by one arm counts once, with the latest
prediction; a customer labelled several times keeps the latest label.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from model.keys import customer_keys
from model.schema import CUSTOMER_ID, TARGET
from model.spec import normalize_category
from monitoring.io import InputError

log = logging.getLogger(__name__)

KEY = "customer_key"
LABEL_DATE = "label_date"
PREDICTION_COLUMNS = (
    "scored_at", "request_id", "arm", "bundle_version", "churn_probability", "churn",
)  # fmt: skip
LABEL_COLUMNS = (CUSTOMER_ID, TARGET)
# The outcome as a 0/1 column of the joined frame.
OUTCOME = "outcome"

_DECISIONS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_OUTCOMES = {normalize_category("Yes"): 1, normalize_category("No"): 0}


@dataclass(slots=True)
class Joined:
    frame: pd.DataFrame
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


def _fail(frame: pd.DataFrame, bad: pd.Series, column: str, what: str, reason: str) -> None:
    if bad.any():
        first = frame.loc[bad].iloc[0]
        raise InputError(
            f"{what}: column {column!r}, row {first['_row']} of {first['_source']}: "
            f"{first[column]!r} {reason} ({int(bad.sum())} such row(s))"
        )


def _timestamps(frame: pd.DataFrame, column: str, what: str) -> pd.Series:
    parsed = pd.to_datetime(frame[column], utc=True, errors="coerce", format="mixed")
    _fail(frame, parsed.isna(), column, what, "is not a date or timestamp")
    return parsed


def _mapped(frame: pd.DataFrame, column: str, what: str, mapping: dict[str, object]) -> pd.Series:
    mapped = frame[column].map(lambda v: mapping.get(normalize_category(str(v))))
    allowed = "/".join(mapping)
    _fail(frame, mapped.isna(), column, what, f"is not one of {allowed}")
    return mapped


def parse_predictions(
    raw: pd.DataFrame, since: datetime | None, until: datetime | None
) -> pd.DataFrame:
    what = "predictions"
    frame = raw.copy()
    frame["scored_at"] = _timestamps(frame, "scored_at", what)
    probability = pd.to_numeric(frame["churn_probability"], errors="coerce")
    _fail(frame, ~probability.between(0, 1), "churn_probability", what, "is not in [0, 1]")
    frame["churn_probability"] = probability.astype(np.float64)
    frame["churn"] = _mapped(frame, "churn", what, dict(_DECISIONS)).astype(bool)
    frame["arm"] = frame["arm"].astype(str)
    frame["bundle_version"] = frame["bundle_version"].astype(str)
    if since is not None:
        frame = frame[frame["scored_at"] >= pd.Timestamp(since)]
    if until is not None:
        frame = frame[frame["scored_at"] < pd.Timestamp(until)]
    return frame


def parse_labels(raw: pd.DataFrame) -> pd.DataFrame:
    what = "labels"
    frame = raw.copy()
    frame[OUTCOME] = _mapped(frame, TARGET, what, dict(_OUTCOMES)).astype(np.int64)
    frame[CUSTOMER_ID] = frame[CUSTOMER_ID].astype(str).str.strip()
    if LABEL_DATE in frame.columns:
        frame[LABEL_DATE] = _timestamps(frame, LABEL_DATE, what)
        frame = frame.sort_values(LABEL_DATE, kind="stable")
    return frame.drop_duplicates(CUSTOMER_ID, keep="last")


def join(predictions: pd.DataFrame, labels: pd.DataFrame, secret: bytes | None) -> Joined:
    """Parsed predictions and labels -> one row per (arm, customer) with its outcome."""
    notes: list[str] = []
    if KEY in predictions.columns:
        if secret is None:
            raise InputError(
                f"predictions carry {KEY!r}: set CHURN_MONITORING_CUSTOMER_KEY_FILE (or "
                "CHURN_MONITORING_CUSTOMER_KEY) to the HMAC key the transformer used"
            )
        keys = pd.Series(customer_keys(labels[CUSTOMER_ID], secret), index=labels.index)
        labels = labels.assign(**{KEY: keys})
        predictions = predictions.assign(**{KEY: predictions[KEY].astype(str).str.strip()})
    elif CUSTOMER_ID in predictions.columns:
        notes.append(f"predictions carry raw {CUSTOMER_ID}s; joined on them without hashing")
        labels = labels.assign(**{KEY: labels[CUSTOMER_ID]})
        predictions = predictions.assign(**{KEY: predictions[CUSTOMER_ID].astype(str).str.strip()})
    else:
        sources = ", ".join(sorted(set(predictions["_source"])))
        raise InputError(
            f"predictions: neither {KEY!r} nor {CUSTOMER_ID!r} is a column in {sources}"
        )

    counts = {"predictions": len(predictions), "labels": len(labels)}
    outcome_columns = [KEY, OUTCOME] + ([LABEL_DATE] if LABEL_DATE in labels.columns else [])
    merged = predictions.drop(columns=[CUSTOMER_ID], errors="ignore").merge(
        labels[outcome_columns], on=KEY, how="inner", validate="many_to_one"
    )
    counts["labelled_predictions"] = len(merged)
    if LABEL_DATE in merged.columns:
        # A score made once the outcome was known predicts nothing.
        in_time = merged["scored_at"].dt.normalize() <= merged[LABEL_DATE].dt.normalize()
        counts["scored_after_label"] = int((~in_time).sum())
        merged = merged[in_time]
    latest = merged.sort_values("scored_at", kind="stable").drop_duplicates(
        ["arm", KEY], keep="last"
    )
    counts["repeat_scores_dropped"] = len(merged) - len(latest)
    counts["joined"] = len(latest)
    log.info(
        "joined %d of %d predictions with %d labels", len(latest), len(predictions), len(labels)
    )
    return Joined(latest.reset_index(drop=True), counts, notes)
