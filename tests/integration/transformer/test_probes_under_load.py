"""Probes never queue behind a big batch: the real gateway, endpoints and model, called over
ASGI in this process so the order of events is exact."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from devstack.demo import v2_request
from devstack.stack import MODEL_NAME, Stack
from transformer.audit import AuditTrail
from transformer.auth import TokenStore
from transformer.gateway import ASGIApp, Message
from transformer.metrics import Metrics
from transformer.model import ChurnTransformer
from transformer.predictor import PredictorClient
from transformer.server import install
from transformer.settings import TransformerSettings

from .conftest import Trained

pytestmark = pytest.mark.integration


def gateway(stack: Stack, trained: Trained) -> ASGIApp:
    """The ASGI app the server runs, without kserve's routes (none is called here)."""
    settings = TransformerSettings(bundle_uri=str(trained.bundle_dir))
    metrics = Metrics(CollectorRegistry())
    predictor = PredictorClient(stack.predictor.url, MODEL_NAME, 10.0)
    model = ChurnTransformer(
        MODEL_NAME, settings.bundle_uri, predictor, metrics, settings.max_batch_rows
    )
    model.load()
    app = FastAPI()
    install(
        app,
        model=model,
        settings=settings,
        tokens=TokenStore(stack.tokens_file),
        metrics=metrics,
        audit=AuditTrail(io.BytesIO()),
    )
    built: ASGIApp = app.build_middleware_stack()
    return built


async def call(
    app: ASGIApp, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, Any]:
    """One request, the whole body available at once; (status, JSON answer)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"])


def test_a_readiness_probe_completes_while_a_maximum_batch_is_transformed(
    stack: Stack, trained: Trained
) -> None:
    app = gateway(stack, trained)
    rows = TransformerSettings.model_fields["max_batch_rows"].default
    customers = (trained.customers * (rows // len(trained.customers) + 1))[:rows]
    # Out of range in the last row: the whole batch is decoded and transformed, then refused
    # (no predictor call, whose wait would let the probe through even on the event loop).
    customers[-1] = {**customers[-1], "tenure": 500}
    body = orjson.dumps(v2_request(customers))
    completed: list[str] = []

    async def scenario() -> tuple[tuple[int, Any], tuple[int, Any]]:
        async def batch() -> tuple[int, Any]:
            answer = await call(app, "POST", "/v2/models/churn/infer", stack.auth_header(), body)
            completed.append("batch")
            return answer

        async def probe() -> tuple[int, Any]:
            answer = await call(app, "GET", "/v2/health/ready", {})
            completed.append("probe")
            return answer

        in_flight = asyncio.create_task(batch())
        await asyncio.sleep(0)  # the batch task runs until it first yields the loop
        probed = await probe()
        return await in_flight, probed

    (batch_status, refusal), (probe_status, _) = asyncio.run(scenario())
    assert completed == ["probe", "batch"]
    assert probe_status == 200
    assert batch_status == 400
    assert refusal["details"][0]["input"] == "tenure"
    assert refusal["details"][0]["row"] == rows - 1
