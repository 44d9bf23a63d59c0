"""The streaming transport: framing, line splitting, connection reuse and failures, against real
loopback servers (the double and tiny asyncio servers) and, for every split point, fed directly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from novabench.engines.transport import (
    DEFAULT_MAX_ERROR_BODY_BYTES,
    MAX_HEAD_BYTES,
    ConnectError,
    ConnectionLost,
    LineTooLong,
    NdjsonHttpClient,
    ProtocolError,
    ResponseHead,
    _Connection,
)
from tests.conftest import free_port
from tests.ollama_double import FakeModel, OllamaDouble

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
CHAT = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
LINES = [b'{"n":1,"text":"first"}', b'{"n":2,"text":"second, longer"}', b'{"n":3,"done":true}']


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%b\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailer + b"\r\n"


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"  # noqa: E501
)
# Ollama sends one chunk per line; here one line is also split over two chunks, and a chunk
# carries an extension and the body a trailer, which a reader must skip.
CHUNKED_RESPONSE = CHUNKED_HEAD + chunked(
    LINES[0] + b"\n", LINES[1][:7], LINES[1][7:] + b"\n", LINES[2] + b"\n", trailer=b"X-T: 1\r\n"
).replace(b"\r\n", b";ext=1\r\n", 1)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's body (the transport always sends Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    found = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    assert found is not None
    return await reader.readexactly(int(found.group(1)))


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def post(client: NdjsonHttpClient, lines: list[bytes] | None = None) -> ResponseHead:
    got = lines if lines is not None else []
    return await client.post_lines(
        "/api/chat", CHAT, lambda line, _: got.append(line), connect_timeout_s=5
    )


def answer_with(*responses: bytes, close_after: bool = False) -> Handler:
    """A server answering each request on a connection with the next response."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for response in responses:
                await read_request(reader)
                writer.write(response)
                await writer.drain()
                if close_after:
                    return
            await reader.read()  # until the client closes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


# --- the parser, fed directly: every way the bytes can be cut ---------------------------------


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def feed(pieces: list[bytes]) -> tuple[_Connection, asyncio.Future[ResponseHead], list[bytes]]:
    lines: list[bytes] = []

    async def run() -> tuple[_Connection, asyncio.Future[ResponseHead]]:
        connection = _Connection()
        connection.connection_made(FakeTransport())
        waiter = connection.start(b"POST", lambda line, _: lines.append(line), None, 100, 100)
        for piece in pieces:
            connection.data_received(piece)
        return connection, waiter

    connection, waiter = asyncio.run(run())
    return connection, waiter, lines


def test_every_split_of_a_chunked_body_gives_the_same_lines() -> None:
    data = CHUNKED_RESPONSE
    for cut in range(1, len(data)):
        connection, waiter, lines = feed([data[:cut], data[cut:]])
        assert waiter.done() and waiter.result().status == 200, cut
        assert lines == LINES, cut
        assert connection.reusable, cut


def test_one_byte_at_a_time() -> None:
    connection, waiter, lines = feed([bytes([b]) for b in CHUNKED_RESPONSE])
    assert waiter.result().headers["content-type"] == "application/x-ndjson"
    assert lines == LINES
    assert connection.reusable


def test_a_line_over_the_cap_is_refused_and_the_connection_dropped() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    connection, waiter, lines = feed([head, b'{"a":1}\n', b"x" * 60, b"x" * 60])
    assert isinstance(waiter.exception(), LineTooLong)
    assert lines == [b'{"a":1}']
    assert connection.transport is not None and connection.transport.is_closing()
    assert not connection.reusable


def test_bytes_after_the_answer_make_the_connection_unusable() -> None:
    connection, waiter, _ = feed([CHUNKED_RESPONSE + b"HTTP/1.1 200 OK\r\n"])
    assert waiter.result().status == 200
    assert not connection.reusable


