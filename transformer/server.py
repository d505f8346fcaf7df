"""The transformer's own routes, answered by the gateway (transformer/gateway.py) that wraps
kserve's FastAPI app: v2 infer and the two readiness probes. Everything else (liveness,
/metrics, model metadata) stays kserve's.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from transformer.audit import AuditTrail
from transformer.auth import TokenStore
from transformer.codec import encode_response
from transformer.errors import PredictorProtocolError, PredictorUnavailable, RequestRejected
from transformer.gateway import ASGIApp, Gateway, Reply
from transformer.metrics import Metrics
from transformer.model import ChurnAnswer, ChurnTransformer
from transformer.ratelimit import RateLimiter
from transformer.settings import TransformerSettings

logger = logging.getLogger(__name__)

# Probes and scrapes need no token.
OPEN_PATHS = frozenset({"/", "/metrics", "/v2/health/live"})


class Endpoints:
    def __init__(self, model: ChurnTransformer, metrics: Metrics) -> None:
        self._model = model
        self._metrics = metrics

    @property
    def infer_path(self) -> str:
        return f"/v2/models/{self._model.name}/infer"

    @property
    def ready_paths(self) -> frozenset[str]:
        return frozenset({"/v2/health/ready", f"/v2/models/{self._model.name}/ready"})

    async def infer(self, body: bytes, state: dict[str, Any]) -> Reply:
        model = self._model
        request_id: str = state["request_id"]
        try:
            with self._metrics.stages["decode"].time():
                decoded = model.decoder.decode(body)
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
        with self._metrics.stages["encode"].time():
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
        return Reply(200, content)

    async def ready(self) -> Reply:
        """Ready = the feature spec is loaded and the predictor answers its own readiness."""
        if not self._model.ready:
            return Reply.json({"ready": False, "error": "feature spec not loaded"}, 503)
        if not await self._model.predictor.ready():
            error = f"predictor at {self._model.predictor.base_url} is not ready"
            return Reply.json({"ready": False, "error": error}, 503)
        return Reply.json({"ready": True})


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
            infer_path=endpoints.infer_path,
            infer=endpoints.infer,
            ready_paths=endpoints.ready_paths,
            ready=endpoints.ready,
            open_paths=OPEN_PATHS,
            tokens=tokens,
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            max_body_bytes=settings.max_body_bytes,
            metrics=metrics,
            audit=audit,
            model_version=lambda: model.bundle.version,
        )

    app.build_middleware_stack = build_stack  # type: ignore[method-assign]
