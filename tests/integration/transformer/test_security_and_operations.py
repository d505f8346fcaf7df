"""Tokens, rotation, rate limits, predictor failures, malformed input, metrics and audit lines."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from devstack.demo import v2_request
from devstack.processes import free_port
from devstack.stack import (
    Service,
    Stack,
    new_token,
    sklearnserver,
    transformer,
    write_tokens,
)
from transformer.settings import PredictorProtocol

from .conftest import Trained, another_transformer

pytestmark = pytest.mark.integration


def test_missing_invalid_and_malformed_tokens_get_401(stack: Stack, trained: Trained) -> None:
    request = v2_request(trained.customers[:1])
    for headers in ({}, {"authorization": "Bearer not-a-token"}, {"authorization": "Token x"}):
        response = httpx.post(stack.infer_url, json=request, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    for name in stack.tokens:
        response = httpx.post(stack.infer_url, json=request, headers=stack.auth_header(name))
        assert response.status_code == 200


@pytest.mark.parametrize(
    "path", ["/v2/health/live", "/v2/health/ready", "/metrics", "/v2/models/churn/ready"]
)
def test_probes_and_metrics_need_no_token(stack: Stack, path: str) -> None:
    assert httpx.get(stack.transformer.url + path).status_code == 200


def test_rotation_needs_no_restart(stack: Stack, trained: Trained) -> None:
    request = v2_request(trained.customers[:1])
    pid = stack.transformer.process.pid
    rotated = {"beta": stack.tokens["beta"], "gamma": new_token()}
    write_tokens(stack.tokens_file, rotated)
    try:
        old = httpx.post(stack.infer_url, json=request, headers=stack.auth_header("alpha"))
        new = httpx.post(
            stack.infer_url, json=request, headers={"authorization": f"Bearer {rotated['gamma']}"}
        )
        assert (old.status_code, new.status_code) == (401, 200)
        assert stack.transformer.process.pid == pid
        assert stack.transformer.process.running()
    finally:
        write_tokens(stack.tokens_file, stack.tokens)
    restored = httpx.post(stack.infer_url, json=request, headers=stack.auth_header("alpha"))
    assert restored.status_code == 200


@pytest.fixture(scope="module")
def limited(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A second transformer with a tiny bucket: 2 requests at once, one more per 10 s."""
    with another_transformer(
        stack,
        tmp_path_factory.mktemp("limited"),
        env={
            "CHURN_TRANSFORMER_RATE_LIMIT_PER_SECOND": "0.1",
            "CHURN_TRANSFORMER_RATE_LIMIT_BURST": "2",
        },
    ) as service:
        yield service


def test_rate_limit_is_per_token_with_retry_after(
    limited: Service, stack: Stack, trained: Trained
) -> None:
    url = f"{limited.url}/v2/models/churn/infer"
    request = v2_request(trained.customers[:1])
    alpha = [httpx.post(url, json=request, headers=stack.auth_header("alpha")) for _ in range(3)]
    assert [r.status_code for r in alpha] == [200, 200, 429]
    assert int(alpha[2].headers["retry-after"]) >= 1
    assert "alpha" in alpha[2].json()["error"]
    beta = httpx.post(url, json=request, headers=stack.auth_header("beta"))
    assert beta.status_code == 200


