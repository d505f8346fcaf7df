"""Client-facing errors: a status, a summary, and problems naming input, row and reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from model.errors import MAX_REPORTED_ERRORS, FieldError


class Reason(StrEnum):
    """Why a request was refused; a metric label, so the set is closed."""

    MALFORMED_JSON = "malformed_json"
    INVALID_REQUEST = "invalid_request"
    MISSING_INPUT = "missing_input"
    UNKNOWN_INPUT = "unknown_input"
    WRONG_DATATYPE = "wrong_datatype"
    WRONG_SHAPE = "wrong_shape"
    TOO_MANY_ROWS = "too_many_rows"
    BODY_TOO_LARGE = "body_too_large"
    MISSING_VALUE = "missing_value"
    NOT_A_NUMBER = "not_a_number"
    TOO_LONG = "too_long"
    OUT_OF_RANGE = "out_of_range"
    NOT_WHOLE = "not_whole_number"
    UNKNOWN_CATEGORY = "unknown_category"
    # Every model.errors.ErrorCode is a Reason too (a unit test holds this), including the
    # training-only ones, so mapping a contract error can never fail.
    INVALID_LABEL = "invalid_label"
    DUPLICATE_ID = "duplicate_id"


@dataclass(frozen=True, slots=True)
class Problem:
    input: str | None
    row: int | None
    reason: str
    kind: Reason

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "row": self.row, "reason": self.reason}


def problem_from_field_error(error: FieldError) -> Problem:
    return Problem(error.field, error.row, error.reason, Reason(error.code.value))


class RequestRejected(Exception):
    """The request cannot be served as sent (4xx)."""

    def __init__(
        self, status: int, summary: str, problems: Iterable[Problem], total: int | None = None
    ) -> None:
        self.status = status
        self.problems = list(problems)[:MAX_REPORTED_ERRORS]
        self.total = total if total is not None else len(self.problems)
        self.summary = summary
        super().__init__(summary)

    @property
    def reasons(self) -> set[Reason]:
        return {p.kind for p in self.problems}

    def to_json(self) -> dict[str, Any]:
        return {
            "error": self.summary,
            "total": self.total,
            "details": [p.to_json() for p in self.problems],
        }


class PredictorUnavailable(Exception):
    """The predictor is down, timed out or failed (503)."""


class PredictorProtocolError(Exception):
    """The predictor answered, but not with class probabilities for every row (502)."""
