"""The v2 REST client for the predictor: a small pool of keep-alive HTTP/1.1 connections.

Every call goes to one known server with one request shape, so the client is an asyncio
protocol around llhttp (httptools, the parser uvicorn uses): one socket write per request, the
response parsed in C. At batch 1 a general-purpose client (aiohttp) took about a quarter of
the transformer's CPU; with this one the transformer's CPU per request fell from 0.56 to
0.43 ms (bench/README.md).

Failures map onto what the caller can act on: 503 when the predictor is down, times out,
drops the connection or fails; 502 when it answers with something that is not class
probabilities.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast
from urllib.parse import urlsplit

import httptools
import numpy as np
import numpy.typing as npt

from transformer.codec import decode_predictor_response, encode_predictor_request
from transformer.errors import PredictorProtocolError, PredictorUnavailable
from transformer.settings import PredictorEncoding

logger = logging.getLogger(__name__)

# Readiness probes must answer quickly even when the predictor hangs.
READY_TIMEOUT_SECONDS = 2.0
# Idle connections kept for reuse; more concurrent calls open more, then close the excess.
MAX_IDLE_CONNECTIONS = 64
# Response headers the caller reads; the rest are skipped.
_KEPT_HEADERS = frozenset({b"content-type", b"inference-header-content-length"})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class ConnectionDropped(Exception):
    """The connection closed before a whole response arrived."""

    def __init__(self, received_bytes: bool) -> None:
        super().__init__("connection closed before the response was complete")
        self.received_bytes = received_bytes


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request in flight at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._received = False
        self.closed = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(PredictorProtocolError(f"not an HTTP response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionDropped(self._received))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _KEPT_HEADERS:
            self._headers[name.decode()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        response = Response(self._parser.get_status_code(), self._headers, b"".join(self._body))
        if not self._parser.should_keep_alive():
            self.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # client side

    async def exchange(self, request: bytes) -> Response:
        if self._transport is None or self._waiter is not None:
            raise RuntimeError("the connection is not idle")
        self._headers, self._body, self._received = {}, [], False
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        self.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class PredictorClient:
    def __init__(
        self,
        base_url: str,
        model_name: str,
        timeout_seconds: float,
        encoding: PredictorEncoding = "json",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"predictor URL must be http(s)://host[:port], not {base_url!r}")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if url.scheme == "https" else None
        self._host_header = url.netloc.encode()
        self._infer_path = f"{url.path}/v2/models/{model_name}/infer".encode()
        self._ready_paths = (
            f"{url.path}/v2/health/ready".encode(),
            f"{url.path}/v2/models/{model_name}/ready".encode(),
        )
        self._binary = encoding == "binary"
        self._timeout = timeout_seconds
        self._idle: list[_Connection] = []

    async def predict_proba(
        self, matrix: npt.NDArray[np.float64], request_id: str
    ) -> npt.NDArray[np.float64]:
        """Positive-class probability per row of the FP64 [N, F] model matrix."""
        body, headers = encode_predictor_request(matrix, request_id, self._binary)
        headers["x-request-id"] = request_id
        try:
            response = await self._call(self._request(b"POST", self._infer_path, headers, body))
        except TimeoutError:
            raise PredictorUnavailable(
                f"the predictor at {self.base_url} did not answer in time"
            ) from None
        except (OSError, ConnectionDropped) as exc:
            raise PredictorUnavailable(
                f"the predictor at {self.base_url} is unreachable ({type(exc).__name__})"
            ) from None
        if response.status != HTTPStatus.OK:
            # The predictor's own message can echo request data: keep it out of our logs.
            raise PredictorUnavailable(
                f"the predictor at {self.base_url} failed with HTTP {response.status}"
            )
        return decode_predictor_response(response.body, response.headers, matrix.shape[0])

    async def ready(self) -> bool:
        """The predictor server and the model on it both report ready."""
        try:
            for path in self._ready_paths:
                request = self._request(b"GET", path, {}, b"")
                response = await self._call(request, READY_TIMEOUT_SECONDS)
                if response.status != HTTPStatus.OK:
                    return False
        except (TimeoutError, OSError, ConnectionDropped, PredictorProtocolError) as exc:
            logger.warning("predictor readiness check failed: %s", type(exc).__name__)
            return False
        return True

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _request(self, method: bytes, path: bytes, headers: dict[str, str], body: bytes) -> bytes:
        # Header values are ours: content types, lengths and request ids from a safe alphabet.
        lines = [
            b"%s %s HTTP/1.1" % (method, path),
            b"host: " + self._host_header,
            b"content-length: %d" % len(body),
            *(f"{name}: {value}".encode() for name, value in headers.items()),
        ]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    async def _call(self, request: bytes, timeout: float | None = None) -> Response:
        """Sends on an idle connection, or a new one. A reused connection the server closed
        while idle fails before any response byte; then the request goes once more on a new
        connection (inference is idempotent)."""
        async with asyncio.timeout(self._timeout if timeout is None else timeout):
            connection, reused = await self._connection()
            try:
                try:
                    response = await connection.exchange(request)
                except ConnectionDropped as exc:
                    if not reused or exc.received_bytes:
                        raise
                    connection, _ = await self._connection(fresh=True)
                    response = await connection.exchange(request)
            except BaseException:
                connection.close()  # failed, timed out or cancelled mid-exchange: never reuse
                raise
        if connection.closed or len(self._idle) >= MAX_IDLE_CONNECTIONS:
            connection.close()
        else:
            self._idle.append(connection)
        return response

    async def _connection(self, fresh: bool = False) -> tuple[_Connection, bool]:
        while self._idle and not fresh:
            connection = self._idle.pop()
            if not connection.closed:
                return connection, True
        _, connection = await asyncio.get_running_loop().create_connection(
            _Connection, self._host, self._port, ssl=self._ssl
        )
        return connection, False
