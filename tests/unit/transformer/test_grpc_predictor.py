"""The gRPC predictor client's pure parts: which answers are class probabilities, how gRPC
statuses map to 503/502, and how many rows go in one message. The client against the real
kserve-sklearnserver is tested in tests/integration/transformer."""

from __future__ import annotations

import re
from typing import Any

import grpc  # type: ignore[import-untyped]
import numpy as np
import pytest
from kserve.protocol.grpc.grpc_predict_v2_pb2 import InferTensorContents, ModelInferResponse

from transformer.errors import PredictorProtocolError, PredictorUnavailable
from transformer.grpc_predictor import (
    MESSAGE_MARGIN_BYTES,
    UNAVAILABLE_CODES,
    GrpcPredictorClient,
    decode_infer_response,
    rows_per_message,
    status_error,
)

PROBABILITIES = np.array([[0.9, 0.1], [0.25, 0.75], [0.5, 0.5]])
ROWS = len(PROBABILITIES)
Output = ModelInferResponse.InferOutputTensor


def raw_answer(
    values: np.ndarray, datatype: str = "FP64", shape: list[int] | None = None
) -> ModelInferResponse:
    output = Output(name="output-0", datatype=datatype, shape=shape or list(values.shape))
    return ModelInferResponse(outputs=[output], raw_output_contents=[values.tobytes()])


def typed_answer(values: np.ndarray) -> ModelInferResponse:
    contents = InferTensorContents(fp64_contents=values.ravel().tolist())
    output = Output(name="output-0", datatype="FP64", shape=list(values.shape), contents=contents)
    return ModelInferResponse(outputs=[output])


@pytest.mark.parametrize("answer", [raw_answer, typed_answer], ids=["raw", "typed"])
def test_fp64_probabilities_raw_or_typed_give_the_positive_class(answer: Any) -> None:
    got = decode_infer_response(answer(PROBABILITIES), ROWS)
    assert got.dtype == np.float64
    assert got.tolist() == [0.1, 0.75, 0.5]


REFUSED = {
    "class labels": (raw_answer(np.array([0, 1, 1], dtype=np.int64), "INT64"), "INT64 [3]"),
    "FP32": (raw_answer(PROBABILITIES.astype(np.float32), "FP32"), "FP32 [3, 2]"),
    "fewer rows": (raw_answer(PROBABILITIES[:2]), "FP64 [2, 2]; expected class probabilities"),
    "three classes": (raw_answer(np.ones((3, 3))), "FP64 [3, 3]"),
    "bytes short of the shape": (
        raw_answer(PROBABILITIES[:2], shape=[3, 2]),
        "holds 32 bytes, expected 48",
    ),
    "values short of the shape": (
        ModelInferResponse(
            outputs=[
                Output(
                    name="output-0",
                    datatype="FP64",
                    shape=[3, 2],
                    contents=InferTensorContents(fp64_contents=[0.5, 0.5]),
                )
            ]
        ),
        "holds 2 values, expected 6",
    ),
    "two outputs": (
        ModelInferResponse(outputs=[Output(name="a"), Output(name="b")]),
        "expected exactly one output, got ['a', 'b']",
    ),
    "no output": (ModelInferResponse(), "expected exactly one output, got []"),
    "two raw contents for one output": (
        ModelInferResponse(
            outputs=[Output(name="output-0", datatype="FP64", shape=[3, 2])],
            raw_output_contents=[PROBABILITIES.tobytes(), b""],
        ),
        "2 raw output contents for one output",
    ),
}


@pytest.mark.parametrize("case", REFUSED)
def test_anything_but_fp64_class_probabilities_for_every_row_is_refused(case: str) -> None:
    response, reason = REFUSED[case]
    with pytest.raises(PredictorProtocolError, match=re.escape(reason)):
        decode_infer_response(response, ROWS)


FAILED_STATUSES = [code for code in grpc.StatusCode if code != grpc.StatusCode.OK]


@pytest.mark.parametrize("code", FAILED_STATUSES, ids=lambda code: code.name)
def test_failing_statuses_are_503_and_refusals_502(code: Any) -> None:
    error = status_error(code, "127.0.0.1:8086")
    unavailable = {
        "UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN",
        "CANCELLED", "ABORTED",
    }  # fmt: skip
    expected = PredictorUnavailable if code.name in unavailable else PredictorProtocolError
    assert type(error) is expected
    assert "127.0.0.1:8086" in str(error)
    assert code.name in str(error)
    assert {c.name for c in UNAVAILABLE_CODES} == unavailable


def test_rows_per_message_keep_request_and_answer_under_the_limit() -> None:
    limit = 8 * 1024 * 1024
    rows = rows_per_message(45, limit)
    assert (
        rows * 45 * 8 + MESSAGE_MARGIN_BYTES <= limit < (rows + 1) * 45 * 8 + MESSAGE_MARGIN_BYTES
    )
    # One feature: the answer (two values a row) is the larger message.
    assert rows_per_message(1, limit) == (limit - MESSAGE_MARGIN_BYTES) // 16
    assert rows_per_message(10**9, limit) == 1


@pytest.mark.parametrize(
    ("address", "limit", "reason"),
    [
        ("127.0.0.1", 8 << 20, "host:port"),
        ("http://127.0.0.1:8086", 8 << 20, "host:port"),
        ("127.0.0.1:8086", MESSAGE_MARGIN_BYTES, "must exceed"),
    ],
)
def test_unusable_addresses_and_limits_are_refused(address: str, limit: int, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        GrpcPredictorClient(address, "churn", 1.0, limit)
