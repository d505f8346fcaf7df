"""Contract error codes become closed metric labels; checked against the real spec."""

from __future__ import annotations

import numpy as np
import pytest

from model.errors import ErrorCode, FieldError, ValidationFailed
from model.spec import FeatureSpec
from transformer.errors import Reason, problem_from_field_error

from .conftest import v2_inputs


def spec_errors(spec: FeatureSpec, changes: dict[str, list[object]]) -> set[tuple[str, Reason]]:
    columns = {t["name"]: np.array(t["data"], dtype=object) for t in v2_inputs(2)}
    for name, values in changes.items():
        columns[name] = np.array(values, dtype=object)
    with pytest.raises(ValidationFailed) as caught:
        spec.transform(columns)
    return {(e.field, problem_from_field_error(e).kind) for e in caught.value.errors}


def test_each_spec_reason_gets_its_label(spec: FeatureSpec) -> None:
    found = spec_errors(
        spec,
        {
            "tenure": [-1, 2.5],
            "MonthlyCharges": ["abc", ""],
            "Contract": ["Montly", ""],
        },
    )
    assert found == {
        ("tenure", Reason.OUT_OF_RANGE),
        ("tenure", Reason.NOT_WHOLE),
        ("MonthlyCharges", Reason.NOT_A_NUMBER),
        ("MonthlyCharges", Reason.MISSING_VALUE),
        ("Contract", Reason.UNKNOWN_CATEGORY),
        ("Contract", Reason.MISSING_VALUE),
    }


def test_every_contract_error_code_is_a_reason() -> None:
    for code in ErrorCode:
        error = FieldError("x", 1, code, "why")
        assert problem_from_field_error(error).kind.value == code.value
