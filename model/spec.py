"""The fitted feature spec: a plain JSON document that turns customer columns into the model matrix.

Training fits it (imputation values, vocabularies, scaling statistics, feature order); serving
applies it with vectorized numpy, without scikit-learn and without unpickling anything.

Matrix layout: the numeric features, standardized, in declared order; then one 0/1 column per
vocabulary entry of each categorical feature, in declared order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import repeat
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator

from model.errors import MAX_REPORTED_ERRORS, ErrorCode, FieldError, ValidationFailed
from model.schema import MissingPolicy, NumericFeature

FORMAT_VERSION = 1

UnknownPolicy = Literal["reject", "zero"]

# Codes for values that are not a vocabulary entry.
UNKNOWN = -1
MISSING = -2

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# A column of raw inputs: any numpy array, or a list of values as a JSON decoder produced it.
InputColumn = npt.NDArray[Any] | Sequence[Any]


def normalize_category(value: str) -> str:
    """The matching key of a category: case-folded, whitespace collapsed."""
    return " ".join(value.split()).casefold()


@lru_cache(maxsize=256)
def _exact_lookup(vocabulary: tuple[str, ...]) -> dict[str, int]:
    return {value: index for index, value in enumerate(vocabulary)}


def category_codes(values: InputColumn, vocabulary: tuple[str, ...]) -> IntArray:
    """Vocabulary index per value; UNKNOWN or MISSING (blank) otherwise.

    Exact spellings are found with one C-level pass of dict lookups; only the rare leftovers
    (odd case or whitespace) take the per-value normalizing path.
    """
    items = values.tolist() if isinstance(values, np.ndarray) else values
    exact = _exact_lookup(vocabulary)
    codes = np.fromiter(map(exact.get, items, repeat(UNKNOWN)), dtype=np.int64, count=len(items))
    leftovers = np.flatnonzero(codes == UNKNOWN)
    if leftovers.size:
        lookup = {normalize_category(v): i for i, v in enumerate(vocabulary)}
        for row in leftovers.tolist():
            key = normalize_category(str(items[row]))
            codes[row] = lookup.get(key, MISSING if not key else UNKNOWN)
    return codes


# Text that is a number, in training and serving alike: optional sign, ASCII digits with at most
# one decimal point, optional exponent, optional surrounding ASCII whitespace. float() alone would
# also take "nan", "inf", "1_0" and digits of other scripts (Arabic-Indic, full-width).
ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
NUMBER_TEXT = re.compile(
    rf"[{ASCII_WHITESPACE}]*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[{ASCII_WHITESPACE}]*"
)
# On text made only of the characters NUMBER_TEXT can match, float() accepts exactly what
# NUMBER_TEXT matches (the two differ only on letters, underscores and non-ASCII characters), so
# a whole column is checked with one translate() and converted with one map(float).
_NUMBER_CHARACTERS = str.maketrans("", "", f"0123456789+-.eE{ASCII_WHITESPACE}")


def _parse_number_characters(text: str) -> float | None:
    """_parse_number for text made only of NUMBER_TEXT's characters: float() decides."""
    try:
        return float(text)
    except ValueError:
        return None if text.strip(ASCII_WHITESPACE) else math.nan


