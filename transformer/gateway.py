"""The ASGI front door: an explicit route allowlist, request id, bearer token, rate limit, body
size, request metrics and one audit line per request.

It wraps kserve's whole app and runs before FastAPI parses anything: a refused request costs a
header lookup, not a JSON parse. Only the routes in the table reach anything: every other path
gets a JSON 404 and every other method a JSON 405 with an Allow header, token or not (the route
list is public, so hiding it behind a token would protect nothing). kserve's app registers
routes the transformer must never serve (model repository load/unload, v1, versioned v2); they
are unreachable because the gateway never hands them on. A route is answered here (infer,
readiness: FastAPI's router and kserve's timing middleware cost more CPU than the whole
preprocessing at batch 1) or by kserve's app (liveness, model metadata, /metrics), the body
replayed.

Credentials come from the request's header block only. uvicorn's httptools protocol would
append chunked trailer fields to the same header list; transformer/server.py keeps them out
and marks the request (TRAILERS_STATE_KEY), and a request carrying trailers is refused.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from http import HTTPStatus
from typing import Any

import orjson
from prometheus_client import Counter, Histogram

from transformer.audit import AuditTrail
from transformer.auth import AuthFailure, TokenStore
from transformer.errors import Problem, Reason, RequestRejected
from transformer.metrics import Metrics
from transformer.ratelimit import RateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
# Set in the request's state by the HTTP protocol when trailer fields arrived after the body.
TRAILERS_STATE_KEY = "churn.trailer_fields"
# Caller-supplied ids are logged, so only a safe, bounded alphabet is taken over.
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_OUTCOMES = {
    200: "ok",
    401: "unauthorized",
    404: "not_found",
    405: "not_found",
    413: "too_large",
    429: "rate_limited",
    502: "predictor_error",
    503: "unavailable",
}


def outcome_for(status: int) -> str:
    if status in _OUTCOMES:
        return _OUTCOMES[status]
    return "invalid" if 400 <= status < 500 else "error"


def request_id_from(header: str | None) -> str:
    if header is not None and _REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return os.urandom(16).hex()


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole JSON response."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, document: dict[str, Any], status: int = 200, **headers: str) -> Reply:
        return cls(status, orjson.dumps(document), tuple(headers.items()))

    async def send(self, send: Send) -> None:
        raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self.body)),
            *((k.encode(), v.encode()) for k, v in self.headers),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": self.body})


# The request body (empty on open routes) and the request state -> the whole answer.
Handler = Callable[[bytes, dict[str, Any]], Awaitable[Reply]]


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path: whether it needs a token, and who answers it."""

    token: bool
    # None: kserve's app answers it.
    answer: Handler | None = None


# path -> method -> route
Routes = Mapping[str, Mapping[str, Route]]


