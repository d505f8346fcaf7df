"""The transformer's routes, answered by the gateway (transformer/gateway.py) that wraps
kserve's FastAPI app, and the HTTP server settings kserve does not expose.

The allowlist (docs/api.md): v2 infer and server metadata are answered here, readiness too;
liveness, model metadata and /metrics are kserve's own handlers. Nothing else is reachable.
"""

from __future__ import annotations

import logging
from functools import partial
from importlib import metadata
from typing import Any

from fastapi import FastAPI
from kserve import ModelServer
from kserve.constants.constants import KSERVE_MODEL_SERVER_NAME
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from transformer import offload
from transformer.audit import AuditTrail
from transformer.auth import TokenStore
from transformer.codec import encode_response
from transformer.errors import PredictorProtocolError, PredictorUnavailable, RequestRejected
from transformer.gateway import TRAILERS_STATE_KEY, ASGIApp, Gateway, Reply, Route, Routes
from transformer.metrics import Metrics
from transformer.model import ChurnAnswer, ChurnTransformer
from transformer.ratelimit import RateLimiter
from transformer.settings import TransformerSettings

logger = logging.getLogger(__name__)


class Endpoints:
    def __init__(self, model: ChurnTransformer, metrics: Metrics) -> None:
        self._model = model
        self._metrics = metrics
        # What kserve's GET /v2 says, minus the model repository extension it no longer serves.
        self._server_metadata = Reply.json(
            {
                "name": KSERVE_MODEL_SERVER_NAME,
                "version": metadata.version("kserve"),
                "extensions": [],
            }
        )

    def routes(self) -> Routes:
        """Every route the transformer serves; docs/api.md lists the same."""
        name = self._model.name
        ready = Route(token=False, answer=self.ready)
        return {
            "/v2/health/live": {"GET": Route(token=False)},
            "/v2/health/ready": {"GET": ready},
            f"/v2/models/{name}/ready": {"GET": ready},
            "/metrics": {"GET": Route(token=False)},
            "/v2": {"GET": Route(token=True, answer=self.server_metadata)},
            f"/v2/models/{name}": {"GET": Route(token=True)},
            f"/v2/models/{name}/infer": {"POST": Route(token=True, answer=self.infer)},
        }

    async def infer(self, body: bytes, state: dict[str, Any]) -> Reply:
        model = self._model
        request_id: str = state["request_id"]
        try:
            with self._metrics.stages["decode"].time():
                decoded = await offload.run(
                    partial(model.decoder.decode, body), large=offload.large_body(len(body))
                )
            state["rows"] = decoded.rows
            answer: ChurnAnswer
            answer, _ = await model(decoded, headers={"x-request-id": request_id})
        except RequestRejected as exc:
            for reason in exc.reasons:
                self._metrics.validation_failures.labels(reason.value).inc()
            return Reply.json(exc.to_json(), exc.status)
        except PredictorUnavailable as exc:
            logger.warning("request %s: %s", request_id, exc)
            return Reply.json({"error": str(exc)}, 503)
        except PredictorProtocolError as exc:
            logger.error("request %s: unusable predictor response: %s", request_id, exc)
            return Reply.json(
                {"error": f"the predictor answered with an unusable response: {exc}"}, 502
            )
        bundle = model.bundle

        def encode() -> bytes:
            return encode_response(
                model_name=model.name,
                model_version=bundle.version,
                response_id=decoded.request_id or request_id,
                probabilities=answer.probabilities,
                churn=answer.churn,
                customer_ids=decoded.customer_ids,
                requested_outputs=decoded.requested_outputs,
                parameters={"model_version": bundle.version, "threshold": bundle.threshold},
            )

        with self._metrics.stages["encode"].time():
            content = await offload.run(encode, large=offload.large_batch(decoded.rows))
        return Reply(200, content)

    async def ready(self, _body: bytes, _state: dict[str, Any]) -> Reply:
        """Ready = the feature spec is loaded and the predictor answers its own readiness."""
        if not self._model.ready:
            return Reply.json({"ready": False, "error": "feature spec not loaded"}, 503)
        if not await self._model.predictor.ready():
            error = f"predictor at {self._model.predictor.address} is not ready"
            return Reply.json({"ready": False, "error": error}, 503)
        return Reply.json({"ready": True})

    async def server_metadata(self, _body: bytes, _state: dict[str, Any]) -> Reply:
        return self._server_metadata


def install(
    app: FastAPI,
    *,
    model: ChurnTransformer,
    settings: TransformerSettings,
    tokens: TokenStore,
    metrics: Metrics,
    audit: AuditTrail,
) -> None:
    endpoints = Endpoints(model, metrics)
    build_kserve_stack = app.build_middleware_stack

    # kserve adds its middleware when the server starts, after this runs: wrapping the finished
    # stack keeps the gateway outermost, so our routes skip kserve's per-request timing.
    def build_stack() -> ASGIApp:
        return Gateway(
            build_kserve_stack(),
            routes=endpoints.routes(),
            tokens=tokens,
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            max_body_bytes=settings.max_body_bytes,
            metrics=metrics,
            audit=audit,
            model_version=lambda: model.bundle.version,
        )

    app.build_middleware_stack = build_stack  # type: ignore[method-assign]


class HeaderBlockHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with two changes.

    Trailer fields (after the last chunk of a chunked body) are not appended to the request's
    headers, where the app could mistake them for the header block (a bearer token in a
    trailer would authenticate); the request is marked instead, and the gateway refuses it.
    Requests the parser cannot read get a JSON 400 like every other refusal, not plain text.
    """

    _header_block_read = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_block_read = False

    def on_headers_complete(self) -> None:
        self._header_block_read = True
        super().on_headers_complete()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._header_block_read:
            self.scope["state"][TRAILERS_STATE_KEY] = True
            return
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        body = Reply.json({"error": msg})
        head = [
            b"HTTP/1.1 400 Bad Request",
            *(b"%s: %s" % header for header in self.server_state.default_headers),
            b"content-type: application/json",
            b"content-length: %d" % len(body.body),
            b"connection: close",
        ]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body.body)
        self.transport.close()


class ChurnModelServer(ModelServer):  # type: ignore[misc]  # kserve ships no type hints
    """kserve's ModelServer with the HTTP protocol above and websockets off.

    kserve builds uvicorn's config without these options; they are set after it is built and
    before uvicorn loads it (the REST server's coroutine has not started when _serve runs).
    """

    async def _serve(self) -> None:
        config = self._rest_server.config
        config.http = HeaderBlockHttpProtocol
        config.ws = "none"
        await super()._serve()
