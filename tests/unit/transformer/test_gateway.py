"""The gateway with stand-in handlers and a stand-in app behind it, over ASGI (no sockets)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from transformer.audit import AuditTrail
from transformer.auth import TokenStore
from transformer.gateway import (
    TRAILERS_STATE_KEY,
    Gateway,
    Message,
    Receive,
    Reply,
    Route,
    Scope,
    Send,
)
from transformer.metrics import Metrics
from transformer.ratelimit import RateLimiter

pytestmark = pytest.mark.anyio

TOKEN = "gateway-token-0123456789"
INFER = "/v2/models/churn/infer"
READY = ("/v2/health/ready", "/v2/models/churn/ready")
METADATA = "/v2/models/churn"


async def infer(body: bytes, state: dict[str, Any]) -> Reply:
    """Echoes what the gateway hands on: the body size and the token name."""
    if body == b"crash":
        raise RuntimeError("a bug in the handler")
    state["rows"] = 3
    return Reply.json({"route": "infer", "bytes": len(body), "token_name": state["token_name"]})


async def ready(_body: bytes, _state: dict[str, Any]) -> Reply:
    return Reply.json({"ready": True})


ROUTES = {
    INFER: {"POST": Route(token=True, answer=infer)},
    **{path: {"GET": Route(token=False, answer=ready)} for path in READY},
    "/metrics": {"GET": Route(token=False)},
    METADATA: {"GET": Route(token=True), "PUT": Route(token=True)},
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the gateway (kserve's in the server): echoes the replayed body."""
    message: Message = await receive()
    state = scope.get("state", {})
    payload = json.dumps(
        {
            "route": "app",
            "bytes": len(message.get("body", b"")),
            "token_name": state.get("token_name"),
        }
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def audit_stream() -> io.BytesIO:
    return io.BytesIO()


@pytest.fixture
def gateway(tmp_path: Path, registry: CollectorRegistry, audit_stream: io.BytesIO) -> Gateway:
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps({"team-a": TOKEN}))
    return Gateway(
        app,
        routes=ROUTES,
        tokens=TokenStore(tokens_file),
        limiter=RateLimiter(rate=0.001, burst=3),
        max_body_bytes=1024,
        metrics=Metrics(registry),
        audit=AuditTrail(audit_stream),
        model_version=lambda: "v1",
    )


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


@pytest.fixture
def client(gateway: Gateway) -> httpx.AsyncClient:
    return client_for(gateway)


AUTH = {"authorization": f"Bearer {TOKEN}"}


async def test_probes_and_scrapes_need_no_token(client: httpx.AsyncClient) -> None:
    for path in READY:
        response = await client.get(path)
        assert (response.status_code, response.json()) == (200, {"ready": True})
    scrape = await client.get("/metrics")
    assert (scrape.status_code, scrape.json()["route"]) == (200, "app")


