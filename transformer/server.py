"""Wires the transformer into kserve's FastAPI app: the gateway middleware and three routes.

Routes added here are matched before the ones kserve registers when the server starts, so
they take over the v2 infer and readiness paths; everything else (liveness, /metrics,
metadata) stays kserve's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response

from transformer.auth import TokenStore
from transformer.codec import encode_response
from transformer.errors import PredictorProtocolError, PredictorUnavailable, RequestRejected
from transformer.gateway import Gateway
from transformer.metrics import Metrics
from transformer.model import ChurnAnswer, ChurnTransformer
from transformer.ratelimit import RateLimiter
from transformer.settings import TransformerSettings

logger = logging.getLogger(__name__)


def open_paths(model_name: str) -> frozenset[str]:
    """Probes and scrapes need no token."""
    return frozenset(
        {
            "/",
            "/metrics",
            "/v2/health/live",
            "/v2/health/ready",
            f"/v2/models/{model_name}/ready",
        }
    )


def json_response(document: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code, media_type="application/json")


class Endpoints:
    def __init__(self, model: ChurnTransformer, metrics: Metrics) -> None:
        self._model = model
        self._metrics = metrics

    async def infer(self, request: Request, model_name: str) -> Response:
        model = self._model
        if model_name != model.name:
            return json_response(
                {"error": f"model {model_name!r} not found; this server serves {model.name!r}"},
                404,
            )
        request_id: str = request.state.request_id
        try:
            with self._stage("decode"):
                decoded = model.decoder.decode(await request.body())
            request.state.rows = decoded.rows
            answer: ChurnAnswer
            answer, _ = await model(decoded, headers={"x-request-id": request_id})
        except RequestRejected as exc:
            for reason in exc.reasons:
                self._metrics.validation_failures.labels(reason.value).inc()
            return json_response(exc.to_json(), exc.status)
        except PredictorUnavailable as exc:
            logger.warning("request %s: %s", request_id, exc)
            return json_response({"error": str(exc)}, 503)
        except PredictorProtocolError as exc:
            logger.error("request %s: unusable predictor response: %s", request_id, exc)
            return json_response(
                {"error": f"the predictor answered with an unusable response: {exc}"},
                502,
            )
        bundle = model.bundle
        with self._stage("encode"):
            content = encode_response(
                model_name=model.name,
                model_version=bundle.version,
                response_id=decoded.request_id or request_id,
                probabilities=answer.probabilities,
                churn=answer.churn,
                customer_ids=decoded.customer_ids,
                requested_outputs=decoded.requested_outputs,
                parameters={"model_version": bundle.version, "threshold": bundle.threshold},
            )
        return Response(content, media_type="application/json")

    async def server_ready(self) -> Response:
        return await self._readiness()

    async def model_ready(self, model_name: str) -> Response:
        if model_name != self._model.name:
            return json_response({"error": f"model {model_name!r} not found"}, 404)
        return await self._readiness()

    async def _readiness(self) -> Response:
        """Ready = the feature spec is loaded and the predictor answers its own readiness."""
        if not self._model.ready:
            return json_response({"ready": False, "error": "feature spec not loaded"}, 503)
        if not await self._model.predictor.ready():
            error = f"predictor at {self._model.predictor.base_url} is not ready"
            return json_response({"ready": False, "error": error}, 503)
        return json_response({"ready": True})

    @contextmanager
    def _stage(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self._metrics.stage_seconds.labels(stage).observe(time.perf_counter() - started)


def install(
    app: FastAPI,
    *,
    model: ChurnTransformer,
    settings: TransformerSettings,
    tokens: TokenStore,
    metrics: Metrics,
    audit: logging.Logger,
) -> None:
    endpoints = Endpoints(model, metrics)
    app.add_api_route("/v2/models/{model_name}/infer", endpoints.infer, methods=["POST"])
    app.add_api_route("/v2/health/ready", endpoints.server_ready, methods=["GET"])
    app.add_api_route("/v2/models/{model_name}/ready", endpoints.model_ready, methods=["GET"])
    app.add_middleware(
        Gateway,
        tokens=tokens,
        limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        max_body_bytes=settings.max_body_bytes,
        open_paths=open_paths(model.name),
        metrics=metrics,
        audit=audit,
        model_version=lambda: model.bundle.version,
    )