def test_bad_chunk_size_is_a_protocol_error() -> None:
    _, waiter, _ = feed([CHUNKED_HEAD + b"zz\r\n"])
    assert isinstance(waiter.exception(), ProtocolError)


# --- real servers ---------------------------------------------------------------------------


def test_streams_from_the_double_over_one_connection() -> None:
    async def chat_three_times(url: str) -> tuple[list[list[dict[str, object]]], int]:
        client = NdjsonHttpClient(url)
        answers = []
        for _ in range(3):
            lines: list[bytes] = []
            head = await post(client, lines)
            assert head.status == 200 and head.keep_alive
            answers.append([json.loads(line) for line in lines])
        await client.aclose()
        return answers, client.connections_made

    model = FakeModel("m", reply="one two three", ttft_s=0.001, token_interval_s=0.001)
    with OllamaDouble([model]) as double:
        answers, connections = asyncio.run(chat_three_times(double.url))
        chats = [r for r in double.requests if r.path == "/api/chat"]
    assert connections == 1
    assert len({r.connection_id for r in chats}) == 1
    assert chats[0].json["messages"] == [{"role": "user", "content": "hi"}]
    for chunks in answers:
        assert "".join(c["message"]["content"] for c in chunks) == "one two three"  # type: ignore[index]
        assert chunks[-1]["done"] is True


def test_arrival_stamps_never_go_back() -> None:
    async def stamps(url: str) -> list[float]:
        client = NdjsonHttpClient(url)
        seen: list[float] = []
        await client.post_lines(
            "/api/chat", CHAT, lambda _, at: seen.append(at), connect_timeout_s=5
        )
        await client.aclose()
        return seen

    model = FakeModel("m", reply="a b c d e f", ttft_s=0.001, token_interval_s=0.002)
    with OllamaDouble([model]) as double:
        seen = asyncio.run(stamps(double.url))
    assert len(seen) == 7 and seen == sorted(seen)


def test_bytes_dribbled_one_at_a_time_over_tcp() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for byte in CHUNKED_RESPONSE:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0)
        await reader.read()
        writer.close()

    async def run() -> list[bytes]:
        async with serving(handle) as url:
            client = NdjsonHttpClient(url)
            lines: list[bytes] = []
            await post(client, lines)
            await client.aclose()
            return lines

    assert asyncio.run(run()) == LINES


def test_content_length_body_and_a_last_line_without_newline() -> None:
    body = b"\n".join(LINES)  # no newline after the last line
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)

    async def run() -> tuple[list[bytes], list[bytes], int]:
        async with serving(answer_with(response, response)) as url:
            client = NdjsonHttpClient(url)
            first: list[bytes] = []
            second: list[bytes] = []
            await post(client, first)
            await post(client, second)
            await client.aclose()
            return first, second, client.connections_made

    first, second, connections = asyncio.run(run())
    assert first == second == LINES
    assert connections == 1


def test_close_delimited_body_ends_at_the_close() -> None:
    response = b"HTTP/1.1 200 OK\r\n\r\n" + b"\n".join(LINES) + b"\n"

    async def run() -> tuple[list[bytes], ResponseHead, int]:
        async with serving(answer_with(response, response, close_after=True)) as url:
            client = NdjsonHttpClient(url)
            lines: list[bytes] = []
            head = await post(client, lines)
            await post(client, [])
            await client.aclose()
            return lines, head, client.connections_made

    lines, head, connections = asyncio.run(run())
    assert lines == LINES
    assert not head.keep_alive
    assert connections == 2  # a body that ends at the close leaves nothing to reuse


def test_connection_close_header_is_obeyed() -> None:
    response = CHUNKED_RESPONSE.replace(b"OK\r\n", b"OK\r\nConnection: close\r\n", 1)

    async def run() -> int:
        async with serving(answer_with(response, response)) as url:
            client = NdjsonHttpClient(url)
            await post(client)
            await post(client)
            await client.aclose()
            return client.connections_made

    assert asyncio.run(run()) == 2


