"""Errors that name the field, the row and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Enough examples to act on, without turning one bad 10k-row batch into a megabyte of errors.
MAX_REPORTED_ERRORS = 50


class ErrorCode(StrEnum):
    """Why a value broke the contract: a closed set, fit for metric labels and client logic."""

    MISSING_INPUT = "missing_input"
    WRONG_SHAPE = "wrong_shape"
    WRONG_DATATYPE = "wrong_datatype"
    MISSING_VALUE = "missing_value"
    NOT_A_NUMBER = "not_a_number"
    TOO_LONG = "too_long"
    OUT_OF_RANGE = "out_of_range"
    NOT_WHOLE = "not_whole_number"
    UNKNOWN_CATEGORY = "unknown_category"
    INVALID_LABEL = "invalid_label"
    DUPLICATE_ID = "duplicate_id"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    row: int | None
    code: ErrorCode
    reason: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "all rows"
        return f"{self.field} ({where}): {self.reason}"


class ValidationFailed(ValueError):
    """Rows broke the contract. ``errors`` holds at most MAX_REPORTED_ERRORS examples."""

    def __init__(self, errors: list[FieldError], total: int | None = None) -> None:
        self.errors = errors[:MAX_REPORTED_ERRORS]
        self.total = total if total is not None else len(errors)
        shown = "; ".join(str(e) for e in self.errors[:5])
        more = f" (+{self.total - 5} more)" if self.total > 5 else ""
        super().__init__(f"{self.total} invalid value(s): {shown}{more}")


class BundleError(RuntimeError):
    """A model bundle is missing, incomplete or fails its checksums."""