@pytest.fixture(scope="module")
def silent_predictor() -> Iterator[str]:
    """A TCP peer that accepts connections and never answers: a hung predictor."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


# What the 503 says, by protocol and predictor.
UNAVAILABLE_REASONS: dict[tuple[PredictorProtocol, str], str] = {
    ("grpc-v2", "down"): "failed with gRPC UNAVAILABLE",
    ("grpc-v2", "hung"): "failed with gRPC DEADLINE_EXCEEDED",
    ("v2", "down"): "unreachable",
    ("v2", "hung"): "did not answer in time",
}


@pytest.mark.parametrize("case", UNAVAILABLE_REASONS, ids="-".join)
def test_predictor_down_or_timing_out_is_503_not_500(
    case: tuple[PredictorProtocol, str],
    silent_predictor: str,
    stack: Stack,
    trained: Trained,
    tmp_path: Path,
) -> None:
    protocol, predictor = case
    host = f"127.0.0.1:{free_port()}" if predictor == "down" else silent_predictor
    with transformer(
        str(stack.bundle_dir),
        host,
        tmp_path,
        stack.tokens_file,
        protocol=protocol,
        env={"CHURN_TRANSFORMER_PREDICTOR_TIMEOUT_SECONDS": "1"},
        wait_for="/v2/health/live",
    ) as service:
        ready = httpx.get(f"{service.url}/v2/health/ready", timeout=10)
        assert ready.status_code == 503
        assert "predictor" in ready.json()["error"]
        response = httpx.post(
            f"{service.url}/v2/models/churn/infer",
            json=v2_request(trained.customers[:2]),
            headers=stack.auth_header(),
            timeout=30,
        )
        assert response.status_code == 503
        assert UNAVAILABLE_REASONS[case] in response.json()["error"]
        assert service.process.running()


def infer(service: Service, stack: Stack, trained: Trained, model_name: str) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v2/models/{model_name}/infer",
        json=v2_request(trained.customers[:2]),
        headers=stack.auth_header(),
        timeout=30,
    )


def test_grpc_runtime_stopped_is_503_and_not_ready(
    stack: Stack, trained: Trained, tmp_path: Path
) -> None:
    """A real kserve-sklearnserver of its own behind a gRPC transformer: served, then stopped."""
    with (
        sklearnserver(stack.bundle_dir, tmp_path) as runtime,
        transformer(
            str(stack.bundle_dir),
            runtime.predictor_host("grpc-v2"),
            tmp_path,
            stack.tokens_file,
            protocol="grpc-v2",
            wait_for="/v2/health/live",
        ) as service,
    ):
        assert httpx.get(f"{service.url}/v2/health/ready", timeout=10).status_code == 200
        assert infer(service, stack, trained, "churn").status_code == 200
        runtime.process.stop()
        response = infer(service, stack, trained, "churn")
        assert response.status_code == 503, response.text
        assert "failed with gRPC UNAVAILABLE" in response.json()["error"]
        ready = httpx.get(f"{service.url}/v2/health/ready", timeout=10)
        assert ready.status_code == 503
        assert ready.json() == {
            "ready": False,
            "error": f"predictor at {runtime.predictor_host('grpc-v2')} is not ready",
        }


def test_grpc_runtime_without_the_model_is_502(
    stack: Stack, trained: Trained, tmp_path: Path
) -> None:
    """A transformer serving the bundle as "other" in front of the stack's runtime, which serves
    it as "churn" only: the runtime refuses the call (gRPC NOT_FOUND), a 502, and the
    transformer is not ready."""
    with another_transformer(
        stack, tmp_path, "grpc-v2", model_name="other", wait_for="/v2/health/live"
    ) as service:
        response = infer(service, stack, trained, "other")
        assert response.status_code == 502, response.text
        assert "refused the request with gRPC NOT_FOUND" in response.json()["error"]
        assert httpx.get(f"{service.url}/v2/health/ready", timeout=10).status_code == 503


# Arbitrary JSON values, v2-shaped documents with arbitrary fields, and raw bytes.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
tensor_names = st.sampled_from(["gender", "tenure", "TotalCharges", "customerID", "Contract", "x"])
tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": tensor_names | json_values,
        "datatype": st.sampled_from(["BYTES", "FP64", "INT64", "BOOL", "FP16"]) | json_values,
        "shape": st.lists(st.integers(-2, 3), max_size=3) | json_values,
        "data": st.lists(json_values, max_size=4) | json_values,
        "parameters": json_values,
    },
)
payloads = (
    st.fixed_dictionaries(
        {"inputs": st.lists(tensors, max_size=6) | json_values},
        optional={"id": json_values, "outputs": json_values, "parameters": json_values},
    ).map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
)


@given(payload=payloads)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # examples: the profile
def test_malformed_payloads_get_4xx_and_never_crash(stack: Stack, payload: bytes) -> None:
    response = httpx.post(
        stack.infer_url,
        content=payload,
        headers={**stack.auth_header(), "content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500, (payload, response.text)
    assert "error" in response.json()
    assert stack.transformer.process.running()


def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{stack.transformer.url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def delta(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_count_known_traffic(stack: Stack, trained: Trained) -> None:
    version = trained.bundle.version
    before = scrape(stack)
    customers = trained.customers[:7]
    ok = httpx.post(stack.infer_url, json=v2_request(customers), headers=stack.auth_header())
    churned = sum(
        outputs["data"].count(True)
        for outputs in ok.json()["outputs"]
        if outputs["name"] == "churn"
    )
    bad = v2_request(customers[:2])
    bad["inputs"] = [t for t in bad["inputs"] if t["name"] != "tenure"]
    assert httpx.post(stack.infer_url, json=bad, headers=stack.auth_header()).status_code == 400
    assert httpx.post(stack.infer_url, json=bad).status_code == 401
    after = scrape(stack)

    assert delta(before, after, "churn_transformer_requests_total", outcome="ok", status="200") == 1
    assert (
        delta(before, after, "churn_transformer_requests_total", outcome="invalid", status="400")
        == 1
    )
    assert (
        delta(
            before, after, "churn_transformer_requests_total", outcome="unauthorized", status="401"
        )
        == 1
    )
    assert delta(before, after, "churn_transformer_auth_failures_total", reason="missing") == 1
    assert (
        delta(before, after, "churn_transformer_validation_failures_total", reason="missing_input")
        == 1
    )
    assert (
        delta(
            before,
            after,
            "churn_transformer_predictions_total",
            model_version=version,
            predicted_class="churn",
        )
        == churned
    )
    assert (
        delta(
            before,
            after,
            "churn_transformer_predictions_total",
            model_version=version,
            predicted_class="no_churn",
        )
        == 7 - churned
    )
    assert (
        delta(before, after, "churn_transformer_churn_probability_count", model_version=version)
        == 7
    )
    assert delta(before, after, "churn_transformer_batch_rows_count") == 1
    # A stage is timed whether it passes or rejects: the 400 ended in decode.
    stages = {"decode": 2, "preprocess": 1, "predict": 1, "postprocess": 1, "encode": 1}
    for stage, count in stages.items():
        assert (
            delta(before, after, "churn_transformer_stage_duration_seconds_count", stage=stage)
            == count
        )
    assert (
        delta(before, after, "churn_transformer_request_duration_seconds_count", outcome="ok") == 1
    )
    info = {k: v for k, v in after.items() if k[0] == "churn_transformer_model_info"}
    assert list(info.values()) == [1.0]
    assert ("model_version", version) in next(iter(info))[1]


def test_audit_log_has_one_line_per_request_and_no_secrets(stack: Stack, trained: Trained) -> None:
    customers = trained.customers[:3]
    response = httpx.post(
        stack.infer_url,
        json=v2_request(customers),
        headers={**stack.auth_header("beta"), "x-request-id": "audit-check-1"},
    )
    assert response.status_code == 200
    log = stack.transformer.process.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith('{"time"')]
    mine = [line for line in lines if line["request_id"] == "audit-check-1"]
    assert len(mine) == 1
    assert mine[0]["token_name"] == "beta"
    assert (mine[0]["outcome"], mine[0]["status"], mine[0]["rows"]) == ("ok", 200, 3)
    assert mine[0]["latency_ms"] > 0
    for token in stack.tokens.values():
        assert token not in log
    for customer in customers:
        assert customer["customerID"] not in log


def test_startup_log_names_the_predictor_and_how_it_is_called(
    stack: Stack, grpc_stack: Stack
) -> None:
    json_log = stack.transformer.process.log_path.read_text()
    assert f"predictor: {stack.predictor.url}, v2 REST, JSON\n" in json_log
    grpc_log = grpc_stack.transformer.process.log_path.read_text()
    grpc_port = stack.predictor.grpc_port
    assert f"predictor: 127.0.0.1:{grpc_port}, v2 gRPC, raw FP64 tensors\n" in grpc_log


def raw_exchange(stack: Stack, request: bytes) -> tuple[int, dict[str, Any]]:
    """Bytes as written, on a fresh connection to the real server; (status, JSON answer)."""
    url = httpx.URL(stack.transformer.url)
    with socket.create_connection((url.host, url.port), timeout=30) as connection:
        connection.sendall(request)
        response = http.client.HTTPResponse(connection)
        response.begin()
        assert response.getheader("content-type") == "application/json"
        return response.status, json.loads(response.read())


def chunked_infer(body: bytes, header_block: bytes, trailer: bytes = b"") -> bytes:
    """A chunked POST to the infer route: the header block, one chunk, then trailer fields."""
    return (
        b"POST /v2/models/churn/infer HTTP/1.1\r\nhost: transformer\r\n"
        b"content-type: application/json\r\ntransfer-encoding: chunked\r\n"
        + header_block
        + b"\r\n%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer)
    )


def test_credentials_come_from_the_header_block_never_from_trailers(
    stack: Stack, trained: Trained
) -> None:
    body = json.dumps(v2_request(trained.customers[:2])).encode()
    token = stack.tokens[next(iter(stack.tokens))]
    authorization = b"authorization: Bearer %s\r\n" % token.encode()
    # The whole request goes in one write, so the server parses the trailer before the app runs.
    status, answer = raw_exchange(stack, chunked_infer(body, b"", trailer=authorization))
    assert status == 401
    assert "missing bearer token" in answer["error"]
    status, answer = raw_exchange(
        stack, chunked_infer(body, authorization, trailer=b"x-checksum: 1\r\n")
    )
    assert status == 400
    assert "trailer" in answer["error"]
    status, answer = raw_exchange(stack, chunked_infer(body, authorization + b"trailer: x\r\n"))
    assert status == 400
    assert "trailer" in answer["error"]
    # Chunked uploads without trailers are served.
    assert raw_exchange(stack, chunked_infer(body, authorization))[0] == 200


def test_requests_the_http_parser_refuses_get_a_json_400(stack: Stack) -> None:
    status, answer = raw_exchange(stack, b"NOT HTTP AT ALL\x01\r\n\r\n")
    assert status == 400
    assert answer["error"]


def test_query_strings_never_reach_the_log(stack: Stack, trained: Trained) -> None:
    token = stack.tokens[next(iter(stack.tokens))]
    query = {"access_token": token, "marker": "query-string-marker"}
    with httpx.Client(base_url=stack.transformer.url, params=query) as client:
        for path in ("/v2/health/live", "/v2/health/ready", "/metrics", "/nowhere"):
            client.get(path)
        client.get("/v2/models/churn", headers=stack.auth_header())
        infer = client.post(
            "/v2/models/churn/infer",
            json=v2_request(trained.customers[:1]),
            headers=stack.auth_header(),
        )
        assert infer.status_code == 200
    log = stack.transformer.process.log_path.read_text()
    assert "query-string-marker" not in log
    assert token not in log
