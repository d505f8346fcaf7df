"""Errors that name the field, the row and the reason."""

from __future__ import annotations

from dataclasses import dataclass

# Enough examples to act on, without turning one bad 10k-row batch into a megabyte of errors.
MAX_REPORTED_ERRORS = 50


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    row: int | None
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
