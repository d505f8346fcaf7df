from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from model.schema import MAX_CATEGORY_CHARS, MAX_CUSTOMER_ID_CHARS, MAX_NUMBER_TEXT_CHARS
from model.spec import FeatureSpec
from transformer.codec import (
    BINARY_HEADER,
    DecodedRequest,
    RequestDecoder,
    decode_predictor_response,
    encode_predictor_request,
    encode_response,
)
from transformer.errors import PredictorProtocolError, Reason, RequestRejected

from .conftest import v2_inputs


def body(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def replace(inputs: list[dict[str, Any]], name: str, **fields: Any) -> list[dict[str, Any]]:
    return [{**t, **fields} if t["name"] == name else t for t in inputs]


def rejection(decoder: RequestDecoder, raw: bytes) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        decoder.decode(raw)
    return caught.value


def test_valid_request_decodes_into_float_and_string_columns(
    decoder: RequestDecoder, spec: FeatureSpec
) -> None:
    inputs = [
        *v2_inputs(3),
        {"name": "customerID", "datatype": "BYTES", "shape": [3], "data": ["a", "b", "c"]},
    ]
    decoded = decoder.decode(body(inputs, id="req-7"))
    assert decoded.rows == 3
    assert decoded.request_id == "req-7"
    assert decoded.customer_ids == ["a", "b", "c"]
    tenure = decoded.columns["tenure"]
    assert isinstance(tenure, np.ndarray)
    assert tenure.dtype == np.float64
    assert decoded.columns["gender"] == ["Female", "Male", "Female"]
    assert spec.transform(decoded.columns).matrix.shape == (3, len(spec.feature_names))


def test_numbers_as_text_and_nulls_become_missing_values(decoder: RequestDecoder) -> None:
    inputs = replace(v2_inputs(3), "TotalCharges", datatype="BYTES", data=["29.85", " ", None])
    inputs = replace(inputs, "MonthlyCharges", data=[1.5, None, 3])
    decoded = decoder.decode(body(inputs))
    assert decoded.columns["TotalCharges"] == ["29.85", " ", ""]
    monthly = decoded.columns["MonthlyCharges"]
    assert monthly[0] == 1.5
    assert np.isnan(monthly[1])
    assert monthly[2] == 3.0


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", Reason.MALFORMED_JSON),
        (b"[1, 2]", Reason.INVALID_REQUEST),
        (b'{"inputs": []}', Reason.INVALID_REQUEST),
        (b'{"inputs": [], "id": 5}', Reason.INVALID_REQUEST),
    ],
)
def test_bodies_that_are_not_v2_requests(
    raw: bytes, reason: Reason, decoder: RequestDecoder
) -> None:
    rejected = rejection(decoder, raw)
    assert rejected.status == 400
    assert rejected.reasons == {reason}
    assert rejected.to_json()["details"][0]["reason"]


def test_every_missing_feature_is_named(decoder: RequestDecoder) -> None:
    inputs = [t for t in v2_inputs() if t["name"] not in {"tenure", "Contract"}]
    rejected = rejection(decoder, body(inputs))
    assert {(p.input, p.kind) for p in rejected.problems} == {
        ("tenure", Reason.MISSING_INPUT),
        ("Contract", Reason.MISSING_INPUT),
    }


@pytest.mark.parametrize(
    ("change", "kind", "row"),
    [
        ({"datatype": "FP64"}, Reason.WRONG_DATATYPE, None),  # on a categorical input
        ({"shape": [2, 1]}, Reason.WRONG_SHAPE, None),
        ({"shape": [3]}, Reason.WRONG_SHAPE, None),
        ({"shape": "2"}, Reason.WRONG_SHAPE, None),
        ({"data": ["Month-to-month", 7]}, Reason.WRONG_DATATYPE, 1),
        ({"data": [["One year"], "Two year"]}, Reason.WRONG_SHAPE, 0),
        ({"data": "One year"}, Reason.INVALID_REQUEST, None),
    ],
)
def test_bad_tensors_name_input_row_and_reason(
    change: dict[str, Any], kind: Reason, row: int | None, decoder: RequestDecoder
) -> None:
    rejected = rejection(decoder, body(replace(v2_inputs(2), "Contract", **change)))
    assert [(p.input, p.row, p.kind) for p in rejected.problems] == [("Contract", row, kind)]


