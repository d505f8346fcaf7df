"""The fitted feature spec: a plain JSON document that turns customer columns into the model matrix.

Training fits it (imputation values, vocabularies, scaling statistics, feature order); serving
applies it with vectorized numpy, without scikit-learn and without unpickling anything.

Matrix layout: the numeric features, standardized, in declared order; then one 0/1 column per
vocabulary entry of each categorical feature, in declared order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator

from model.errors import MAX_REPORTED_ERRORS, ErrorCode, FieldError, ValidationFailed
from model.schema import MissingPolicy

FORMAT_VERSION = 1

UnknownPolicy = Literal["reject", "zero"]

# Codes for values that are not a vocabulary entry.
UNKNOWN = -1
MISSING = -2

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def normalize_category(value: str) -> str:
    """The matching key of a category: case-folded, whitespace collapsed."""
    return " ".join(value.split()).casefold()


def category_codes(
    values: npt.NDArray[np.str_ | np.object_], vocabulary: tuple[str, ...]
) -> IntArray:
    """Vocabulary index per value; UNKNOWN or MISSING (blank) otherwise.

    Exact spellings are matched with vectorized comparisons; only the rare leftovers
    (odd case or whitespace) take the per-value normalizing path.
    """
    codes = np.full(values.shape[0], UNKNOWN, dtype=np.int64)
    for index, canonical in enumerate(vocabulary):
        codes[values == canonical] = index
    leftovers = np.flatnonzero(codes == UNKNOWN)
    if leftovers.size:
        lookup = {normalize_category(v): i for i, v in enumerate(vocabulary)}
        for row in leftovers:
            key = normalize_category(str(values[row]))
            codes[row] = lookup.get(key, MISSING if not key else UNKNOWN)
    return codes


def parse_numbers(values: npt.NDArray[np.generic]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Floats from numbers or numeric strings. Blank strings become NaN (missing).

    Returns the floats and a mask of values that are neither blank nor a number.
    """
    if values.dtype.kind in "biuf":
        return values.astype(np.float64, copy=False), np.zeros(values.shape[0], dtype=bool)
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    unparsable = np.zeros(values.shape[0], dtype=bool)
    for row, raw in enumerate(values.tolist()):
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if not text.strip():
            continue
        try:
            out[row] = float(text)
        except ValueError:
            unparsable[row] = True
    return out, unparsable


class NumericSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    minimum: float
    maximum: float
    integer: bool
    missing: MissingPolicy
    impute_value: float | None
    mean: float
    scale: float

    @model_validator(mode="after")
    def _impute_value_matches_policy(self) -> NumericSpec:
        if (self.missing == "impute") != (self.impute_value is not None):
            raise ValueError(f"{self.name}: impute_value must be set exactly when missing='impute'")
        if self.scale <= 0:
            raise ValueError(f"{self.name}: scale must be positive")
        return self


class CategoricalSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    vocabulary: tuple[str, ...]
    unknown: UnknownPolicy


@dataclass(slots=True)
class Transformed:
    matrix: FloatArray
    # How often a declared policy changed an input, keyed by (feature, policy).
    applied: dict[tuple[str, str], int] = field(default_factory=dict)


class _Errors:
    """Collects field errors, keeping counts exact and examples bounded."""

    def __init__(self) -> None:
        self.examples: list[FieldError] = []
        self.total = 0

    def add_rows(self, name: str, rows: IntArray, code: ErrorCode, reason: str) -> None:
        self.total += int(rows.size)
        room = MAX_REPORTED_ERRORS - len(self.examples)
        self.examples.extend(FieldError(name, int(r), code, reason) for r in rows[:room])

    def add(self, error: FieldError) -> None:
        self.total += 1
        if len(self.examples) < MAX_REPORTED_ERRORS:
            self.examples.append(error)


def _layout(
    numeric: tuple[NumericSpec, ...], categorical: tuple[CategoricalSpec, ...]
) -> tuple[str, ...]:
    return (
        *(n.name for n in numeric),
        *(f"{c.name}={v}" for c in categorical for v in c.vocabulary),
    )


class FeatureSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    format_version: Literal[1] = 1
    numeric: tuple[NumericSpec, ...]
    categorical: tuple[CategoricalSpec, ...]
    feature_names: tuple[str, ...]

    @model_validator(mode="after")
    def _feature_names_match_layout(self) -> FeatureSpec:
        if self.feature_names != _layout(self.numeric, self.categorical):
            raise ValueError("feature_names do not match the numeric/categorical layout")
        return self

    @classmethod
    def build(
        cls, numeric: tuple[NumericSpec, ...], categorical: tuple[CategoricalSpec, ...]
    ) -> FeatureSpec:
        return cls(
            numeric=numeric, categorical=categorical, feature_names=_layout(numeric, categorical)
        )

    @cached_property
    def input_names(self) -> tuple[str, ...]:
        return (*(n.name for n in self.numeric), *(c.name for c in self.categorical))

    def transform(self, columns: Mapping[str, npt.NDArray[np.generic]]) -> Transformed:
        """Validate the columns and build the float64 model matrix.

        Numeric columns may be numbers or numeric strings (blank = missing); categorical
        columns are strings. Raises ValidationFailed naming every bad field and row.
        """
        errors = _Errors()
        missing_inputs = [name for name in self.input_names if name not in columns]
        for name in missing_inputs:
            errors.add(FieldError(name, None, ErrorCode.MISSING_INPUT, "required input is missing"))
        lengths = {name: len(columns[name]) for name in self.input_names if name in columns}
        # The batch size is what most inputs agree on; the odd ones out are the errors.
        rows = Counter(lengths.values()).most_common(1)[0][0] if lengths else 0
        for name, length in lengths.items():
            if length != rows:
                errors.add(
                    FieldError(
                        name,
                        None,
                        ErrorCode.WRONG_SHAPE,
                        f"has {length} rows, other inputs have {rows}",
                    )
                )
        if errors.total:
            raise ValidationFailed(errors.examples, errors.total)

        matrix = np.empty((rows, len(self.feature_names)), dtype=np.float64)
        result = Transformed(matrix)
        for column, numeric in enumerate(self.numeric):
            matrix[:, column] = self._numeric_column(numeric, columns[numeric.name], errors, result)
        offset = len(self.numeric)
        for categorical in self.categorical:
            width = len(categorical.vocabulary)
            codes = self._category_codes(categorical, columns[categorical.name], errors, result)
            np.equal(codes[:, None], np.arange(width), out=matrix[:, offset : offset + width])
            offset += width
        if errors.total:
            raise ValidationFailed(errors.examples, errors.total)
        return result

    @staticmethod
    def _numeric_column(
        spec: NumericSpec,
        raw: npt.NDArray[np.generic],
        errors: _Errors,
        result: Transformed,
    ) -> FloatArray:
        values, unparsable = parse_numbers(np.asarray(raw))
        if unparsable.any():
            errors.add_rows(
                spec.name, np.flatnonzero(unparsable), ErrorCode.NOT_A_NUMBER, "is not a number"
            )
        missing = np.isnan(values) & ~unparsable
        if missing.any():
            if spec.impute_value is None:
                errors.add_rows(
                    spec.name, np.flatnonzero(missing), ErrorCode.MISSING_VALUE, "value is missing"
                )
            else:
                values = np.where(missing, spec.impute_value, values)
                result.applied[(spec.name, "impute")] = int(missing.sum())
        with np.errstate(invalid="ignore"):
            out_of_range = (values < spec.minimum) | (values > spec.maximum)
        if out_of_range.any():
            errors.add_rows(
                spec.name,
                np.flatnonzero(out_of_range),
                ErrorCode.OUT_OF_RANGE,
                f"is outside the valid range [{spec.minimum:g}, {spec.maximum:g}]",
            )
        if spec.integer:
            fractional = np.isfinite(values) & (values != np.floor(values))
            if fractional.any():
                errors.add_rows(
                    spec.name,
                    np.flatnonzero(fractional),
                    ErrorCode.NOT_WHOLE,
                    "must be a whole number",
                )
        scaled: FloatArray = (values - spec.mean) / spec.scale
        return scaled

    @staticmethod
    def _category_codes(
        spec: CategoricalSpec,
        raw: npt.NDArray[np.generic],
        errors: _Errors,
        result: Transformed,
    ) -> IntArray:
        values = np.asarray(raw)
        if values.dtype.kind not in "UO":
            errors.add(
                FieldError(spec.name, None, ErrorCode.WRONG_DATATYPE, "must be strings (BYTES)")
            )
            return np.full(values.shape[0], UNKNOWN, dtype=np.int64)
        codes = category_codes(values, spec.vocabulary)
        missing = codes == MISSING
        if missing.any():
            errors.add_rows(
                spec.name, np.flatnonzero(missing), ErrorCode.MISSING_VALUE, "value is missing"
            )
        unknown = codes == UNKNOWN
        if unknown.any():
            if spec.unknown == "reject":
                expected = ", ".join(repr(v) for v in spec.vocabulary)
                errors.add_rows(
                    spec.name,
                    np.flatnonzero(unknown),
                    ErrorCode.UNKNOWN_CATEGORY,
                    f"unknown category; expected one of {expected}",
                )
            else:
                result.applied[(spec.name, "unknown_zero")] = int(unknown.sum())
        return codes

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        return cls.model_validate_json(text)
