"""The predictor client against small real HTTP servers on loopback: keep-alive reuse, servers
that close idle connections, chunked answers, and servers that misbehave on purpose (interim
1xx answers, stray bytes, close-delimited or oversized answers, refusals, garbage).

The client against the real kserve-sklearnserver, in both encodings, is covered by the
inference tests of this package (test_inference.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest

from transformer.errors import PredictorProtocolError, PredictorUnavailable
from transformer.predictor import MAX_HEADER_BYTES, PredictorClient, max_response_bytes

pytestmark = pytest.mark.anyio

MATRIX = np.array([[0.0, 1.0], [2.0, 3.0]])
# A part of an answer written on its own, after a short pause: it reaches the client in a
# separate read, as a late answer would.
Later = tuple[bytes, ...]
Answer = Callable[[bytes], bytes | Later]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def matrix(call: int) -> np.ndarray:
    return MATRIX + call


def expected(call: int) -> list[float]:
    """What the test servers answer for matrix(call): the first column over 10."""
    return (matrix(call)[:, 0] / 10).tolist()


def answer_body(request: bytes) -> bytes:
    """Class probabilities that depend on the request, so a misrouted answer shows."""
    tensor = orjson.loads(request.split(b"\r\n\r\n", 1)[1])["inputs"][0]
    positive = np.asarray(tensor["data"]).reshape(tensor["shape"])[:, 0] / 10
    data = np.column_stack([1 - positive, positive]).ravel().tolist()
    output = {"name": "predict_proba", "shape": [len(positive), 2], "datatype": "FP64"}
    return orjson.dumps({"outputs": [{**output, "data": data}]})


def answer_json(request: bytes, *, connection: str = "keep-alive") -> bytes:
    body = answer_body(request)
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: %s\r\n\r\n%s" % (len(body), connection.encode(), body)
    )


def chunked(body: bytes, *, head: bytes = b"") -> bytes:
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%s"
        b"transfer-encoding: chunked\r\n\r\n%s0\r\n\r\n" % (head, chunks)
    )


@dataclass
class Server:
    """Answers each request on a connection with `answer`; counts connections and requests."""

    answer: Answer
    close_after: int | None = None  # requests per connection, then the server closes it
    # Read a second request on a connection, then close without answering: what a client
    # sees when a server drops an idle keep-alive connection just as a request goes out.
    drop_reuse: bool = False
    # Answers wait until this is set: requests pile up on the server.
    gate: asyncio.Event | None = None
    connections: int = 0
    requests: int = 0
    # Set when a client closes a connection the server kept open.
    client_hung_up: asyncio.Event = field(default_factory=asyncio.Event)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        served = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.client_hung_up.set()
                    raise
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests += 1
                if self.drop_reuse and served == 1:
                    break
                if self.gate is not None:
                    await self.gate.wait()
                await self.write(writer, self.answer(request))
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    @staticmethod
    async def write(writer: asyncio.StreamWriter, answer: bytes | Later) -> None:
        for index, part in enumerate((answer,) if isinstance(answer, bytes) else answer):
            if index:
                await asyncio.sleep(0.02)
            writer.write(part)
            await writer.drain()


async def serve(server: Server) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in server.writers:
            writer.close()
        listener.close()
        await listener.wait_closed()


async def call(url: str, times: int = 1) -> list[list[float]]:
    client = PredictorClient(url, "churn", timeout_seconds=5)
    try:
        return [(await client.predict_proba(matrix(i), f"r{i}")).tolist() for i in range(times)]
    finally:
        await client.aclose()


async def with_server(server: Server, test: Callable[[str], Awaitable[None]]) -> None:
    async for url in serve(server):
        await test(url)


async def test_requests_share_one_keep_alive_connection() -> None:
    server = Server(answer_json)

    async def test(url: str) -> None:
        assert await call(url, times=5) == [expected(i) for i in range(5)]

    await with_server(server, test)
    assert (server.connections, server.requests) == (1, 5)


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    # The server closes after every answer without saying so: the pool notices the closed
    # connection and opens a new one.
    server = Server(answer_json, close_after=1)

    async def test(url: str) -> None:
        client = PredictorClient(url, "churn", timeout_seconds=5)
        for index in range(3):
            probabilities = await client.predict_proba(matrix(index), f"r{index}")
            assert probabilities.tolist() == expected(index)
            await asyncio.sleep(0.05)
        await client.aclose()

    await with_server(server, test)
    assert (server.connections, server.requests) == (3, 3)


async def test_a_request_lost_on_a_reused_connection_is_sent_again_once() -> None:
    server = Server(answer_json, drop_reuse=True)

    async def test(url: str) -> None:
        assert await call(url, times=2) == [expected(0), expected(1)]

    await with_server(server, test)
    # The second call went out on the kept connection, was dropped unanswered, and went again.
    assert (server.connections, server.requests) == (2, 3)


async def test_connection_close_answers_are_not_reused() -> None:
    server = Server(lambda request: answer_json(request, connection="close"))

    async def test(url: str) -> None:
        assert await call(url, times=2) == [expected(0), expected(1)]

    await with_server(server, test)
    assert server.connections == 2


async def test_chunked_answers_are_reassembled() -> None:
    async def test(url: str) -> None:
        assert await call(url) == [expected(0)]

    await with_server(Server(lambda request: chunked(answer_body(request))), test)


@pytest.mark.parametrize("arrival", ["with the answer", "later"])
async def test_interim_answers_are_skipped_not_taken_for_the_answer(arrival: str) -> None:
    # 100 Continue and 103 Early Hints precede the real answer. Taken as final, the real
    # answer stayed unread on the pooled connection and became the next request's answer.
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"

    def answer(request: bytes) -> bytes | Later:
        final = answer_json(request)
        return interim + final if arrival == "with the answer" else (interim, final)

    server = Server(answer)

    async def test(url: str) -> None:
        assert await call(url, times=2) == [expected(0), expected(1)]

    await with_server(server, test)
    assert (server.connections, server.requests) == (1, 2)


@pytest.mark.parametrize("arrival", ["with the answer", "later"])
async def test_a_connection_that_receives_bytes_while_idle_is_closed(arrival: str) -> None:
    # A second, unasked-for answer: kept, it would answer the next request on the connection.
    def answer(request: bytes) -> bytes | Later:
        stray = answer_json(request.replace(b"[0.0,1.0", b"[9.0,1.0"))
        final = answer_json(request)
        return final + stray if arrival == "with the answer" else (final, stray)

    server = Server(answer)

    async def test(url: str) -> None:
        client = PredictorClient(url, "churn", timeout_seconds=5)
        try:
            assert (await client.predict_proba(matrix(0), "r0")).tolist() == expected(0)
            await asyncio.wait_for(server.client_hung_up.wait(), timeout=5)
            assert (await client.predict_proba(matrix(0), "r1")).tolist() == expected(0)
        finally:
            await client.aclose()

    await with_server(server, test)
    assert (server.connections, server.requests) == (2, 2)


async def test_a_close_delimited_answer_is_refused() -> None:
    # No Content-Length, not chunked: the body ends when the connection closes, which looks
    # exactly like a predictor that died mid-answer.
    def answer(request: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + answer_body(request)

    async def test(url: str) -> None:
        with pytest.raises(PredictorProtocolError, match="neither Content-Length nor chunked"):
            await call(url)

    await with_server(Server(answer, close_after=1), test)


async def test_connections_are_bounded_and_calls_queue_for_them() -> None:
    gate = asyncio.Event()
    server = Server(answer_json, gate=gate)

    async def test(url: str) -> None:
        client = PredictorClient(url, "churn", timeout_seconds=5, max_connections=3)
        try:
            calls = [
                asyncio.ensure_future(client.predict_proba(matrix(i), f"r{i}")) for i in range(10)
            ]
            while server.requests < 3:
                await asyncio.sleep(0.01)
            gate.set()
            answers = await asyncio.gather(*calls)
        finally:
            await client.aclose()
        assert [a.tolist() for a in answers] == [expected(i) for i in range(10)]

    await with_server(server, test)
    assert (server.connections, server.requests) == (3, 10)


async def test_waiting_for_a_free_connection_counts_toward_the_timeout() -> None:
    # The only connection is busy with a readiness check (its own, longer timeout); the
    # inference call times out waiting for it and never opens a second connection.
    gate = asyncio.Event()
    server = Server(lambda _: b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", gate=gate)

    async def test(url: str) -> None:
        client = PredictorClient(url, "churn", timeout_seconds=0.2, max_connections=1)
        try:
            ready = asyncio.ensure_future(client.ready())
            while server.requests < 1:  # the readiness check holds the connection
                await asyncio.sleep(0.01)
            with pytest.raises(PredictorUnavailable, match="did not answer in time"):
                await client.predict_proba(matrix(0), "r0")
            assert (server.connections, server.requests) == (1, 1)
            gate.set()
            assert await ready
        finally:
            await client.aclose()

    await with_server(server, test)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_an_answer_larger_than_the_rows_can_need_is_refused(framing: str) -> None:
    # Valid JSON, padded: what matters is the size.
    padding = b" " * max_response_bytes(len(MATRIX))

    def answer(request: bytes) -> bytes:
        body = answer_body(request) + padding
        if framing == "chunked":
            return chunked(body)
        return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)

    async def test(url: str) -> None:
        with pytest.raises(PredictorProtocolError, match="body exceeds"):
            await call(url)

    await with_server(Server(answer), test)


@pytest.mark.parametrize("arrival", ["in one read", "never ending, over many reads"])
async def test_oversized_answer_headers_are_refused(arrival: str) -> None:
    def answer(request: bytes) -> bytes | Later:
        if arrival == "in one read":
            padding = b"x-padding: " + b"a" * MAX_HEADER_BYTES + b"\r\n"
            return chunked(answer_body(request), head=padding)
        return (b"HTTP/1.1 200 OK\r\nx-padding: ", *[b"a" * 8192] * (MAX_HEADER_BYTES // 8192 + 1))

    async def test(url: str) -> None:
        with pytest.raises(PredictorProtocolError, match="headers exceed"):
            await call(url)

    await with_server(Server(answer), test)


async def test_a_refusal_is_a_protocol_error_naming_only_the_status() -> None:
    # A 4xx will fail the same way again: 502, not a 503 that invites retries. The
    # predictor's message can echo request data; it stays out of the error.
    def refuse(request: bytes) -> bytes:
        body = b'{"error": "bad input ' + request[-40:] + b'"}'
        return b"HTTP/1.1 422 Unprocessable\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)

    async def test(url: str) -> None:
        with pytest.raises(PredictorProtocolError, match="refused the request with HTTP 422") as e:
            await call(url)
        assert "bad input" not in str(e.value)

    await with_server(Server(refuse), test)


async def test_garbage_is_a_protocol_error_and_errors_are_unavailable() -> None:
    async def garbage(url: str) -> None:
        with pytest.raises(PredictorProtocolError):
            await call(url)

    await with_server(Server(lambda _: b"SSH-2.0-OpenSSH\r\n\r\n"), garbage)

    async def failing(url: str) -> None:
        with pytest.raises(PredictorUnavailable, match="HTTP 500"):
            await call(url)

    error = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\n{}"
    await with_server(Server(lambda _: error), failing)


async def test_a_server_that_hangs_up_mid_answer_is_unavailable() -> None:
    def half(request: bytes) -> bytes:
        return answer_json(request)[:-5]

    async def test(url: str) -> None:
        with pytest.raises(PredictorUnavailable, match="unreachable"):
            await call(url)

    await with_server(Server(half, close_after=1), test)
