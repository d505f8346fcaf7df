"""Real HTTP through the transformer to the real kserve-sklearnserver: answers, formats and
error classes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

from devstack.demo import v2_request
from devstack.stack import Stack

from .conftest import MAX_BODY_BYTES, Trained

pytestmark = pytest.mark.integration


def post(stack: Stack, payload: Any, **kwargs: Any) -> httpx.Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        **stack.auth_header(),
        "content-type": "application/json",
        **kwargs.pop("headers", {}),
    }
    return httpx.post(stack.infer_url, content=content, headers=headers, timeout=120, **kwargs)


def outputs(response: httpx.Response) -> dict[str, list[Any]]:
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


@pytest.mark.parametrize("rows", [1, 1_000, 10_000])
def test_answers_equal_the_in_process_pipeline(
    hop_stack: Stack, trained: Trained, rows: int
) -> None:
    """Whichever way the transformer calls the runtime (the fixture's id: v2 gRPC, or v2 REST
    in JSON or binary tensors)."""
    customers = (trained.customers * (rows // len(trained.customers) + 1))[:rows]
    response = post(hop_stack, v2_request(customers, "parity"))
    assert response.status_code == 200, response.text
    document = response.json()
    got = outputs(response)
    expected = trained.expected_probabilities(customers)
    np.testing.assert_allclose(got["churn_probability"], expected, rtol=0, atol=1e-9)
    assert got["churn"] == (expected >= trained.bundle.threshold).tolist()
    assert got["customerID"] == [c["customerID"] for c in customers]
    assert document["id"] == "parity"
    assert document["model_version"] == trained.bundle.version
    assert document["parameters"]["model_version"] == trained.bundle.version
    shapes = {o["name"]: (o["datatype"], o["shape"]) for o in document["outputs"]}
    assert shapes["churn_probability"] == ("FP64", [rows])
    assert shapes["churn"] == ("BOOL", [rows])


def test_requested_outputs_only(stack: Stack, trained: Trained) -> None:
    request = {**v2_request(trained.customers[:2]), "outputs": [{"name": "churn"}]}
    response = post(stack, request)
    assert [o["name"] for o in response.json()["outputs"]] == ["churn"]


def with_column(request: dict[str, Any], name: str, **fields: Any) -> dict[str, Any]:
    inputs = [{**t, **fields} if t["name"] == name else t for t in request["inputs"]]
    return {**request, "inputs": inputs}


def without(request: dict[str, Any], name: str) -> dict[str, Any]:
    return {**request, "inputs": [t for t in request["inputs"] if t["name"] != name]}


ERROR_CASES = {
    "malformed JSON": (lambda r: b'{"inputs": [', 400, None, None, "malformed JSON"),
    "wrong datatype": (
        lambda r: with_column(r, "MonthlyCharges", data=[12.5, "lots", 7.0]),
        400, "MonthlyCharges", 1, "not a number",
    ),
    "wrong shape": (lambda r: with_column(r, "tenure", shape=[3, 1]), 400, "tenure", None, "shape"),
    "missing feature": (lambda r: without(r, "Contract"), 400, "Contract", None, "missing"),
    "unknown category": (
        lambda r: with_column(r, "Contract", data=["Monthly", "One year", "Two year"]),
        400, "Contract", 0, "unknown category",
    ),
    "out of range": (
        lambda r: with_column(r, "tenure", data=[1, 2, 500]), 400, "tenure", 2, "outside",
    ),
    "missing value": (
        lambda r: with_column(r, "gender", data=["Male", None, "Female"]),
        400, "gender", 1, "missing",
    ),
    "oversized body": (
        lambda r: b" " * (MAX_BODY_BYTES + 1), 413, None, None, "exceeds the limit",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", ERROR_CASES)
def test_each_error_class_names_input_row_and_reason(
    stack: Stack, trained: Trained, case: str
) -> None:
    build, status, name, row, reason = ERROR_CASES[case]
    response = post(stack, build(v2_request(trained.customers[:3])))
    assert response.status_code == status, response.text
    details = response.json()["details"]
    assert any(d["input"] == name and d["row"] == row and reason in d["reason"] for d in details), (
        details
    )


def test_unknown_model_is_404(stack: Stack, trained: Trained) -> None:
    url = stack.infer_url.replace("/churn/", "/other/")
    response = httpx.post(url, json=v2_request(trained.customers[:1]), headers=stack.auth_header())
    assert response.status_code == 404
