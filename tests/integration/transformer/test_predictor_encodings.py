"""The transformer's predictor requests on the wire to the real kserve-sklearnserver: in each
REST encoding the runtime answers in kind; every answer, REST or gRPC, decodes to the in-process
probabilities, also when the gRPC client splits a batch in row chunks."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import orjson
import pytest

from devstack.stack import Stack
from transformer.codec import BINARY_HEADER, decode_predictor_response, encode_predictor_request
from transformer.grpc_predictor import FP64_BYTES, MESSAGE_MARGIN_BYTES, GrpcPredictorClient

from .conftest import Trained

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("rows", [1, 1_000])
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_the_runtime_answers_in_the_encoding_asked_for(
    stack: Stack, trained: Trained, binary: bool, rows: int
) -> None:
    customers = (trained.customers * (rows // len(trained.customers) + 1))[:rows]
    body, headers = encode_predictor_request(trained.matrix(customers), "wire", binary)
    response = httpx.post(
        f"{stack.predictor.url}/v2/models/{stack.model_name}/infer",
        content=body,
        headers=headers,
        timeout=60,
    )
    assert response.status_code == 200, response.text

    json_length = int(response.headers.get(BINARY_HEADER, len(response.content)))
    (output,) = orjson.loads(response.content[:json_length])["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("output-0", "FP64", [rows, 2])
    if binary:
        assert "data" not in output
        assert output["parameters"]["binary_data_size"] == rows * 2 * 8
        assert len(response.content) == json_length + rows * 2 * 8
    else:
        assert BINARY_HEADER not in response.headers
        assert len(output["data"]) == rows * 2

    probabilities = decode_predictor_response(response.content, response.headers, rows)
    expected = trained.expected_probabilities(customers)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-9)


def customers_for(trained: Trained, rows: int) -> list[dict[str, object]]:
    return (trained.customers * (rows // len(trained.customers) + 1))[:rows]


async def grpc_predict(
    stack: Stack, matrix: np.ndarray, max_message_bytes: int
) -> tuple[np.ndarray, bool]:
    """Probabilities from the transformer's gRPC client, and its readiness, in one loop."""
    client = GrpcPredictorClient(
        stack.predictor.predictor_host("grpc-v2"), stack.model_name, 60, max_message_bytes
    )
    try:
        return await client.predict_proba(matrix, "wire"), await client.ready()
    finally:
        await client.aclose()


@pytest.mark.parametrize("rows", [1, 1_000])
def test_the_grpc_client_reads_the_in_process_probabilities_and_readiness(
    stack: Stack, trained: Trained, rows: int
) -> None:
    customers = customers_for(trained, rows)
    probabilities, ready = asyncio.run(
        grpc_predict(stack, trained.matrix(customers), 8 * 1024 * 1024)
    )
    assert ready
    expected = trained.expected_probabilities(customers)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-9)


def test_a_batch_over_the_message_limit_goes_in_row_chunks_joined_in_order(
    stack: Stack, trained: Trained
) -> None:
    """Room for 100 rows a message: 1,001 rows go in 11 calls, the last of one row. Sent as one
    message they would exceed the channel's limit and fail (RESOURCE_EXHAUSTED, a 503)."""
    customers = customers_for(trained, 1_001)
    matrix = trained.matrix(customers)
    limit = MESSAGE_MARGIN_BYTES + 100 * matrix.shape[1] * FP64_BYTES
    assert matrix.nbytes > limit
    probabilities, _ = asyncio.run(grpc_predict(stack, matrix, limit))
    expected = trained.expected_probabilities(customers)
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-9)
