"""The transport's reading of HTTP/1.1 framing (llhttp underneath), fed directly and over
loopback: hypothesis writes valid answers (1xx heads, header names in any case, chunked in chunks
of random sizes with extensions and trailers, Content-Length, read to the close, 204) cut at
random points and checks the lines that come out; corrupts them and checks that every outcome is
an answer or a TransportError, settled once the server closes; and breaks them (status line,
header line, bare LF, chunk size) and checks that each ends, without waiting for the close, as
broken HTTP in one line of words."""

from __future__ import annotations

import ast
import asyncio
import re
from dataclasses import dataclass
from string import ascii_letters, digits

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novabench.engines.connection import Connection
from novabench.engines.http1 import MAX_FRAMING_BYTES
from novabench.engines.streaming import describe_lost_answer
from novabench.engines.transport import (
    NdjsonHttpClient,
    ProtocolError,
    ResponseHead,
    TransportError,
)
from tests.engines.feeding import FakeTransport

MAX_LINE_BYTES = 1 << 16
MAX_ERROR_BODY_BYTES = 1 << 16
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Outcome:
    """What the transport made of a byte stream: the lines, then the head or the error."""

    lines: list[bytes]
    head: ResponseHead | None
    error: BaseException | None
    reusable: bool  # before the server closed


def deliver(pieces: list[bytes], close: bool = True) -> Outcome:
    """Feed the pieces as reads of one answer, then (if `close`) the server's close."""
    lines: list[bytes] = []

    async def run() -> Outcome:
        connection = Connection()
        connection.connection_made(FakeTransport())
        waiter = connection.start(
            b"POST", lambda line, _: lines.append(line), None, MAX_LINE_BYTES, MAX_ERROR_BODY_BYTES
        )
        for piece in pieces:
            connection.data_received(piece)
        reusable = connection.reusable
        if close:
            connection.connection_lost(None)
        assert waiter.done(), "the exchange was left waiting after the server closed"
        error = waiter.exception()
        return Outcome(lines, None if error else waiter.result(), error, reusable)

    return asyncio.run(run())


