"""Peak memory of a real transformer process for one request at the chart's body limit.

docs/api.md ("Limits and memory") derives the bound: a request may raise the process's peak
resident memory by at most MEMORY_PER_BODY_BYTE bytes per byte of its body, whatever its shape.
The chart sizes the transformer's memory limit from it (helm/churn-predictor/values.yaml).
Each shape runs in a process of its own, so no earlier request's freed memory hides its cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from devstack.stack import Service, Stack
from model.schema import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES

from .conftest import CHART_TRANSFORMER_ENV

pytestmark = pytest.mark.integration

MEMORY_PER_BODY_BYTE = 40
BODY_LIMIT = int(CHART_TRANSFORMER_ENV["CHURN_TRANSFORMER_MAX_BODY_BYTES"])
SHORTEST = {f.name: min(f.values, key=len) for f in CATEGORICAL_FEATURES}


def request(rows: int, numbers: list[Any], datatype: str = "INT64") -> dict[str, Any]:
    """Every feature; numeric columns all hold ``numbers``, categories their shortest value."""
    tensors = []
    for feature in FEATURES:
        if feature in NUMERIC_FEATURES:
            typed, data = datatype, numbers
        else:
            typed, data = "BYTES", [SHORTEST[feature.name]] * rows
        tensors.append({"name": feature.name, "datatype": typed, "shape": [rows], "data": data})
    return {"inputs": tensors}


def long_numbers_as_text(size: int) -> bytes:
    """Defect of old: a numeric BYTES column became a numpy array of rows x longest x 4 bytes.

    250 rows, each numeric column holding one value as long as the rest of the body allows.
    """
    rows = 250
    base = len(orjson.dumps(request(rows, [""] * rows, "BYTES")))
    longest = (size - base) // len(NUMERIC_FEATURES)
    return orjson.dumps(request(rows, ["9" * longest] + [""] * (rows - 1), "BYTES"))


def smallest_valid_rows(size: int) -> bytes:
    """As many rows as fit, each as short as valid rows get: every one is decoded and scored."""
    per_row = len(orjson.dumps(request(2, [0, 0]))) - len(orjson.dumps(request(1, [0])))
    rows = (size - len(orjson.dumps(request(1, [0])))) // per_row
    return orjson.dumps(request(rows, [0] * rows))


def cells(cell: bytes) -> Callable[[int], bytes]:
    """One tensor of an unknown input holding as many copies of ``cell`` as fit: all of them
    are JSON-decoded before the name is found unknown."""

    def build(size: int) -> bytes:
        head = b'{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":['
        tail = b"]}]}"
        count = (size - len(head) - len(tail) + 1) // (len(cell) + 1)
        return head + b",".join([cell] * count) + tail

    return build


SHAPES: dict[str, tuple[Callable[[int], bytes], int]] = {
    "long numbers as text": (long_numbers_as_text, 400),
    "smallest valid rows": (smallest_valid_rows, 200),
    "empty arrays": (cells(b"[]"), 400),
    "short strings": (cells(b'"ab"'), 400),
}


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident) of a process, in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        key: int(value) * 1024
        for key, value in re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE)
    }


def reset_peak(pid: int) -> None:
    """Set VmHWM back to the current VmRSS (proc(5), clear_refs "5")."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@pytest.mark.parametrize("shape", SHAPES)
def test_one_request_raises_peak_memory_by_a_bounded_multiple_of_its_body(
    shape: str, own_transformer: Service, stack: Stack
) -> None:
    build, status = SHAPES[shape]
    body = build(BODY_LIMIT)
    assert BODY_LIMIT - 1024 < len(body) <= BODY_LIMIT
    url = f"{own_transformer.url}/v2/models/{stack.model_name}/infer"
    headers = {**stack.auth_header(), "content-type": "application/json"}
    pid = own_transformer.process.pid
    with httpx.Client(timeout=120) as client:
        # First requests load lazily imported code on the answer and error paths.
        for warmup in (build(4096), smallest_valid_rows(4096)):
            client.post(url, content=warmup, headers=headers)
        reset_peak(pid)
        before = memory(pid)
        response = client.post(url, content=body, headers=headers)
        after = memory(pid)

    assert response.status_code == status, response.text[:500]
    growth = after["VmHWM"] - before["VmRSS"]
    assert growth <= MEMORY_PER_BODY_BYTE * len(body), (
        f"{shape}: peak grew by {growth / 2**20:.1f} MiB for a {len(body)}-byte body "
        f"({growth / len(body):.1f} bytes per body byte)"
    )