def test_numeric_tensor_rejects_text_and_fractions_in_integer_types(
    decoder: RequestDecoder,
) -> None:
    inputs = replace(v2_inputs(3), "MonthlyCharges", data=[1.0, "2.5", True])
    inputs = replace(inputs, "tenure", datatype="INT64", data=[1, 2.5, 3])
    rejected = rejection(decoder, body(inputs))
    assert sorted((p.input, p.row) for p in rejected.problems) == [
        ("MonthlyCharges", 1),
        ("MonthlyCharges", 2),
        ("tenure", 1),
    ]
    assert rejected.reasons == {Reason.WRONG_DATATYPE}


def test_unknown_and_duplicate_inputs_are_refused(decoder: RequestDecoder) -> None:
    inputs = [*v2_inputs(), {"name": "Tenure", "datatype": "FP64", "shape": [2], "data": [1, 2]}]
    inputs.append(dict(inputs[0]))
    rejected = rejection(decoder, body(inputs))
    assert {(p.input, p.kind) for p in rejected.problems} == {
        ("Tenure", Reason.UNKNOWN_INPUT),
        ("gender", Reason.INVALID_REQUEST),
    }


def test_inconsistent_row_counts_name_the_odd_input(decoder: RequestDecoder) -> None:
    inputs = replace(v2_inputs(2), "gender", shape=[3], data=["Male", "Male", "Female"])
    rejected = rejection(decoder, body(inputs))
    assert [(p.input, p.kind) for p in rejected.problems] == [("gender", Reason.WRONG_SHAPE)]


def test_batches_over_the_row_limit_get_413(spec: FeatureSpec) -> None:
    small = RequestDecoder([n.name for n in spec.numeric], [c.name for c in spec.categorical], 2)
    rejected = rejection(small, body(v2_inputs(3)))
    assert rejected.status == 413
    assert rejected.reasons == {Reason.TOO_MANY_ROWS}


@pytest.mark.parametrize(
    ("name", "datatype", "limit"),
    [
        ("Contract", "BYTES", MAX_CATEGORY_CHARS),
        ("TotalCharges", "BYTES", MAX_NUMBER_TEXT_CHARS),
        ("customerID", "BYTES", MAX_CUSTOMER_ID_CHARS),
    ],
)
def test_text_longer_than_its_limit_is_refused_naming_input_and_row(
    name: str, datatype: str, limit: int, decoder: RequestDecoder
) -> None:
    # At the limit is fine (padding is allowed); one more character is not.
    fits = " " * (limit - 2) + ("12" if name == "TotalCharges" else "No")
    inputs = [t for t in v2_inputs(3) if t["name"] != name]
    data = {"Contract": ["One year"] * 3, "TotalCharges": ["1"] * 3, "customerID": ["a"] * 3}
    data[name] = [data[name][0], fits, fits + " "]
    inputs.append({"name": name, "datatype": datatype, "shape": [3], "data": data[name]})
    rejected = rejection(decoder, body(inputs))
    assert rejected.status == 400
    assert [(p.input, p.row, p.kind) for p in rejected.problems] == [(name, 2, Reason.TOO_LONG)]
    assert rejected.to_json()["details"] == [
        {"input": name, "row": 2, "reason": f"longer than {limit} characters"}
    ]


def test_every_too_long_cell_is_counted(decoder: RequestDecoder) -> None:
    inputs = replace(v2_inputs(200), "gender", data=["x" * 65] * 200)
    rejected = rejection(decoder, body(inputs))
    assert rejected.total == 200
    assert len(rejected.problems) == 50


def test_request_id_is_echoed_only_up_to_its_limit(decoder: RequestDecoder) -> None:
    assert decoder.decode(body(v2_inputs(), id="r" * 128)).request_id == "r" * 128
    rejected = rejection(decoder, body(v2_inputs(), id="r" * 129))
    assert [(p.input, p.kind) for p in rejected.problems] == [("id", Reason.TOO_LONG)]


def test_refusals_never_mirror_large_client_values(decoder: RequestDecoder) -> None:
    """Names, datatypes and shapes the client chose are echoed cut short, not in full."""
    huge = "n" * 100_000
    inputs = replace(v2_inputs(), "tenure", datatype=huge)
    inputs = replace(inputs, "Contract", shape=list(range(100_000)))
    inputs.append({"name": huge, "datatype": "BYTES", "shape": [2], "data": ["a", "b"]})
    for raw in (body(inputs), body(v2_inputs(), outputs=[{"name": huge}])):
        rejected = rejection(decoder, raw)
        assert rejected.problems
        assert len(orjson.dumps(rejected.to_json())) < 2000