def cut(data: bytes, points: set[int]) -> list[bytes]:
    edges = [0, *sorted(p for p in points if 0 < p < len(data)), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


# --- valid answers -----------------------------------------------------------------------------

LINE = st.binary(max_size=60).map(lambda raw: raw.replace(b"\n", b""))
EXTENSION = st.sampled_from([b"", b";a", b";a=1", b';q="v w"', b" ;x=y", b";a=1;b=2"])
TRAILER = st.sampled_from([b"X-Trailer: 1\r\n", b"Server-Timing: total;dur=12\r\n", b"X-E:\r\n"])
INTERIM = st.sampled_from(
    [b"", b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"]
)
HEADER = st.sampled_from(
    [b"Content-Type: application/x-ndjson\r\n", b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n",
     b"X-Padded:   value  \r\n", b"X-Empty:\r\n"]
)  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A body of lines (empty ones too), maybe without a newline after the last; its lines."""
    lines = draw(st.lists(LINE, max_size=12))
    if lines and lines[-1] and draw(st.booleans()):
        return b"\n".join(lines), lines
    return b"".join(line + b"\n" for line in lines), lines


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> tuple[bytes, list[int]]:
    """`body` in chunks of random sizes, each size in random case and padding, with extensions
    and maybe trailers; and where each size line begins."""
    points = draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=8)) if body else set()
    out, size_lines = b"", []
    for piece in cut(body, points) if body else []:
        size = b"%0*x" % (draw(st.integers(1, 4)), len(piece))
        size = size.upper() if draw(st.booleans()) else size
        size_lines.append(len(out))
        out += size + draw(EXTENSION) + b"\r\n" + piece + b"\r\n"
    size_lines.append(len(out))
    trailers = b"".join(draw(st.lists(TRAILER, max_size=2)))
    return out + b"0" + draw(EXTENSION) + b"\r\n" + trailers + b"\r\n", size_lines


@st.composite
def cased(draw: st.DrawFn, word: bytes) -> bytes:
    """`word` with each letter in random case (header names and tokens are case-insensitive)."""
    uppers = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    text = word.decode()
    return "".join(
        c.upper() if up else c.lower() for c, up in zip(text, uppers, strict=True)
    ).encode()


@st.composite
def answers(draw: st.DrawFn) -> tuple[bytes, list[bytes], str]:
    """A whole answer: (its bytes, the lines it carries, how its body is framed)."""
    body, lines = draw(bodies())
    framing = draw(st.sampled_from(["chunked", "length", "close", "no body"]))
    head = draw(INTERIM) + b"HTTP/1.1 %s\r\n" % (
        b"204 No Content" if framing == "no body" else b"200 OK"
    )
    head += b"".join(draw(st.lists(HEADER, max_size=3)))
    if framing == "chunked":
        encoding = draw(cased(b"Transfer-Encoding")) + b": " + draw(cased(b"chunked"))
        return head + encoding + b"\r\n\r\n" + draw(chunked(body))[0], lines, framing
    if framing == "length":
        length = draw(cased(b"Content-Length")) + b": %d" % len(body)
        return head + length + b"\r\n\r\n" + body, lines, framing
    if framing == "close":
        return head + b"\r\n" + body, lines, framing
    return head + b"\r\n", [], framing


@PROPERTY
@given(answers(), st.sets(st.integers(1, 1 << 12), max_size=12))
def test_any_valid_framing_cut_anywhere_gives_the_lines_sent(
    answer: tuple[bytes, list[bytes], str], points: set[int]
) -> None:
    data, lines, framing = answer
    outcome = deliver(cut(data, points), close=framing == "close")
    assert outcome.error is None, outcome.error
    assert outcome.head is not None and outcome.head.status in (200, 204)
    assert outcome.lines == lines
    assert outcome.reusable == (framing != "close")


@PROPERTY
@given(bodies(), st.data())
def test_an_error_answer_keeps_its_body_and_gives_no_lines(
    body_lines: tuple[bytes, list[bytes]], data: st.DataObject
) -> None:
    body, _ = body_lines
    framed = data.draw(chunked(body))[0] if data.draw(st.booleans()) else None
    head = b"HTTP/1.1 503 Service Unavailable\r\n"
    if framed is None:
        head += b"Content-Length: %d\r\n\r\n" % len(body)
    raw = head + (b"Transfer-Encoding: chunked\r\n\r\n" + framed if framed is not None else body)
    outcome = deliver(cut(raw, data.draw(st.sets(st.integers(1, 1 << 12), max_size=8))))
    assert outcome.head is not None and outcome.head.error_body == body
    assert outcome.lines == []


# --- corrupted answers -------------------------------------------------------------------------

FRAMING_BYTES = st.sampled_from(
    [b"\r", b"\n", b"\r\n", b":", b" ", b";", b"0", b"f", b"z", b"\x00"]
)


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    """A valid answer with one byte changed, bytes put in or taken out, or its end cut off."""
    data, _, _ = draw(answers())
    body_at = data.index(b"\r\n\r\n", data.index(b"HTTP/1.1 2")) + 4
    at = draw(
        st.integers(0, len(data) - 1) | st.integers(min(body_at, len(data) - 1), len(data) - 1)
    )
    junk = draw(st.one_of(FRAMING_BYTES, st.binary(min_size=1, max_size=6)))
    kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
    if kind == "replace":
        return data[:at] + junk + data[at + 1 :]
    if kind == "insert":
        return data[:at] + junk + data[at:]
    if kind == "delete":
        return data[:at] + data[at + draw(st.integers(1, 8)) :]
    return data[:at]


@PROPERTY
@given(corrupted(), st.sets(st.integers(1, 1 << 12), max_size=12))
def test_a_corrupted_answer_is_an_answer_or_a_transport_error_however_cut(
    data: bytes, points: set[int]
) -> None:
    whole, pieces = deliver([data] if data else []), deliver(cut(data, points))
    for outcome in (whole, pieces):
        assert outcome.error is None or isinstance(outcome.error, TransportError), outcome.error
    # llhttp judges the same bytes the same way, whatever the reads they came in.
    assert type(pieces.error) is type(whole.error)
    assert pieces.lines == whole.lines


@PROPERTY
@given(bodies(), st.data())
def test_a_bad_size_line_is_quoted_whole_or_as_far_as_it_came(
    body_lines: tuple[bytes, list[bytes]], data: st.DataObject
) -> None:
    body, _ = body_lines
    framed, size_lines = data.draw(chunked(body))
    at = data.draw(st.sampled_from(size_lines))
    bad = data.draw(st.sampled_from([b"zz", b"g1", b"xyz;a", b"-1"]))
    raw = CHUNKED_HEAD + framed[:at] + bad + b"\r\n" + framed[at:]
    whole = deliver([raw])
    assert isinstance(whole.error, ProtocolError)
    assert str(whole.error) == f"bad chunk size line: {bad!r}"
    cut_up = deliver(cut(raw, data.draw(st.sets(st.integers(1, len(raw)), max_size=8))))
    assert isinstance(cut_up.error, ProtocolError) and cut_up.lines == whole.lines
    quoted = ast.literal_eval(str(cut_up.error).removeprefix("bad chunk size line: "))
    assert quoted and bad.startswith(quoted)


@st.composite
def broken(draw: st.DrawFn) -> bytes:
    """A valid answer made into one no HTTP/1.1 reader may take: a status line that is not one,
    a header line without a colon, a head line or chunk size line ended by LF alone, or a chunk
    size line that is not hexadecimal."""
    kind = draw(st.sampled_from(["status", "header", "head LF", "size", "size LF"]))
    if kind in ("size", "size LF"):
        framed, size_lines = draw(chunked(draw(bodies())[0]))
        at = draw(st.sampled_from(size_lines))
        if kind == "size LF":
            end = framed.index(b"\r\n", at)
            return CHUNKED_HEAD + framed[:end] + framed[end + 1 :]
        digits_first = draw(st.text("0123456789abcdefABCDEF", max_size=3)).encode()
        bad = digits_first + draw(st.sampled_from([b"g", b"z", b"-", b"+", b"x", b"\x00"]))
        return CHUNKED_HEAD + framed[:at] + bad + b"\r\n" + framed[at:]
    data, _, _ = draw(answers())
    head_end = data.index(b"\r\n\r\n", data.index(b"HTTP/1.1 2")) + 4
    head, body = data[:head_end], data[head_end:]
    if kind == "status":
        junk = draw(st.text(ascii_letters + digits + " /.-", max_size=20)).encode()
        return b"X" + junk + head[head.index(b"\r\n") :] + body
    if kind == "header":
        name = draw(st.text(ascii_letters + "-", min_size=1, max_size=20)).encode()
        at = head.index(b"\r\n") + 2
        return head[:at] + name + b"\r\n" + head[at:] + body
    at = draw(st.sampled_from([found.start() for found in re.finditer(b"\r\n", head)]))
    return head[:at] + head[at + 1 :] + body


@PROPERTY
@given(broken(), st.sets(st.integers(1, 1 << 12), max_size=12))
def test_broken_framing_is_broken_http_however_cut(data: bytes, points: set[int]) -> None:
    for outcome in (deliver([data], close=False), deliver(cut(data, points), close=False)):
        # Settled without waiting for the server's close, in words fit for one error line.
        assert isinstance(outcome.error, ProtocolError), (data, outcome.error)
        words = describe_lost_answer(outcome.error, 0)
        assert words.startswith("server answered with broken HTTP (") and "\n" not in words


async def _serve_once(pieces: list[bytes], close: bool) -> tuple[asyncio.Server, str]:
    """A loopback server that answers one request with `pieces` (a write each), then closes or
    holds the connection open."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            for piece in pieces:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)
            if not close:
                await reader.read()  # until the client gives up
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        answers().map(lambda answer: (answer[0], answer[2] == "close")),
        corrupted().map(lambda data: (data, True)),
        broken().map(lambda data: (data, False)),
    ),
    st.sets(st.integers(1, 1 << 12), max_size=6),
)
def test_over_loopback_any_framing_ends_in_an_answer_or_a_transport_error(
    served: tuple[bytes, bool], points: set[int]
) -> None:
    data, close = served
    lines: list[bytes] = []

    async def run() -> ResponseHead | BaseException:
        server, url = await _serve_once(cut(data, points), close)
        client = NdjsonHttpClient(url)
        try:
            async with asyncio.timeout(20):  # a hang fails the test, it does not stall it
                return await client.post_lines(
                    "/api/chat", b"{}", lambda line, _: lines.append(line), connect_timeout_s=5
                )
        except TransportError as exc:
            return exc
        finally:
            await client.aclose()
            server.close()

    outcome = asyncio.run(run())
    expected = deliver(cut(data, points), close=close)
    if isinstance(outcome, BaseException):
        assert type(outcome) is type(expected.error), (outcome, expected.error)
        assert "\n" not in describe_lost_answer(outcome, 0)
    else:
        assert expected.error is None and expected.head is not None
        assert outcome.status == expected.head.status
    assert lines == expected.lines


