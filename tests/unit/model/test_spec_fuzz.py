"""FeatureSpec.transform under fuzzing: valid rows always give a finite matrix of the right
values; anything else is a ValidationFailed that names field, row and reason, never a crash.

Examples per property come from the Hypothesis profile (tests/conftest.py; `make fuzz` runs
the deep one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import given
from hypothesis import strategies as st

from model.errors import MAX_REPORTED_ERRORS, ErrorCode, ValidationFailed
from model.spec import InputColumn
from tests.specs import schema_spec
from tests.strategies import (
    NOT_NUMBER_TEXTS,
    ValidColumns,
    category_texts,
    check_field_errors,
    huge_texts,
    number_texts,
    valid_columns,
)

SPEC = schema_spec(impute_value=7.0, mean=2.0, scale=4.0)


def spec_column(cells: list[Any]) -> InputColumn:
    """As the request decoder hands columns over: numbers as float64 (null = NaN), text as a
    list of str."""
    if all(isinstance(c, str) for c in cells):
        return cells
    return np.array([np.nan if c is None else c for c in cells], dtype=np.float64)


@given(valid_columns())
def test_valid_rows_give_the_scaled_one_hot_matrix(valid: ValidColumns) -> None:
    columns = {name: spec_column(cells) for name, cells in valid.raw.items()}
    matrix = SPEC.transform(columns).matrix
    assert matrix.shape == (valid.rows, len(SPEC.feature_names))
    assert np.isfinite(matrix).all()
    for index, numeric in enumerate(SPEC.numeric):
        expected = np.array(valid.numbers[numeric.name])
        impute = np.nan if numeric.impute_value is None else numeric.impute_value
        filled = np.where(np.isnan(expected), impute, expected)
        np.testing.assert_allclose(
            matrix[:, index], (filled - numeric.mean) / numeric.scale, rtol=1e-12
        )
    start = len(SPEC.numeric)
    for categorical in SPEC.categorical:
        block = matrix[:, start : start + len(categorical.vocabulary)]
        hot: npt.NDArray[np.intp] = np.argmax(block, axis=1)
        assert (block.sum(axis=1) == 1).all()
        assert hot.tolist() == valid.categories[categorical.name]
        start += len(categorical.vocabulary)


# Built once: strategies built inside a draw cost more than the test itself.
NUMBER_CELLS = st.floats() | st.none()
TEXT_CELLS = number_texts() | category_texts()
HUGE_TEXTS = huge_texts()


@st.composite
def hostile_columns(draw: st.DrawFn) -> dict[str, InputColumn]:
    """Every input (some dropped, some of another length), each numbers or any text, and now
    and then one cell of up to 100 kB."""
    rows = draw(st.integers(0, 4))
    # One example in four has inputs missing or of another length; the rest reach the values.
    misshapen = draw(st.integers(0, 3)) == 0
    columns: dict[str, InputColumn] = {}
    for name in SPEC.input_names:
        if misshapen and draw(st.integers(0, 5)) == 0:
            continue
        length = draw(st.integers(0, 6)) if misshapen and draw(st.booleans()) else rows
        if draw(st.booleans()):
            columns[name] = spec_column([draw(NUMBER_CELLS) for _ in range(length)])
        else:
            columns[name] = [draw(TEXT_CELLS) for _ in range(length)]
    text_columns = [c for c in columns.values() if isinstance(c, list) and c]
    if text_columns and draw(st.integers(0, 3)) == 0:
        column = draw(st.sampled_from(text_columns))
        column[draw(st.integers(0, len(column) - 1))] = draw(HUGE_TEXTS)
    return columns


def not_numbers(columns: dict[str, InputColumn]) -> set[tuple[str, int]]:
    """(input, row) of every numeric cell sent as text that the number grammar refuses."""
    return {
        (numeric.name, row)
        for numeric in SPEC.numeric
        if isinstance(columns.get(numeric.name), list)
        for row, cell in enumerate(columns[numeric.name])
        if cell in NOT_NUMBER_TEXTS
    }


@given(hostile_columns())
def test_any_columns_transform_or_fail_with_named_errors(columns: dict[str, InputColumn]) -> None:
    refused = not_numbers(columns)
    try:
        matrix = SPEC.transform(columns).matrix
    except ValidationFailed as error:
        failed = error
    else:
        assert not refused
        assert np.isfinite(matrix).all()
        assert matrix.shape[1] == len(SPEC.feature_names)
        return
    check_field_errors(failed, SPEC, columns)
    codes = {e.code for e in failed.errors}
    if failed.total <= MAX_REPORTED_ERRORS and not codes & {
        ErrorCode.MISSING_INPUT,
        ErrorCode.WRONG_SHAPE,
    }:
        # Values were checked and every error is shown: each refused text is among them, as
        # not a number (or, for "1e400", out of range).
        named = {
            (e.field, e.row)
            for e in failed.errors
            if e.code in {ErrorCode.NOT_A_NUMBER, ErrorCode.OUT_OF_RANGE}
        }
        assert refused <= named, (refused - named, failed)
