"""Hypothesis strategies for the fuzz tests (valid feature columns, hostile cell values), and
the check that every reported error names field, row and reason.

Cell values stay around the per-cell length limits (tens of characters); `with_long_text`
puts one value of up to 100 kB into an example, built by repetition, so length bugs are found
without every example costing megabytes.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from model.errors import MAX_REPORTED_ERRORS, ErrorCode, ValidationFailed
from model.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from model.spec import FeatureSpec

LONGEST_TEXT = 100_000

# Text that float() takes but the number grammar refuses (or that overflows to infinity).
NOT_NUMBER_TEXTS = (
    "1_0", "1_000.5", "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "+Infinity",
    "\uff11\uff12", "\u0661\u0662", "\u0967\u0968", "0x10", "0b1", "1.2.3", "1e", "e5",
    "--5", "5-", "1,5", "12abc", "\u00bd", "\u00b2", "12\x00", "1e400", "1e999999",
    "1\u200b2", "\U0001d7d9", "\u00a012",
)  # fmt: skip


# What a client may send as a number; the spec's own grammar is the one under test.
NUMBER_GRAMMAR = (
    r"[ \t]{0,2}[+-]?([0-9]{1,6}(\.[0-9]{0,6})?|\.[0-9]{1,6})([eE][+-]?[0-9]{1,3})?[ \t]{0,2}"
)
CATEGORY_VALUES = tuple(sorted({v for f in CATEGORICAL_FEATURES for v in f.values}))
# Around the limits of model/schema.py (32 and 64 characters), and far beyond.
_LENGTHS = st.integers(0, 80)


def long_texts(lengths: st.SearchStrategy[int] = _LENGTHS) -> st.SearchStrategy[str]:
    return st.builds(operator.mul, st.text(min_size=1, max_size=3), lengths)


def huge_texts() -> st.SearchStrategy[str]:
    """Up to 100 kB: a number, a padded category, or anything."""
    lengths = st.integers(LONGEST_TEXT // 2, LONGEST_TEXT)
    return st.one_of(
        long_texts(lengths),
        st.builds(lambda n: "0" * n + "5", lengths),
        st.builds(lambda v, n: v + " " * n, st.sampled_from(CATEGORY_VALUES), lengths),
    )


def number_texts() -> st.SearchStrategy[str]:
    """Numbers as text in every grammar a client might try, valid or not."""
    return st.one_of(
        st.from_regex(NUMBER_GRAMMAR, fullmatch=True),
        st.sampled_from(NOT_NUMBER_TEXTS),
        st.text(alphabet="0123456789_.eE+-naifNIF \t\u00a0\u0661\uff11", max_size=12),
        st.builds(lambda n: "0" * n + "5", _LENGTHS),
        long_texts(),
    )


def category_texts() -> st.SearchStrategy[str]:
    """Known categories in odd spellings, lost in padding, or any text at all."""
    return st.one_of(
        st.builds(str.upper, st.sampled_from(CATEGORY_VALUES)),
        st.builds(lambda v, n: v + " " * n, st.sampled_from(CATEGORY_VALUES), _LENGTHS),
        st.text(max_size=30),
        long_texts(),
    )


def json_cells() -> st.SearchStrategy[Any]:
    """Any single value a JSON tensor may hold, right type or not."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(),
        number_texts(),
        category_texts(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


@dataclass(frozen=True)
class ValidColumns:
    """Columns as a client sends them (numbers, or text) and what the spec must make of them."""

    rows: int
    raw: dict[str, list[Any]]
    # Per numeric feature, the value the spec must see (NaN where it imputes).
    numbers: dict[str, list[float]]
    # Per categorical feature, the vocabulary index of each row.
    categories: dict[str, list[int]]


# Strategies are built once: building them per draw costs more than running the test.
_NUMBERS = {
    f.name: st.integers(int(f.minimum), int(f.maximum)).map(float)
    if f.integer
    else st.floats(f.minimum, f.maximum, allow_nan=False)
    for f in NUMERIC_FEATURES
}
_BLANKS = st.sampled_from(["", " ", "\t"])
_VARIANTS = st.integers(0, 3)


def _spelled(value: str, variant: int) -> str:
    """A category as clients write it: any case, padded, runs of spaces inside."""
    return (value.upper(), value.lower(), f"  {value} ", value.replace(" ", "  "))[variant]


def _as_text(value: float, integer: bool, variant: int) -> str:
    text = str(int(value)) if integer else repr(value)
    exponent = "" if "e" in text else "e0"
    return (text, f" {text} ", f"{text}{exponent}", f"+{text}")[variant]


@st.composite
def valid_columns(draw: st.DrawFn, max_rows: int = 4) -> ValidColumns:
    """Rows within every declared range and vocabulary; some numbers as text, some blank
    where the schema imputes."""
    rows = draw(st.integers(1, max_rows))
    raw: dict[str, list[Any]] = {}
    numbers: dict[str, list[float]] = {}
    categories: dict[str, list[int]] = {}
    for feature in NUMERIC_FEATURES:
        values = [draw(_NUMBERS[feature.name]) for _ in range(rows)]
        as_text = draw(st.booleans())
        if as_text:
            cells: list[Any] = [_as_text(v, feature.integer, draw(_VARIANTS)) for v in values]
        else:
            cells = [int(v) if feature.integer else v for v in values]
        if feature.missing == "impute":
            for row in range(rows):
                if draw(_VARIANTS) == 0:
                    cells[row] = draw(_BLANKS) if as_text else None
                    values[row] = float("nan")
        raw[feature.name] = cells
        numbers[feature.name] = values
    for category in CATEGORICAL_FEATURES:
        indexes = [draw(st.integers(0, len(category.values) - 1)) for _ in range(rows)]
        raw[category.name] = [_spelled(category.values[i], draw(_VARIANTS)) for i in indexes]
        categories[category.name] = indexes
    return ValidColumns(rows, raw, numbers, categories)


def check_field_errors(
    error: ValidationFailed, spec: FeatureSpec, columns: Mapping[str, Any]
) -> None:
    """Every reported error names an input of the spec, a row that exists (or none) and a
    reason; counts are exact and examples bounded."""
    longest = max((len(c) for c in columns.values()), default=0)
    assert 0 < len(error.errors) <= MAX_REPORTED_ERRORS
    assert error.total >= len(error.errors)
    for field_error in error.errors:
        assert field_error.field in spec.input_names
        assert field_error.row is None or 0 <= field_error.row < longest
        assert isinstance(field_error.code, ErrorCode)
        assert field_error.reason.strip()
