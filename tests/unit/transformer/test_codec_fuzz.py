"""RequestDecoder.decode, then FeatureSpec.transform, under fuzzing: any v2-shaped body either
decodes to columns the spec turns into a finite matrix, or is refused with problems that name
input, row and reason. Nothing else escapes, and no refusal mirrors a large body back.

Examples per property come from the Hypothesis profile (tests/conftest.py; `make fuzz` runs
the deep one).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
from hypothesis import given
from hypothesis import strategies as st

from model.errors import ValidationFailed
from model.schema import CUSTOMER_ID
from tests.strategies import (
    ValidColumns,
    check_field_errors,
    huge_texts,
    json_cells,
    valid_columns,
)
from transformer.codec import DecodedRequest, RequestDecoder
from transformer.errors import Reason, RequestRejected

from .conftest import make_spec

SPEC = make_spec()
MAX_ROWS = 4
DECODER = RequestDecoder(
    numeric=[n.name for n in SPEC.numeric],
    categorical=[c.name for c in SPEC.categorical],
    max_rows=MAX_ROWS,
)
# Problems of these kinds are about one input, so they must say which.
PER_INPUT = frozenset(
    {
        Reason.MISSING_INPUT,
        Reason.UNKNOWN_INPUT,
        Reason.WRONG_DATATYPE,
        Reason.MISSING_VALUE,
        Reason.NOT_A_NUMBER,
        Reason.OUT_OF_RANGE,
        Reason.NOT_WHOLE,
        Reason.UNKNOWN_CATEGORY,
        Reason.TOO_LONG,
    }
)
# A refusal carries at most 50 problems of a few hundred characters each.
MAX_REFUSAL_BYTES = 32 * 1024


def v2_document(valid: ValidColumns) -> dict[str, Any]:
    """One tensor per column: numbers as INT64/FP64, text as BYTES; and customer ids."""
    inputs = []
    for name, cells in valid.raw.items():
        if any(isinstance(c, str) for c in cells):
            datatype = "BYTES"
        else:
            datatype = "INT64" if all(isinstance(c, int) for c in cells) else "FP64"
        inputs.append({"name": name, "datatype": datatype, "shape": [valid.rows], "data": cells})
    ids = [f"c-{row}" for row in range(valid.rows)]
    inputs.append({"name": CUSTOMER_ID, "datatype": "BYTES", "shape": [valid.rows], "data": ids})
    return {"inputs": inputs}


def to_body(document: Any) -> bytes:
    # The standard library writes NaN, Infinity and integers past 64 bits: all hostile input.
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def check_refusal(refusal: RequestRejected) -> None:
    assert refusal.status in {400, 413}
    assert refusal.problems
    assert refusal.total >= len(refusal.problems)
    for problem in refusal.problems:
        assert problem.reason.strip()
        assert isinstance(problem.kind, Reason)
        if problem.kind in PER_INPUT or problem.row is not None:
            assert problem.input is not None, problem
        assert problem.row is None or problem.row >= 0
    assert len(orjson.dumps(refusal.to_json())) <= MAX_REFUSAL_BYTES


def decode_and_transform(body: bytes) -> DecodedRequest | RequestRejected | ValidationFailed:
    """What the transformer makes of a body; only the project's refusals may escape."""
    try:
        decoded = DECODER.decode(body)
    except RequestRejected as refusal:
        check_refusal(refusal)
        return refusal
    assert 0 < decoded.rows <= MAX_ROWS
    assert set(decoded.columns) == set(SPEC.input_names)
    assert all(len(column) == decoded.rows for column in decoded.columns.values())
    try:
        matrix = SPEC.transform(decoded.columns).matrix
    except ValidationFailed as failed:
        check_field_errors(failed, SPEC, decoded.columns)
        return failed
    assert matrix.shape == (decoded.rows, len(SPEC.feature_names))
    assert np.isfinite(matrix).all()
    return decoded


CELLS = json_cells()
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
FIELDS = st.sampled_from(["name", "datatype", "shape", "data", "parameters"])


@st.composite
def hostile_bodies(draw: st.DrawFn) -> bytes:
    """A valid request, then a few of: a field of a tensor set to anything, a cell replaced, a
    tensor dropped, doubled or added, top-level fields set to anything, the bytes cut."""
    document = v2_document(draw(valid_columns(max_rows=MAX_ROWS + 1)))
    inputs: list[Any] = document["inputs"]
    for _ in range(draw(st.integers(0, 4))):
        tensor = inputs[draw(st.integers(0, len(inputs) - 1))]
        mutation = draw(st.integers(0, 7))
        if mutation == 0:
            tensor[draw(FIELDS)] = draw(ANY_JSON | CELLS)
        elif mutation == 1 and isinstance(tensor.get("data"), list) and tensor["data"]:
            tensor["data"][draw(st.integers(0, len(tensor["data"]) - 1))] = draw(CELLS)
        elif mutation == 2:
            inputs.remove(tensor)
            if not inputs:
                break
        elif mutation == 3:
            inputs.append(dict(tensor))
        elif mutation == 4:
            inputs.append({**tensor, "name": draw(st.text(max_size=10))})
        elif mutation == 5:
            key = draw(st.sampled_from(["id", "outputs", "parameters", "inputs"]))
            document[key] = draw(ANY_JSON | CELLS)
        elif mutation == 6:
            document["outputs"] = [{"name": draw(st.text(max_size=20))}]
        elif isinstance(tensor.get("data"), list) and tensor["data"]:
            tensor["data"][draw(st.integers(0, len(tensor["data"]) - 1))] = draw(huge_texts())
    body = to_body(document)
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body


@given(hostile_bodies() | ANY_JSON.map(to_body) | st.binary(max_size=64))
def test_any_body_decodes_or_is_refused_with_named_problems(body: bytes) -> None:
    decode_and_transform(body)


@given(valid_columns(max_rows=MAX_ROWS))
def test_valid_requests_decode_and_transform(valid: ValidColumns) -> None:
    decoded = decode_and_transform(to_body(v2_document(valid)))
    assert isinstance(decoded, DecodedRequest), decoded
    assert decoded.rows == valid.rows


@given(valid_columns(max_rows=MAX_ROWS), st.data())
def test_a_huge_cell_is_refused_by_the_decoder_naming_it(
    valid: ValidColumns, data: st.DataObject
) -> None:
    """Length limits hold before numpy allocates anything: text far past any limit, in any
    string column (numbers as text included), is refused with its input and row."""
    document = v2_document(valid)
    text_tensors = [t for t in document["inputs"] if t["datatype"] == "BYTES"]
    tensor = data.draw(st.sampled_from(text_tensors))
    row = data.draw(st.integers(0, valid.rows - 1))
    tensor["data"][row] = data.draw(huge_texts())
    refusal = decode_and_transform(to_body(document))
    assert isinstance(refusal, RequestRejected), refusal
    assert any(p.input == tensor["name"] and p.row == row for p in refusal.problems), refusal