class Gateway:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Routes,
        tokens: TokenStore,
        limiter: RateLimiter,
        max_body_bytes: int,
        metrics: Metrics,
        audit: AuditTrail,
        model_version: Callable[[], str],
    ) -> None:
        self.app = app
        self._routes = routes
        self._route_list = ", ".join(
            f"{method} {path}" for path, methods in routes.items() for method in methods
        )
        self._tokens = tokens
        self._limiter = limiter
        self._max_body_bytes = max_body_bytes
        self._metrics = metrics
        self._audit = audit
        self._model_version = model_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (websockets are off: transformer/server.py)
            await self.app(scope, receive, send)
            return
        methods = self._routes.get(scope["path"])
        route = methods.get(scope["method"]) if methods is not None else None
        if route is not None and not route.token:
            # Probes and scrapes: no token, no body, no audit line.
            scope.setdefault("state", {})
            await self._answer(route, scope, b"", receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = request_id_from(headers.get(REQUEST_ID_HEADER))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = HTTPStatus.INTERNAL_SERVER_ERROR.value  # if the route raises before answering

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        try:
            if route is None:
                await self._refuse_unrouted(scope, methods, send_with_request_id)
                return
            body = await self._admit(
                state, headers, scope["headers"], receive, send_with_request_id
            )
            if body is not None:
                await self._answer(route, scope, body, receive, send_with_request_id)
        finally:
            self._record(scope, request_id, status, started, state)

    async def _answer(
        self, route: Route, scope: Scope, body: bytes, receive: Receive, send: Send
    ) -> None:
        state = scope["state"]
        if route.answer is None:
            await self.app(scope, _replay(body, receive), send)
            return
        try:
            reply = await route.answer(body, state)
        except Exception:
            # The gateway wraps kserve's whole app, error middleware included: a bug in a
            # handler must still end as a 500, never as a dropped connection.
            logger.exception("request %s: unexpected error", state.get("request_id"))
            reply = Reply.json({"error": "internal error; see the transformer log"}, 500)
        await reply.send(send)

    async def _refuse_unrouted(
        self, scope: Scope, methods: Mapping[str, Route] | None, send: Send
    ) -> None:
        if methods is None:
            message = f"unknown path; the routes are: {self._route_list}"
            await Reply.json({"error": message}, 404).send(send)
            return
        allowed = ", ".join(methods)
        message = f"method {scope['method']} is not allowed here; allowed: {allowed}"
        await Reply.json({"error": message}, 405, allow=allowed).send(send)

    async def _refuse_unauthenticated(self, send: Send, failure: AuthFailure) -> None:
        self._metrics.auth_failures.labels(failure.value).inc()
        challenge = 'Bearer realm="churn"'
        if failure is not AuthFailure.MISSING:
            challenge += ', error="invalid_token"'
        message = {
            AuthFailure.MISSING: "missing bearer token: send 'Authorization: Bearer <token>'",
            AuthFailure.MALFORMED: "malformed Authorization header: expected 'Bearer <token>'",
            AuthFailure.INVALID: "invalid bearer token",
        }[failure]
        await Reply.json({"error": message}, 401, **{"www-authenticate": challenge}).send(send)

    async def _refuse_ambiguous_header_block(
        self, raw_headers: list[tuple[bytes, bytes]], send: Send
    ) -> bool:
        """Refuses (and answers) a header block that announces trailers or carries more than one
        Authorization line: proxies and this gateway could each read a different one."""
        names = [name for name, _ in raw_headers]
        if b"trailer" in names:
            await self._refuse_trailers(send)
            return True
        if names.count(b"authorization") > 1:
            self._metrics.auth_failures.labels(AuthFailure.MALFORMED.value).inc()
            message = "more than one Authorization header; send exactly one"
            await Reply.json({"error": message}, 400).send(send)
            return True
        return False

    async def _admit(
        self,
        state: dict[str, Any],
        headers: dict[str, str],
        raw_headers: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
    ) -> bytes | None:
        """Header block, token, rate limit, body size, then trailers: the body if admitted,
        else None (answered)."""
        if await self._refuse_ambiguous_header_block(raw_headers, send):
            return None
        auth = self._tokens.authenticate(headers.get("authorization"))
        if auth.failure is not None or auth.token_name is None:
            await self._refuse_unauthenticated(send, auth.failure or AuthFailure.INVALID)
            return None
        token_name = state["token_name"] = auth.token_name
        wait = self._limiter.acquire(token_name)
        if wait > 0:
            self._metrics.rate_limited.labels(token_name).inc()
            retry_after = RateLimiter.retry_after_header(wait)
            message = f"rate limit exceeded for token {token_name!r}; retry in {retry_after} s"
            await Reply.json({"error": message}, 429, **{"retry-after": retry_after}).send(send)
            return None
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            await self._refuse_too_large(send, f"a body of {declared} bytes")
            return None
        body = await self._read_body(receive)
        if body is None:
            await self._refuse_too_large(send, "the body")
        elif state.get(TRAILERS_STATE_KEY):
            # Known only once the body has been read: trailers follow the last chunk.
            await self._refuse_trailers(send)
            return None
        return body

    async def _refuse_trailers(self, send: Send) -> None:
        self._metrics.validation_failures.labels(Reason.INVALID_REQUEST.value).inc()
        message = "trailer fields are not accepted; send every header before the body"
        await Reply.json({"error": message}, 400).send(send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it grows past the limit (chunked uploads)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _refuse_too_large(self, send: Send, what: str) -> None:
        self._metrics.validation_failures.labels(Reason.BODY_TOO_LARGE.value).inc()
        reason = f"{what} exceeds the limit of {self._max_body_bytes} bytes; send smaller batches"
        rejected = RequestRejected(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "request body too large",
            [Problem(None, None, reason, Reason.BODY_TOO_LARGE)],
        )
        await Reply.json(rejected.to_json(), rejected.status).send(send)

    @cache  # noqa: B019  # one gateway per process; statuses are few
    def _series(self, outcome: str, status: int) -> tuple[Counter, Histogram]:
        """The labelled request series: looked up once, not on every request."""
        return (
            self._metrics.requests.labels(outcome, str(status)),
            self._metrics.request_seconds.labels(outcome),
        )

    def _record(
        self, scope: Scope, request_id: str, status: int, started: float, state: dict[str, Any]
    ) -> None:
        elapsed = time.perf_counter() - started
        outcome = outcome_for(status)
        counter, histogram = self._series(outcome, status)
        counter.inc()
        histogram.observe(elapsed)
        # Identifiers and counts only: never a token, a header value or a request value.
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": "request",
            "request_id": request_id,
            "token_name": state.get("token_name"),
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "outcome": outcome,
            "rows": state.get("rows"),
            "latency_ms": round(elapsed * 1000, 3),
            "model_version": self._model_version(),
        }
        self._audit.record(line)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the already-read body to the route, then defer to the server (disconnects)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