def test_requested_outputs_are_checked_and_kept(decoder: RequestDecoder) -> None:
    decoded = decoder.decode(body(v2_inputs(), outputs=[{"name": "churn"}]))
    assert decoded.requested_outputs == ("churn",)
    rejected = rejection(decoder, body(v2_inputs(), outputs=[{"name": "predict"}]))
    assert rejected.problems[0].input == "predict"


def test_response_holds_probabilities_classes_ids_and_version() -> None:
    decoded = DecodedRequest(rows=2, columns={}, customer_ids=["x", "y"])
    raw = encode_response(
        model_name="churn",
        model_version="v9",
        response_id="r1",
        probabilities=np.array([0.25, 0.75]),
        churn=np.array([False, True]),
        customer_ids=decoded.customer_ids,
        requested_outputs=None,
        parameters={"model_version": "v9"},
    )
    document = orjson.loads(raw)
    assert document["model_version"] == "v9"
    assert document["parameters"]["model_version"] == "v9"
    assert document["outputs"] == [
        {"name": "churn_probability", "shape": [2], "datatype": "FP64", "data": [0.25, 0.75]},
        {"name": "churn", "shape": [2], "datatype": "BOOL", "data": [False, True]},
        {"name": "customerID", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
    ]


PROBABILITIES = np.array([[0.9, 0.1], [0.35, 0.65]])


@pytest.mark.parametrize(
    "response",
    [
        # kserve-sklearnserver, PREDICT_PROBA=true: output-0, flattened row-major.
        {"model_name": "churn", "outputs": [
            {"name": "output-0", "shape": [2, 2], "datatype": "FP64",
             "data": PROBABILITIES.ravel().tolist()}]},
        # MLServer's mlserver-sklearn (predict_fn=predict_proba), another v2 implementation:
        # the output's name does not matter.
        {"model_name": "churn", "id": "1", "parameters": {}, "outputs": [
            {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64",
             "parameters": {"content_type": "np"}, "data": PROBABILITIES.ravel().tolist()}]},
        # Nested rows are also valid v2 JSON.
        {"outputs": [{"name": "output-0", "shape": [2, 2], "datatype": "FP32",
                      "data": PROBABILITIES.tolist()}]},
    ],
)  # fmt: skip
def test_both_runtimes_probability_outputs_give_the_positive_column(
    response: dict[str, Any],
) -> None:
    positive = decode_predictor_response(orjson.dumps(response), {}, rows=2)
    np.testing.assert_allclose(positive, [0.1, 0.65], rtol=1e-6)


def test_binary_tensor_response_is_read_from_the_raw_tail() -> None:
    raw = PROBABILITIES.astype("<f8").tobytes()
    header = orjson.dumps(
        {"outputs": [{"name": "output-0", "shape": [2, 2], "datatype": "FP64",
                      "parameters": {"binary_data_size": len(raw)}}]}
    )  # fmt: skip
    positive = decode_predictor_response(header + raw, {BINARY_HEADER: str(len(header))}, rows=2)
    assert positive.tolist() == [0.1, 0.65]


@pytest.mark.parametrize(
    "response",
    [
        {"outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 1]}]},
        {"outputs": [{"name": "output-0", "shape": [3, 2], "datatype": "FP64", "data": [0] * 6}]},
        {"outputs": [{"name": "output-0", "shape": [2, 2], "datatype": "FP64", "data": [0.5]}]},
        {"outputs": []},
        {"error": "boom"},
    ],
)
def test_anything_but_probabilities_is_a_protocol_error(response: dict[str, Any]) -> None:
    with pytest.raises(PredictorProtocolError):
        decode_predictor_response(orjson.dumps(response), {}, rows=2)


@pytest.mark.parametrize("binary", [False, True])
def test_predictor_request_carries_the_exact_matrix(binary: bool) -> None:
    matrix = np.array([[0.1, 1 / 3, -2.5e-300], [4.0, 5.0, 6.0]])
    raw, headers = encode_predictor_request(matrix, "r1", binary)
    if binary:
        json_length = int(headers[BINARY_HEADER])
        document = orjson.loads(raw[:json_length])
        tensor = document["inputs"][0]
        values = np.frombuffer(raw[json_length:], dtype="<f8")
        assert tensor["parameters"]["binary_data_size"] == matrix.nbytes
        # Binary both ways: the answer's probabilities come back as raw bytes too.
        assert document["parameters"] == {"binary_data_output": True}
    else:
        document = orjson.loads(raw)
        tensor = document["inputs"][0]
        values = np.asarray(tensor["data"], dtype=np.float64)
        assert "parameters" not in document
    assert tensor["datatype"] == "FP64"
    assert tensor["shape"] == [2, 3]
    assert np.array_equal(values.reshape(2, 3), matrix)