# --- what llhttp refuses, in this module's words -----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
         "not an HTTP/1.x status line: 'HTTP/2.0 200 OK'"),
        (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header line: 'No colon here'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "bad Content-Length: '1x'"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
         "server switched protocols (HTTP 101) when no one asked"),
        (CHUNKED_HEAD + b"3\nabc\n0\n\n", "chunk framing lines end in LF, not CRLF"),
        (CHUNKED_HEAD + b"1\r\nab\r\n", "chunk data longer than its size line said"),
        (CHUNKED_HEAD + b"0\r\nBad trailer\r\n\r\n", "bad chunked framing (Invalid header token)"),
    ],
)  # fmt: skip
def test_broken_http_is_named(raw: bytes, words: str) -> None:
    outcome = deliver([raw])
    assert isinstance(outcome.error, ProtocolError)
    assert str(outcome.error) == words


def test_transfer_encoding_overrides_content_length() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
    outcome = deliver([head + b"3\r\nab\n\r\n0\r\n\r\n"], close=False)
    assert outcome.error is None and outcome.lines == [b"ab"] and outcome.reusable


def test_trailers_do_not_join_the_head() -> None:
    outcome = deliver([CHUNKED_HEAD + b"2\r\nab\r\n0\r\nX-Trailer: 1\r\n\r\n"], close=False)
    assert outcome.head is not None and "x-trailer" not in outcome.head.headers
    assert outcome.lines == [b"ab"] and outcome.reusable


def test_framing_with_no_data_in_it_is_capped() -> None:
    endless_extension = [b"1;x=" + b"y" * 4096] + [b"y" * 4096] * (MAX_FRAMING_BYTES // 4096)
    outcome = deliver([CHUNKED_HEAD, *endless_extension], close=False)
    assert isinstance(outcome.error, ProtocolError)
    assert str(outcome.error) == "chunk framing over 64 KiB with no data in it"
