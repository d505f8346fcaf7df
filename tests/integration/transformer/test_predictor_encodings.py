"""The transformer's predictor requests on the wire to the real kserve-sklearnserver: in each
encoding the runtime answers in kind, and the answer decodes to the in-process probabilities."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pytest

from devstack.stack import Stack
from transformer.codec import BINARY_HEADER, decode_predictor_response, encode_predictor_request

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
