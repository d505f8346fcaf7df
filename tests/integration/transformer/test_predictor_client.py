"""The predictor client against small real HTTP servers on loopback: keep-alive reuse, servers
that close idle connections, chunked and close-delimited answers, and garbage.

The client against the real MLServer is covered by the inference tests of this package.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest

from transformer.errors import PredictorProtocolError, PredictorUnavailable
from transformer.predictor import PredictorClient

pytestmark = pytest.mark.anyio

MATRIX = np.array([[0.0, 1.0], [2.0, 3.0]])
PROBABILITIES = [[0.9, 0.1], [0.4, 0.6]]

Answer = Callable[[bytes], bytes]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def answer_json(request: bytes, *, connection: str = "keep-alive") -> bytes:
    document = orjson.loads(request.split(b"\r\n\r\n", 1)[1])
    rows = document["inputs"][0]["shape"][0]
    body = orjson.dumps(
        {"outputs": [{"name": "predict_proba", "shape": [rows, 2], "datatype": "FP64",
                      "data": PROBABILITIES[:rows]}]}
    )  # fmt: skip
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: %s\r\n\r\n%s" % (len(body), connection.encode(), body)
    )


@dataclass
class Server:
    """Answers each request on a connection with `answer`; counts connections and requests."""

    answer: Answer
    close_after: int | None = None  # requests per connection, then the server closes it
    # Read a second request on a connection, then close without answering: what a client
    # sees when a server drops an idle keep-alive connection just as a request goes out.
    drop_reuse: bool = False
    connections: int = 0
    requests: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests += 1
                if self.drop_reuse and served == 1:
                    break
                writer.write(self.answer(request))
                await writer.drain()
                served += 1
                if self.close_after is not None and served >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


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
        return [(await client.predict_proba(MATRIX, f"r{i}")).tolist() for i in range(times)]
    finally:
        await client.aclose()


async def with_server(server: Server, test: Callable[[str], Awaitable[None]]) -> None:
    async for url in serve(server):
        await test(url)


async def test_requests_share_one_keep_alive_connection() -> None:
    server = Server(answer_json)

    async def test(url: str) -> None:
        assert await call(url, times=5) == [[0.1, 0.6]] * 5

    await with_server(server, test)
    assert (server.connections, server.requests) == (1, 5)


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    # The server closes after every answer without saying so: the pool notices the closed
    # connection and opens a new one.
    server = Server(answer_json, close_after=1)

    async def test(url: str) -> None:
        client = PredictorClient(url, "churn", timeout_seconds=5)
        for index in range(3):
            probabilities = await client.predict_proba(MATRIX, f"r{index}")
            assert probabilities.tolist() == [0.1, 0.6]
            await asyncio.sleep(0.05)
        await client.aclose()

    await with_server(server, test)
    assert (server.connections, server.requests) == (3, 3)


async def test_a_request_lost_on_a_reused_connection_is_sent_again_once() -> None:
    server = Server(answer_json, drop_reuse=True)

    async def test(url: str) -> None:
        assert await call(url, times=2) == [[0.1, 0.6]] * 2

    await with_server(server, test)
    # The second call went out on the kept connection, was dropped unanswered, and went again.
    assert (server.connections, server.requests) == (2, 3)


async def test_connection_close_answers_are_not_reused() -> None:
    server = Server(lambda request: answer_json(request, connection="close"))

    async def test(url: str) -> None:
        assert await call(url, times=2) == [[0.1, 0.6]] * 2

    await with_server(server, test)
    assert server.connections == 2


async def test_chunked_answers_are_reassembled() -> None:
    def chunked(request: bytes) -> bytes:
        plain = answer_json(request)
        body = plain.split(b"\r\n\r\n", 1)[1]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]))
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        )

    async def test(url: str) -> None:
        assert await call(url) == [[0.1, 0.6]]

    await with_server(Server(chunked), test)


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