async def test_missing_and_wrong_tokens_get_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    missing = await client.post("/v2/models/churn/infer", content=b"{}")
    wrong = await client.post("/v2/models/churn/infer", headers={"authorization": "Bearer nope"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]
    assert (
        registry.get_sample_value("churn_transformer_auth_failures_total", {"reason": "missing"})
        == 1
    )
    assert (
        registry.get_sample_value("churn_transformer_auth_failures_total", {"reason": "invalid"})
        == 1
    )


async def test_two_authorization_lines_are_refused_whichever_holds_the_token(
    client: httpx.AsyncClient,
) -> None:
    good, bad = ("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer nope")
    for lines in ([good, bad], [bad, good], [good, good]):
        response = await client.post(INFER, content=b"{}", headers=httpx.Headers(lines))
        assert response.status_code == 400
        assert "Authorization" in response.json()["error"]


async def test_admitted_requests_reach_their_route_with_body_and_token_name(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(INFER, content=b"x" * 1000, headers=AUTH)
    assert response.json() == {"route": "infer", "bytes": 1000, "token_name": "team-a"}
    # A token route without a handler goes on to the app behind, body replayed.
    response = await client.put(METADATA, content=b"x" * 10, headers=AUTH)
    assert response.json() == {"route": "app", "bytes": 10, "token_name": "team-a"}


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["no token", "token"])
@pytest.mark.parametrize(
    "path",
    ["/v2/models/other/infer", "/v2/repository/models/churn/unload", "/v1/models/churn:predict",
     "/v2/models/churn/versions/1/infer", "/docs", "/", INFER + "/"],
)  # fmt: skip
async def test_paths_outside_the_table_get_a_json_404_token_or_not(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.post(path, content=b"{}", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"].startswith("unknown path; the routes are: POST " + INFER)


@pytest.mark.parametrize("headers", [{}, AUTH], ids=["no token", "token"])
async def test_other_methods_on_a_known_path_get_a_json_405_with_allow(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path, allowed in (
        ("GET", INFER, "POST"),
        ("DELETE", METADATA, "GET, PUT"),
        ("POST", READY[0], "GET"),
    ):
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 405
        assert response.headers["allow"] == allowed
        assert f"method {method} is not allowed here" in response.json()["error"]


async def test_a_request_whose_trailer_fields_arrived_is_refused_after_its_body(
    gateway: Gateway,
) -> None:
    async def with_trailers(scope: Scope, receive: Receive, send: Send) -> None:
        """What the server's HTTP protocol does when trailer fields follow the last chunk."""
        scope.setdefault("state", {})[TRAILERS_STATE_KEY] = True
        await gateway(scope, receive, send)

    response = await client_for(with_trailers).post(INFER, content=b"{}", headers=AUTH)
    assert response.status_code == 400
    assert "trailer fields are not accepted" in response.json()["error"]


async def test_a_trailer_header_is_refused_before_the_token_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(INFER, content=b"{}", headers={**AUTH, "trailer": "x-digest"})
    assert response.status_code == 400
    assert "trailer" in response.json()["error"]


async def test_bucket_exhaustion_gets_429_with_retry_after(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    statuses = [(await client.get(METADATA, headers=AUTH)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get(METADATA, headers=AUTH)
    assert int(limited.headers["retry-after"]) >= 1
    assert (
        registry.get_sample_value("churn_transformer_rate_limited_total", {"token_name": "team-a"})
        == 2
    )


async def test_oversized_bodies_get_413_declared_or_streamed(client: httpx.AsyncClient) -> None:
    declared = await client.post("/v2/models/churn/infer", content=b"x" * 2000, headers=AUTH)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * 500

    streamed = await client.post("/v2/models/churn/infer", content=chunks(), headers=AUTH)
    for response in (declared, streamed):
        assert response.status_code == 413
        detail = response.json()["details"][0]
        assert detail["input"] is None
        assert detail["row"] is None
        assert "1024 bytes" in detail["reason"]


async def test_request_ids_are_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get(METADATA, headers={**AUTH, "x-request-id": "abc-123"})
    unsafe = await client.get(METADATA, headers={**AUTH, "x-request-id": "a b\nc"})
    assert given.headers["x-request-id"] == "abc-123"
    assert len(unsafe.headers["x-request-id"]) == 32


async def test_one_audit_line_per_request_without_secrets(
    client: httpx.AsyncClient, audit_stream: io.BytesIO, registry: CollectorRegistry
) -> None:
    await client.post(
        "/v2/models/churn/infer", content=b"{}", headers={**AUTH, "x-request-id": "r1"}
    )
    await client.post("/v2/models/churn/infer", headers={"authorization": "Bearer wrong-token"})
    text = audit_stream.getvalue().decode()
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 2
    assert next(
        (x["request_id"], x["token_name"], x["outcome"], x["status"], x["rows"]) for x in lines
    ) == ("r1", "team-a", "ok", 200, 3)
    assert (lines[1]["token_name"], lines[1]["outcome"], lines[1]["status"]) == (
        None,
        "unauthorized",
        401,
    )
    assert all(line["latency_ms"] >= 0 and line["model_version"] == "v1" for line in lines)
    assert TOKEN not in text
    assert "wrong-token" not in text
    assert (
        registry.get_sample_value(
            "churn_transformer_requests_total", {"outcome": "ok", "status": "200"}
        )
        == 1
    )


async def test_a_failing_handler_gets_500_and_the_server_goes_on(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    crashed = await client.post(INFER, content=b"crash", headers=AUTH)
    assert crashed.status_code == 500
    assert "internal error" in crashed.json()["error"]
    assert (await client.post(INFER, content=b"{}", headers=AUTH)).status_code == 200
    assert (
        registry.get_sample_value(
            "churn_transformer_requests_total", {"outcome": "error", "status": "500"}
        )
        == 1
    )
