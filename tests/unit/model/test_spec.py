"""FeatureSpec.transform: layout, declared policies, and errors that name field, row and reason."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.errors import ErrorCode, ValidationFailed
from model.schema import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from model.spec import (
    ASCII_WHITESPACE,
    MISSING,
    NUMBER_TEXT,
    UNKNOWN,
    FeatureSpec,
    InputColumn,
    UnknownPolicy,
    category_codes,
    parse_numbers,
)
from tests.specs import schema_spec


def make_spec(unknown: UnknownPolicy = "reject") -> FeatureSpec:
    return schema_spec(impute_value=7.0, mean=2.0, scale=4.0, unknown=unknown)


def columns(rows: int = 2) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for feature in FEATURES:
        if feature.kind == "numeric":
            out[feature.name] = np.full(rows, 1.0)
        else:
            out[feature.name] = np.array(
                [feature.values[i % len(feature.values)] for i in range(rows)]
            )
    return out


def test_layout_numeric_then_one_hot_blocks() -> None:
    spec = make_spec()
    matrix = spec.transform(columns(3)).matrix
    assert matrix.shape == (3, len(spec.feature_names))
    assert matrix.dtype == np.float64
    assert matrix.flags.c_contiguous
    numeric = len(NUMERIC_FEATURES)
    np.testing.assert_array_equal(matrix[:, :numeric], (1.0 - 2.0) / 4.0)
    gender = spec.feature_names.index("gender=Female")
    np.testing.assert_array_equal(matrix[:, gender : gender + 2], [[1, 0], [0, 1], [1, 0]])
    # Each categorical block is one-hot: the row sums equal the number of categoricals.
    np.testing.assert_array_equal(matrix[:, numeric:].sum(axis=1), len(CATEGORICAL_FEATURES))


def test_case_and_whitespace_match_the_canonical_category() -> None:
    data = columns(1)
    data["Contract"] = np.array(["  month-TO-month "])
    matrix = make_spec().transform(data).matrix
    names = make_spec().feature_names
    assert matrix[0, names.index("Contract=Month-to-month")] == 1.0


def test_missing_total_charges_is_imputed_and_counted() -> None:
    data = columns(3)
    data["TotalCharges"] = np.array(["", "5", " "], dtype=object)
    result = make_spec().transform(data)
    column = make_spec().feature_names.index("TotalCharges")
    np.testing.assert_array_equal(result.matrix[:, column], [(7 - 2) / 4, (5 - 2) / 4, (7 - 2) / 4])
    assert result.applied == {("TotalCharges", "impute"): 2}


def test_every_bad_value_is_named_by_field_row_and_reason() -> None:
    data = columns(4)
    data["tenure"] = np.array([1.0, 1.5, 500.0, np.nan])
    data["Contract"] = np.array(["One year", "Fortnightly", "", "Two year"])
    data["MonthlyCharges"] = np.array(["12", "abc", "1", "1"], dtype=object)
    with pytest.raises(ValidationFailed) as caught:
        make_spec().transform(data)
    found = {(e.field, e.row, e.reason.split(";")[0]) for e in caught.value.errors}
    assert found == {
        ("tenure", 1, "must be a whole number"),
        ("tenure", 2, "is outside the valid range [0, 120]"),
        ("tenure", 3, "value is missing"),
        ("Contract", 1, "unknown category"),
        ("Contract", 2, "value is missing"),
        ("MonthlyCharges", 1, "is not a number"),
    }
    assert caught.value.total == 6


def test_unknown_category_policy_zero_encodes_and_counts() -> None:
    data = columns(2)
    data["PaymentMethod"] = np.array(["Crypto", "Mailed check"])
    result = make_spec(unknown="zero").transform(data)
    names = make_spec().feature_names
    block = [i for i, n in enumerate(names) if n.startswith("PaymentMethod=")]
    np.testing.assert_array_equal(result.matrix[0, block], 0.0)
    assert result.matrix[1, block].sum() == 1.0
    assert result.applied == {("PaymentMethod", "unknown_zero"): 1}


def test_missing_inputs_and_ragged_lengths_are_rejected_before_any_row_work() -> None:
    data = columns(2)
    del data["gender"]
    data["tenure"] = np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValidationFailed) as caught:
        make_spec().transform(data)
    messages = {(e.field, e.row) for e in caught.value.errors}
    assert ("gender", None) in messages
    assert any(field == "tenure" for field, _ in messages)


def test_infinity_is_out_of_range_not_accepted() -> None:
    data = columns(1)
    data["MonthlyCharges"] = np.array([np.inf])
    with pytest.raises(ValidationFailed, match="MonthlyCharges"):
        make_spec().transform(data)


def test_error_examples_are_capped_but_the_total_is_exact() -> None:
    data = columns(500)
    data["tenure"] = np.full(500, -1.0)
    with pytest.raises(ValidationFailed) as caught:
        make_spec().transform(data)
    assert caught.value.total == 500
    assert len(caught.value.errors) == 50


def test_category_codes_mark_unknown_and_blank() -> None:
    codes = category_codes(np.array(["Yes", " no", "maybe", "  "]), ("No", "Yes"))
    np.testing.assert_array_equal(codes, [1, 0, UNKNOWN, MISSING])


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", 12.0),
        ("8684.80", 8684.8),
        ("1e5", 1e5),
        ("-.5", -0.5),
        ("+3.", 3.0),
        (" 12 ", 12.0),
        ("\t7\r\n", 7.0),
        ("1E-2", 0.01),
        ("007", 7.0),
        ("1e999", math.inf),  # a number, refused later as out of range
    ],
)
def test_number_grammar_accepts_ascii_decimal_text(text: str, number: float) -> None:
    # Alone (the whole-column path) and beside a refused value (the row-by-row path).
    for column, row in (([text], 0), (["x", text], 1)):
        values, not_a_number = parse_numbers(column)
        assert values[row] == number
        assert not not_a_number[row]


@pytest.mark.parametrize(
    "text",
    [
        "1_0",
        "\u0661\u0662",  # Arabic-Indic digits
        "\uff11\uff12",  # full-width digits
        "NaN",
        "nan",
        "inf",
        "-Infinity",
        "12\u00a0",  # no-break space is not ASCII whitespace
        "\u00a0",
        "1e",
        ".",
        "+",
        "--1",
        "1.2.3",
        "1 2",
        "0x10",
        "1e5.5",
        "12abc",
    ],
)
def test_number_grammar_refuses_everything_else(text: str) -> None:
    for column, row in (([text], 0), (["12", text], 1), (["", text], 1)):
        values, not_a_number = parse_numbers(column)
        assert not_a_number.tolist() == [r == row for r in range(len(column))]
        assert np.isnan(values[row])


def test_blank_text_and_none_are_missing_not_bad() -> None:
    values, not_a_number = parse_numbers(["", "  ", "\t\n", None, "2"])
    np.testing.assert_array_equal(values, [np.nan, np.nan, np.nan, np.nan, 2.0])
    assert not not_a_number.any()


@given(st.text(alphabet="0123456789+-.eE_ \t\nainf\u0661\uff11\u00a0", max_size=8))
def test_whole_column_paths_follow_the_grammar(text: str) -> None:
    """The float()-based paths (alone; beside a blank) and NUMBER_TEXT agree on any text."""
    for column in ([text], [text, ""]):
        values, not_a_number = parse_numbers(column)
        if NUMBER_TEXT.fullmatch(text):
            assert values[0] == float(text)
            assert not not_a_number[0]
        else:
            assert np.isnan(values[0])
            assert not_a_number[0] == bool(text.strip(ASCII_WHITESPACE))


def test_nan_text_is_not_a_number_even_where_missing_values_are_imputed() -> None:
    data: dict[str, InputColumn] = {**columns(4)}
    data["TotalCharges"] = ["NaN", "", "1_0", "12"]
    with pytest.raises(ValidationFailed) as caught:
        make_spec().transform(data)
    assert [(e.field, e.row, e.code) for e in caught.value.errors] == [
        ("TotalCharges", 0, ErrorCode.NOT_A_NUMBER),
        ("TotalCharges", 2, ErrorCode.NOT_A_NUMBER),
    ]


def test_memory_of_numbers_as_text_follows_the_input_not_its_longest_value() -> None:
    """A fixed-width string array would take rows x longest x 4 bytes (400 MB here)."""
    rows, longest = 2000, 50_000
    data: dict[str, InputColumn] = {**columns(rows)}
    data["MonthlyCharges"] = ["1"] * (rows - 1) + ["9" * longest]
    tracemalloc.start()
    try:
        with pytest.raises(ValidationFailed, match="outside the valid range"):
            make_spec().transform(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_spec_round_trips_through_json_and_rejects_a_wrong_layout() -> None:
    spec = make_spec()
    assert FeatureSpec.from_json(spec.to_json()) == spec
    broken = spec.model_dump()
    broken["feature_names"] = list(reversed(broken["feature_names"]))
    with pytest.raises(ValueError, match="feature_names"):
        FeatureSpec.model_validate(broken)