def test_a_kept_connection_the_server_closed_while_idle_is_not_used() -> None:
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        await read_request(reader)
        requests += 1
        writer.write(CHUNKED_RESPONSE)  # says keep-alive, then closes anyway
        await writer.drain()
        writer.close()

    async def run() -> tuple[list[bytes], int]:
        async with serving(handle) as url:
            client = NdjsonHttpClient(url)
            await post(client)
            await asyncio.sleep(0.05)  # let the close arrive while the connection is idle
            lines: list[bytes] = []
            await post(client, lines)
            await client.aclose()
            return lines, client.connections_made

    lines, connections = asyncio.run(run())
    assert lines == LINES
    assert connections == 2
    assert requests == 2


def test_a_reused_connection_closed_before_any_answer_byte_is_retried_once() -> None:
    # The server takes the second request on the kept connection and hangs up without a byte:
    # to the client this is a keep-alive connection that went stale under it.
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await read_request(reader)
            requests += 1
            writer.write(CHUNKED_RESPONSE)
            if requests == 1:
                await read_request(reader)
                requests += 1
        writer.close()

    async def run() -> tuple[list[bytes], int]:
        async with serving(handle) as url:
            client = NdjsonHttpClient(url)
            await post(client)
            lines: list[bytes] = []
            await post(client, lines)
            await client.aclose()
            return lines, client.connections_made

    lines, connections = asyncio.run(run())
    assert lines == LINES
    assert connections == 2
    assert requests == 3


def test_a_fresh_connection_closed_without_an_answer_is_not_retried() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await read_request(reader)
        writer.close()

    async def run() -> tuple[BaseException, int]:
        async with serving(handle) as url:
            client = NdjsonHttpClient(url)
            with pytest.raises(ConnectionLost) as caught:
                await post(client)
            await client.aclose()
            return caught.value, client.connections_made

    error, connections = asyncio.run(run())
    assert str(error) == "server closed the connection without an answer"
    assert connections == 1


def test_a_reused_connection_that_fails_after_answering_something_is_not_retried() -> None:
    requests = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await read_request(reader)
            requests += 1
            writer.write(CHUNKED_RESPONSE)
            await read_request(reader)
            requests += 1
            writer.write(CHUNKED_HEAD + b"10\r\n{")  # then gone, mid-body
            await writer.drain()
        writer.close()

    async def run() -> BaseException | None:
        async with serving(handle) as url:
            client = NdjsonHttpClient(url)
            await post(client)
            try:
                await post(client)
            except ConnectionLost as exc:
                return exc
            finally:
                await client.aclose()
            return None

    error = asyncio.run(run())
    assert isinstance(error, ConnectionLost)
    assert "incomplete chunked read" in str(error)
    assert requests == 2  # the POST was not sent a third time


def test_a_head_over_64_kib_is_refused() -> None:
    huge = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * MAX_HEAD_BYTES + b"\r\n\r\n"

    async def run() -> BaseException:
        async with serving(answer_with(huge)) as url:
            client = NdjsonHttpClient(url)
            with pytest.raises(ProtocolError) as caught:
                await post(client)
            await client.aclose()
            return caught.value

    assert "response head larger than 64 KiB" in str(asyncio.run(run()))


