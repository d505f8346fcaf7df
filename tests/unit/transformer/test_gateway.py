"""The gateway middleware in front of a stand-in route, over ASGI (no sockets)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from transformer.auth import TokenStore
from transformer.gateway import Gateway, Message, Receive, Scope, Send
from transformer.metrics import Metrics
from transformer.ratelimit import RateLimiter

pytestmark = pytest.mark.anyio

TOKEN = "gateway-token-0123456789"
OPEN = frozenset({"/v2/health/ready", "/metrics"})


async def route(scope: Scope, receive: Receive, send: Send) -> None:
    """Echoes what the gateway hands on: the body size and the token name."""
    message: Message = await receive()
    state = scope.get("state", {})
    state["rows"] = 3
    payload = json.dumps(
        {"bytes": len(message.get("body", b"")), "token_name": state.get("token_name")}
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
def audit(caplog: pytest.LogCaptureFixture) -> Iterator[logging.Logger]:
    caplog.set_level(logging.INFO, logger="test.audit")
    return logging.getLogger("test.audit")


@pytest.fixture
def client(
    tmp_path: Path, registry: CollectorRegistry, audit: logging.Logger
) -> Iterator[httpx.AsyncClient]:
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(json.dumps({"team-a": TOKEN}))
    app = Gateway(
        route,
        tokens=TokenStore(tokens_file),
        limiter=RateLimiter(rate=0.001, burst=3),
        max_body_bytes=1024,
        open_paths=OPEN,
        metrics=Metrics(registry),
        audit=audit,
        model_version=lambda: "v1",
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


AUTH = {"authorization": f"Bearer {TOKEN}"}


async def test_open_paths_need_no_token(client: httpx.AsyncClient) -> None:
    for path in OPEN:
        assert (await client.get(path)).status_code == 200


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


async def test_admitted_requests_reach_the_route_with_body_and_token_name(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v2/models/churn/infer", content=b"x" * 1000, headers=AUTH)
    assert response.json() == {"bytes": 1000, "token_name": "team-a"}


async def test_bucket_exhaustion_gets_429_with_retry_after(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    statuses = [(await client.get("/v2/models", headers=AUTH)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await client.get("/v2/models", headers=AUTH)
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
    given = await client.get("/v2/models", headers={**AUTH, "x-request-id": "abc-123"})
    unsafe = await client.get("/v2/models", headers={**AUTH, "x-request-id": "a b\nc"})
    assert given.headers["x-request-id"] == "abc-123"
    assert len(unsafe.headers["x-request-id"]) == 32


async def test_one_audit_line_per_request_without_secrets(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, registry: CollectorRegistry
) -> None:
    await client.post(
        "/v2/models/churn/infer", content=b"{}", headers={**AUTH, "x-request-id": "r1"}
    )
    await client.post("/v2/models/churn/infer", headers={"authorization": "Bearer wrong-token"})
    lines: list[dict[str, Any]] = [json.loads(r.getMessage()) for r in caplog.records]
    assert next(
        (x["request_id"], x["token_name"], x["outcome"], x["status"], x["rows"]) for x in lines
    ) == ("r1", "team-a", "ok", 200, 3)
    assert (lines[1]["token_name"], lines[1]["outcome"], lines[1]["status"]) == (
        None,
        "unauthorized",
        401,
    )
    assert all(line["latency_ms"] >= 0 and line["model_version"] == "v1" for line in lines)
    assert TOKEN not in caplog.text
    assert "wrong-token" not in caplog.text
    assert (
        registry.get_sample_value(
            "churn_transformer_requests_total", {"outcome": "ok", "status": "200"}
        )
        == 1
    )