def _parse_number(value: object) -> float | None:
    """A float by the NUMBER_TEXT grammar; NaN when missing (blank or None); None otherwise.

    Numbers that are already numbers (in an object array) are taken as they are.
    """
    if isinstance(value, str):
        if NUMBER_TEXT.fullmatch(value):
            return float(value)
        return None if value.strip(ASCII_WHITESPACE) else math.nan
    if value is None:
        return math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def parse_numbers(values: InputColumn) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Floats from numbers, or from text by the NUMBER_TEXT grammar (blank = NaN = missing).

    Returns the floats and a mask of values that are neither missing nor a number. Lists are
    read as they are: never through a fixed-width numpy string array, whose size is the row
    count times the longest value.
    """
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "biuf":
            return values.astype(np.float64, copy=False), np.zeros(values.shape[0], dtype=bool)
        values = values.tolist()
    count = len(values)
    not_a_number = np.zeros(count, dtype=bool)
    try:
        number_characters_only = not "".join(values).translate(_NUMBER_CHARACTERS)
    except TypeError:  # not all text, e.g. an object array of numbers
        number_characters_only = False
    if number_characters_only:
        try:
            return np.fromiter(map(float, values), np.float64, count), not_a_number
        except ValueError:
            pass  # a blank (or malformed) value: row by row, still by float()
    parse = _parse_number_characters if number_characters_only else _parse_number
    parsed = np.full(count, np.nan)
    for row, value in enumerate(map(parse, values)):
        if value is None:
            not_a_number[row] = True
        else:
            parsed[row] = value
    return parsed, not_a_number


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

    @classmethod
    def fitted(
        cls, feature: NumericFeature, *, impute_value: float | None, mean: float, scale: float
    ) -> NumericSpec:
        """The declared feature (bounds, integer flag, missing policy) with fitted statistics."""
        return cls(
            name=feature.name,
            minimum=feature.minimum,
            maximum=feature.maximum,
            integer=feature.integer,
            missing=feature.missing,
            impute_value=impute_value,
            mean=mean,
            scale=scale,
        )

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

    def transform(self, columns: Mapping[str, InputColumn]) -> Transformed:
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

        matrix = np.zeros((rows, len(self.feature_names)), dtype=np.float64)
        result = Transformed(matrix)
        matrix[:, : len(self.numeric)] = self._numeric_block(columns, rows, errors, result)
        codes = self._category_block(columns, rows, errors, result)
        if errors.total:
            raise ValidationFailed(errors.examples, errors.total)
        # One-hot: each valid code sets one column; unknowns under the "zero" policy set none.
        hot = codes + self._category_offsets
        valid = codes >= 0
        if valid.all():
            matrix[np.arange(rows)[:, None], hot] = 1.0
        else:
            row_index, category_index = np.nonzero(valid)
            matrix[row_index, hot[row_index, category_index]] = 1.0
        return result

    # Numeric and categorical features are each checked as one [rows, features] block: at batch
    # 1 the cost is the number of numpy calls, so they must not grow with the feature count.
    # Only a block with a problem is walked feature by feature, to name the rows at fault.

    @cached_property
    def _numeric_bounds(self) -> tuple[FloatArray, FloatArray]:
        return (
            np.array([n.minimum for n in self.numeric]),
            np.array([n.maximum for n in self.numeric]),
        )

    @cached_property
    def _numeric_scaling(self) -> tuple[FloatArray, FloatArray]:
        return (
            np.array([n.mean for n in self.numeric]),
            np.array([n.scale for n in self.numeric]),
        )

    @cached_property
    def _impute_values(self) -> FloatArray:
        """Per numeric feature; NaN where a missing value is an error."""
        return np.array(
            [np.nan if n.impute_value is None else n.impute_value for n in self.numeric]
        )

    @cached_property
    def _integer_features(self) -> npt.NDArray[np.bool_]:
        return np.array([n.integer for n in self.numeric], dtype=bool)

    @cached_property
    def _category_offsets(self) -> IntArray:
        """Matrix column of each categorical feature's first vocabulary entry."""
        widths = [len(c.vocabulary) for c in self.categorical]
        return len(self.numeric) + np.cumsum([0, *widths[:-1]], dtype=np.int64)

    def _numeric_block(
        self,
        columns: Mapping[str, InputColumn],
        rows: int,
        errors: _Errors,
        result: Transformed,
    ) -> FloatArray:
        values = np.empty((rows, len(self.numeric)), dtype=np.float64)
        unparsable = np.zeros(values.shape, dtype=bool)
        for index, spec in enumerate(self.numeric):
            values[:, index], unparsable[:, index] = parse_numbers(columns[spec.name])
        missing = np.isnan(values) & ~unparsable
        imputable = missing & ~np.isnan(self._impute_values)
        if imputable.any():
            values = np.where(imputable, self._impute_values, values)
            for index in np.flatnonzero(imputable.any(axis=0)).tolist():
                count = int(imputable[:, index].sum())
                result.applied[(self.numeric[index].name, "impute")] = count
        minimums, maximums = self._numeric_bounds
        with np.errstate(invalid="ignore"):
            out_of_range = (values < minimums) | (values > maximums)
            fractional = self._integer_features & np.isfinite(values) & (values != np.floor(values))
        unfilled = missing & ~imputable
        problems = unparsable | unfilled | out_of_range | fractional
        if problems.any():
            for index in np.flatnonzero(problems.any(axis=0)).tolist():
                spec = self.numeric[index]
                for mask, code, reason in (
                    (unparsable, ErrorCode.NOT_A_NUMBER, "is not a number"),
                    (unfilled, ErrorCode.MISSING_VALUE, "value is missing"),
                    (
                        out_of_range,
                        ErrorCode.OUT_OF_RANGE,
                        f"is outside the valid range [{spec.minimum:g}, {spec.maximum:g}]",
                    ),
                    (fractional, ErrorCode.NOT_WHOLE, "must be a whole number"),
                ):
                    bad = np.flatnonzero(mask[:, index])
                    if bad.size:
                        errors.add_rows(spec.name, bad, code, reason)
        means, scales = self._numeric_scaling
        scaled: FloatArray = (values - means) / scales
        return scaled

    def _category_block(
        self,
        columns: Mapping[str, InputColumn],
        rows: int,
        errors: _Errors,
        result: Transformed,
    ) -> IntArray:
        """Vocabulary index per row and categorical feature (UNKNOWN, MISSING below zero)."""
        codes = np.empty((rows, len(self.categorical)), dtype=np.int64)
        for index, spec in enumerate(self.categorical):
            values = columns[spec.name]
            if not isinstance(values, np.ndarray) or values.dtype.kind in "UO":
                codes[:, index] = category_codes(values, spec.vocabulary)
                continue
            errors.add(
                FieldError(spec.name, None, ErrorCode.WRONG_DATATYPE, "must be strings (BYTES)")
            )
            codes[:, index] = 0  # reported once for the whole column above
        if (codes >= 0).all():
            return codes
        for index in np.flatnonzero((codes < 0).any(axis=0)).tolist():
            spec = self.categorical[index]
            missing = np.flatnonzero(codes[:, index] == MISSING)
            if missing.size:
                errors.add_rows(spec.name, missing, ErrorCode.MISSING_VALUE, "value is missing")
            unknown = np.flatnonzero(codes[:, index] == UNKNOWN)
            if not unknown.size:
                continue
            if spec.unknown == "reject":
                expected = ", ".join(repr(v) for v in spec.vocabulary)
                errors.add_rows(
                    spec.name,
                    unknown,
                    ErrorCode.UNKNOWN_CATEGORY,
                    f"unknown category; expected one of {expected}",
                )
            else:
                result.applied[(spec.name, "unknown_zero")] = int(unknown.size)
        return codes

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSpec:
        return cls.model_validate_json(text)