def test_a_line_longer_than_the_cap_stops_the_read() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(CHUNKED_HEAD)
        with contextlib.suppress(ConnectionError):
            for _ in range(200):  # 12.8 MiB of one line, unless the client hangs up first
                writer.write(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
                await writer.drain()
        writer.close()

    async def run() -> None:
        async with serving(handle) as url:
            client = NdjsonHttpClient(url, max_line_bytes=1024 * 1024)
            with pytest.raises(LineTooLong):
                await post(client)
            assert not client._open  # the connection was dropped, not read to its end
            await client.aclose()

    asyncio.run(run())


def test_an_error_answer_keeps_only_the_start_of_its_body() -> None:
    body = b"x" * 5_000_000
    response = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%b" % (
        len(body),
        body,
    )

    async def run() -> tuple[ResponseHead, list[bytes], int]:
        async with serving(answer_with(response)) as url:
            client = NdjsonHttpClient(url)
            lines: list[bytes] = []
            head = await post(client, lines)
            idle = len(client._idle)
            await client.aclose()
            return head, lines, idle

    head, lines, idle = asyncio.run(run())
    assert head.status == 503 and head.reason == "Service Unavailable"
    assert head.error_body == b"x" * DEFAULT_MAX_ERROR_BODY_BYTES
    assert lines == []
    assert idle == 0  # the rest was not downloaded, so the connection went


def test_a_redirect_is_reported_not_followed() -> None:
    response = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://x.invalid/\r\nContent-Length: 0\r\n\r\n"  # noqa: E501

    async def run() -> ResponseHead:
        async with serving(answer_with(response)) as url:
            client = NdjsonHttpClient(url)
            head = await post(client)
            await client.aclose()
            return head

    head = asyncio.run(run())
    assert (head.status, head.headers["location"], head.error_body) == (
        307,
        "http://x.invalid/",
        b"",
    )


def test_a_callback_error_ends_the_exchange_and_the_connection() -> None:
    async def run() -> None:
        async with serving(answer_with(CHUNKED_RESPONSE)) as url:
            client = NdjsonHttpClient(url)

            def refuse(line: bytes, at: float) -> None:
                raise ValueError(f"bad line {line!r}")

            with pytest.raises(ValueError, match="bad line"):
                await client.post_lines("/api/chat", CHAT, refuse, connect_timeout_s=5)
            assert not client._open and not client._idle
            await client.aclose()

    asyncio.run(run())


def test_a_cancelled_exchange_does_not_leave_its_connection_for_reuse() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await read_request(reader)
            writer.write(CHUNKED_HEAD + chunked(LINES[0] + b"\n")[:-5])  # then nothing
            await reader.read()
        writer.close()

    async def run() -> tuple[list[bytes], int]:
        async with serving(handle) as url:
            client = NdjsonHttpClient(url)
            lines: list[bytes] = []
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await post(client, lines)
            open_after = len(client._open) + len(client._idle)
            await client.aclose()
            return lines, open_after

    lines, open_after = asyncio.run(run())
    assert lines == [LINES[0]]
    assert open_after == 0


def test_connection_refused_is_a_connect_error_with_the_os_reason() -> None:
    async def run() -> ConnectError:
        client = NdjsonHttpClient(f"http://127.0.0.1:{free_port()}")
        with pytest.raises(ConnectError) as caught:
            await post(client)
        return caught.value

    error = asyncio.run(run())
    assert isinstance(error.__cause__, ConnectionRefusedError)


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="only http:// and https://"):
        NdjsonHttpClient("ftp://example.com")


def test_the_backend_reports_a_connect_timeout_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from novabench.engines import ChatRequest
    from novabench.engines.ollama import OllamaBackend
    from novabench.engines.transport import ConnectTimeout
    from novabench.records import RequestResult

    async def never_connects(self: NdjsonHttpClient, timeout_s: float) -> None:
        raise ConnectTimeout(f"no connection within {timeout_s:g} s") from TimeoutError()

    monkeypatch.setattr(NdjsonHttpClient, "_connect", never_connects)
    result = RequestResult("load", "m", "h", "p", 0, False, datetime.now(UTC))
    request = ChatRequest("m", [{"role": "user", "content": "hi"}], connect_timeout_s=2.5)

    async def run() -> None:
        backend = OllamaBackend("http://127.0.0.1:9")
        await backend.chat(request, result)
        await backend.aclose()

    asyncio.run(run())
    assert result.error == "cannot connect within connect_timeout_s=2.5 (http://127.0.0.1:9)"
