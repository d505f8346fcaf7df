"""The v2 REST client for the predictor: a bounded pool of keep-alive HTTP/1.1 connections.

Every call goes to one known server with one request shape, so the client is an asyncio
protocol around llhttp (httptools, the parser uvicorn uses): one socket write per request, the
response parsed in C. It spends less than half of aiohttp's CPU per request at batch 1 and a
tenth of httpx's (bench/client.py; numbers and the decision to keep it in bench/README.md).

A connection carries one exchange at a time and is reused only when its answer ended exactly
where the framing said: interim 1xx answers are skipped, a close-delimited body is refused,
and any byte that arrives outside an exchange closes the connection for good, so a late or
stray answer can never be taken for the next request's.

Failures map onto what the caller can act on: 503 (PredictorUnavailable) when the predictor
is down, times out, drops the connection or fails with a 5xx; 502 (PredictorProtocolError)
when it answers with something that is not class probabilities, refuses the request (4xx) or
sends more than such an answer can need.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import cast
from urllib.parse import urlsplit

import httptools
import numpy as np
import numpy.typing as npt

from transformer import offload
from transformer.codec import decode_predictor_response, encode_predictor_request
from transformer.errors import PredictorProtocolError, PredictorUnavailable
from transformer.settings import DEFAULT_PREDICTOR_MAX_CONNECTIONS, PredictorEncoding

logger = logging.getLogger(__name__)

# Readiness probes must answer quickly even when the predictor hangs.
READY_TIMEOUT_SECONDS = 2.0
# Status line plus headers of one answer; the runtimes send a few hundred bytes.
MAX_HEADER_BYTES = 64 * 1024
# Body of an answer for N rows: [N, 2] probabilities at most 32 bytes each (the longest FP64
# text is 24 characters, plus separators; 8 bytes in binary), plus the JSON around them.
MAX_BODY_BYTES_PER_ROW = 2 * 32
MAX_BODY_OVERHEAD_BYTES = 64 * 1024
_HEAD_TOO_LARGE = f"the answer's status line and headers exceed {MAX_HEADER_BYTES} bytes"
# Response headers the caller reads, plus the two that frame the body; the rest are skipped.
_KEPT_HEADERS = frozenset(
    {b"content-type", b"inference-header-content-length", b"content-length", b"transfer-encoding"}
)


def max_response_bytes(rows: int) -> int:
    """The largest body a v2 answer of class probabilities for ``rows`` rows can need."""
    return MAX_BODY_OVERHEAD_BYTES + rows * MAX_BODY_BYTES_PER_ROW


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes  # empty unless the status is 200: other answers are judged by status alone


class ConnectionDropped(Exception):
    """The connection closed before a whole response arrived."""

    def __init__(self, received_bytes: bool) -> None:
        super().__init__("connection closed before the response was complete")
        self.received_bytes = received_bytes


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the reason is kept on the connection."""


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request in flight at a time."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._max_body_bytes = 0
        self._refusal: PredictorProtocolError | None = None
        self._received = False
        self._reset_response()
        self.closed = False

    def _reset_response(self) -> None:
        self._headers: dict[str, str] = {}
        self._head_done = False
        # Two lower bounds on the size of the status line and headers: the headers parsed so
        # far, and the reads that ended before the headers did (llhttp holds a header back
        # until it ends, so an endless one reaches no callback).
        self._head_bytes = 0
        self._unfinished_head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing was asked: a stray or late answer would be read as the next request's.
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(PredictorProtocolError("the predictor switched protocols (HTTP 101)"))
            return
        except httptools.HttpParserError as exc:
            self._fail(self._refusal or PredictorProtocolError(f"not an HTTP response ({exc})"))
            return
        if not self._head_done:
            self._unfinished_head_bytes += len(data)
            if self._unfinished_head_bytes > MAX_HEADER_BYTES:
                self._fail(PredictorProtocolError(_HEAD_TOO_LARGE))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionDropped(self._received))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._waiter is None:  # more bytes after the answer, in the same read
            self._refuse("the predictor sent more than one answer")

    def on_status(self, status: bytes) -> None:
        self._count_head_bytes(len(status))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head_bytes(len(name) + len(value))
        name = name.lower()
        if name in _KEPT_HEADERS:
            self._headers[name.decode()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < HTTPStatus.OK:
            return  # interim (100 Continue, 103 Early Hints): the real answer follows
        self._head_done = True
        if status != HTTPStatus.OK:
            # Judged by status alone: its body may echo request data and is never read.
            self._resolve(Response(status, self._headers, b""))
            self.close()
            return
        declared = self._headers.get("content-length")
        if declared is None and "chunked" not in self._headers.get("transfer-encoding", ""):
            self._refuse(
                "the answer has neither Content-Length nor chunked encoding (its end would be "
                "the connection closing, which cannot be told from a dropped connection)"
            )
        if declared is not None and declared.isdigit():
            self._check_body_size(int(declared))  # refused before any of it arrives

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._check_body_size(self._body_bytes)
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < HTTPStatus.OK:
            self._reset_response()
            return
        if self._waiter is None:  # a non-200 answer, already resolved and closed
            return
        response = Response(status, self._headers, b"".join(self._body))
        if not self._parser.should_keep_alive():
            self.close()
        self._resolve(response)

    # client side

    async def exchange(self, request: bytes, max_body_bytes: int) -> Response:
        if self._transport is None or self._waiter is not None:
            raise RuntimeError("the connection is not idle")
        if self.closed:  # e.g. the server spoke first, before any request
            raise ConnectionDropped(self._received)
        self._reset_response()
        self._received = False
        self._max_body_bytes = max_body_bytes
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def _count_head_bytes(self, size: int) -> None:
        self._head_bytes += size + 4  # ": " and CRLF
        if self._head_bytes > MAX_HEADER_BYTES:
            self._refuse(_HEAD_TOO_LARGE)

    def _check_body_size(self, size: int) -> None:
        if size > self._max_body_bytes:
            self._refuse(
                f"the answer's body exceeds {self._max_body_bytes} bytes, more than class "
                "probabilities for the rows sent can need"
            )

    def _refuse(self, reason: str) -> None:
        self._refusal = PredictorProtocolError(reason)
        raise _Refused(reason)

    def _resolve(self, response: Response) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

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
        max_connections: int = DEFAULT_PREDICTOR_MAX_CONNECTIONS,
    ) -> None:
        self.address = base_url.rstrip("/")
        url = urlsplit(self.address)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"predictor URL must be http(s)://host[:port], not {base_url!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
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
        self.transport = "v2 REST, binary tensors" if self._binary else "v2 REST, JSON"
        self._timeout = timeout_seconds
        self._idle: list[_Connection] = []
        # Held for a whole exchange: open connections never outnumber the permits.
        self._permits = asyncio.Semaphore(max_connections)

    async def predict_proba(
        self, matrix: npt.NDArray[np.float64], request_id: str
    ) -> npt.NDArray[np.float64]:
        """Positive-class probability per row of the FP64 [N, F] model matrix."""
        rows = matrix.shape[0]
        large = offload.large_batch(rows)
        body, headers = await offload.run(
            partial(encode_predictor_request, matrix, request_id, self._binary), large=large
        )
        headers["x-request-id"] = request_id
        request = self._request(b"POST", self._infer_path, headers, body)
        try:
            response = await self._call(request, self._timeout, max_response_bytes(rows))
        except TimeoutError:
            raise PredictorUnavailable(
                f"the predictor at {self.address} did not answer in time"
            ) from None
        except (OSError, ConnectionDropped) as exc:
            raise PredictorUnavailable(
                f"the predictor at {self.address} is unreachable ({type(exc).__name__})"
            ) from None
        check_status(response.status, self.address)
        return await offload.run(
            partial(decode_predictor_response, response.body, response.headers, rows), large=large
        )

    async def ready(self) -> bool:
        """The predictor server and the model on it both report ready."""
        try:
            for path in self._ready_paths:
                request = self._request(b"GET", path, {}, b"")
                response = await self._call(request, READY_TIMEOUT_SECONDS, max_response_bytes(0))
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

    async def _call(self, request: bytes, timeout: float, max_body_bytes: int) -> Response:
        """Sends on an idle connection, or a new one. A reused connection the server closed
        while idle fails before any response byte; then the request goes once more on a new
        connection (inference is idempotent). Waiting for a free connection counts toward
        ``timeout``."""
        async with asyncio.timeout(timeout), self._permits:
            connection, reused = await self._connection()
            try:
                try:
                    response = await connection.exchange(request, max_body_bytes)
                except ConnectionDropped as exc:
                    if not reused or exc.received_bytes:
                        raise
                    connection, _ = await self._connection(fresh=True)
                    response = await connection.exchange(request, max_body_bytes)
            except BaseException:
                connection.close()  # failed, timed out or cancelled mid-exchange: never reuse
                raise
            if not connection.closed:
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


def check_status(status: int, base_url: str) -> None:
    """Raise unless ``status`` is 200: 5xx is the predictor failing (503, worth retrying);
    anything else is an answer that will not change on retry (502). The predictor's own
    message can echo request data, so only the status is reported."""
    if status == HTTPStatus.OK:
        return
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        raise PredictorUnavailable(f"the predictor at {base_url} failed with HTTP {status}")
    if status >= HTTPStatus.BAD_REQUEST:
        raise PredictorProtocolError(
            f"the predictor at {base_url} refused the request with HTTP {status}"
        )
    raise PredictorProtocolError(f"the predictor at {base_url} answered HTTP {status}, not 200")
