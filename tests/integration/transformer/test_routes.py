"""The route allowlist, walked against the real transformer process: every route kserve's app
registers, with every method, with and without a token; and the v2 metadata a KServe user
reads."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from devstack.stack import REPO_ROOT, Stack

from .conftest import Trained

pytestmark = pytest.mark.integration

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# (method, path) -> status without a token, status with one (the infer body "{}" is invalid).
ALLOWLIST = {
    ("GET", "/v2/health/live"): (200, 200),
    ("GET", "/v2/health/ready"): (200, 200),
    ("GET", "/v2/models/churn/ready"): (200, 200),
    ("GET", "/metrics"): (200, 200),
    ("GET", "/v2"): (401, 200),
    ("GET", "/v2/models/churn"): (401, 200),
    ("POST", "/v2/models/churn/infer"): (401, 400),
}
ALLOWED_PATHS = {path for _, path in ALLOWLIST}


@pytest.fixture(scope="module")
def kserve_paths(trained: Trained) -> set[str]:
    """Every path kserve's app registers for this model, as its REST server builds it."""
    output = subprocess.run(
        [sys.executable, "-m", "tests.integration.transformer.kserve_routes", trained.bundle_dir],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return {
        route["path"].format(model_name="churn", model_version="1") for route in json.loads(output)
    }


def test_the_walk_covers_the_routes_the_review_reached(kserve_paths: set[str]) -> None:
    assert {
        "/v2/repository/models/churn/unload",
        "/v2/repository/models/churn/load",
        "/v2/models/churn/versions/1/infer",
        "/v1/models/churn:predict",
        "/v1/models/churn:explain",
        "/openapi.json",
    } <= kserve_paths
    assert kserve_paths >= ALLOWED_PATHS


@pytest.mark.parametrize("token", [False, True], ids=["no token", "token"])
def test_only_the_allowlist_is_reachable(stack: Stack, kserve_paths: set[str], token: bool) -> None:
    headers = {"content-type": "application/json", **(stack.auth_header() if token else {})}
    with httpx.Client(base_url=stack.transformer.url, headers=headers) as client:
        for path in sorted(kserve_paths | {"/v2/models/other/infer", "/nowhere"}):
            for method in METHODS:
                response = client.request(method, path, content=b"{}")
                where = f"{method} {path}"
                if (method, path) in ALLOWLIST:
                    assert response.status_code == ALLOWLIST[method, path][token], where
                    continue
                if path in ALLOWED_PATHS:
                    assert response.status_code == 405, where
                    assert response.headers["allow"]
                else:
                    assert response.status_code == 404, where
                if method != "HEAD":
                    assert "error" in response.json(), where
        # Nothing above unloaded the model.
        assert client.get("/v2/models/churn/ready").status_code == 200


@pytest.mark.parametrize("body", [b"", b'{"instances": [[1]]}'], ids=["empty", "json"])
@pytest.mark.parametrize(
    "path", ["/v2/models/churn/infer", "/v1/models/churn:predict", "/v1/models/churn:explain"]
)
def test_binary_cloudevents_get_4xx_not_5xx(stack: Stack, path: str, body: bytes) -> None:
    # kserve's v1 routes answered an empty binary-mode CloudEvent with a 500 (AttributeError).
    response = httpx.post(
        stack.transformer.url + path,
        content=body,
        headers={
            **stack.auth_header(),
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": "1",
            "ce-source": "test",
            "ce-type": "test",
        },
    )
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_model_metadata_lists_every_input_and_output(stack: Stack, trained: Trained) -> None:
    url = f"{stack.transformer.url}/v2/models/churn"
    assert httpx.get(url).status_code == 401
    document = httpx.get(url, headers=stack.auth_header()).json()
    spec = trained.bundle.spec
    expected_inputs = [
        *({"name": n.name, "datatype": "INT64" if n.integer else "FP64"} for n in spec.numeric),
        *({"name": c.name, "datatype": "BYTES"} for c in spec.categorical),
        {"name": "customerID", "datatype": "BYTES"},
    ]
    assert document["name"] == "churn"
    assert [{k: t[k] for k in ("name", "datatype")} for t in document["inputs"]] == (
        expected_inputs
    )
    assert [(t["name"], t["datatype"]) for t in document["outputs"]] == [
        ("churn_probability", "FP64"),
        ("churn", "BOOL"),
        ("customerID", "BYTES"),
    ]
    assert all(t["shape"] == [-1] for t in document["inputs"] + document["outputs"])


def test_server_metadata_claims_no_extension_it_does_not_serve(stack: Stack) -> None:
    response = httpx.get(f"{stack.transformer.url}/v2", headers=stack.auth_header())
    assert response.json()["extensions"] == []
