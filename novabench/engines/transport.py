"""A lean HTTP/1.1 client for the hot path: POST a JSON body, hand each line of the answer to a
callback from the protocol's data_received, stamped with its arrival time. The calls around the
chat (version, model lists) use it too, reading the whole answer (`fetch`), so that one reader
with one set of limits and wording judges every answer of a host.

Why not httpx here: its per-token path (httpcore → h11 → an async iterator per chunk) costs
15–27 µs of CPU and a coroutine switch per streamed line, and 1.5–2 ms per request start. At a
few hundred concurrent streams that saturates the client's core and every token is read late.
This module does one exchange shape only (request body known up front, answer read as lines), so
it can do it with one Future per request and a plain function call per line.

The framing (status line, headers, chunked, Content-Length and close-delimited bodies) is read
by llhttp, the C parser under Node.js and uvicorn, through httptools: each read goes to it whole
and it calls back once per piece of body. Kept here: finding a head's end (for its 64 KiB cap and
the bare-LF rule), cutting the body into lines stamped with their read's arrival, and the caps on
lines, error bodies and framing; http1.py has the records, the errors and their words.

Plain http:// and https:// (stdlib ssl, the system's trust store); no proxies, no redirects
followed, no compression asked for.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httptools

from novabench.engines.http1 import (
    CHUNKED,
    DEFAULT_MAX_ERROR_BODY_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    LENGTH,
    MAX_FRAMING_BYTES,
    MAX_HEAD_BYTES,
    MAX_REPLAY_BYTES,
    NO_BODY,
    UNTIL_CLOSE,
    AnswerTimeout,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    LineTooLong,
    ProtocolError,
    ResponseHead,
    TransportError,
    chunked_problem,
    framing_of,
    head_problem,
    new_parser,
    refuse_bare_lf,
    status_line,
)

__all__ = [
    "DEFAULT_MAX_ERROR_BODY_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "MAX_HEAD_BYTES",
    "AnswerTimeout",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionLost",
    "LineCallback",
    "LineTooLong",
    "NdjsonHttpClient",
    "ProtocolError",
    "ResponseHead",
    "TransportError",
]

LineCallback = Callable[[bytes, float], None]  # (line without b"\n", arrival perf_counter)

# What the next bytes of an exchange are.
_HEAD, _BODY, _DONE = range(3)


class _StaleConnection(ConnectionLost):
    """A reused keep-alive connection closed before a single byte of the answer arrived."""


class _AnswerEnded(Exception):
    """Raised in a parser callback once the exchange is settled: read no more of this connection."""


class _Connection(asyncio.Protocol):
    """One TCP connection; carries one exchange at a time, parsed as the bytes arrive.

    The on_* methods are llhttp's callbacks (httptools calls them from feed_data).
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.uses = 0
        self.reusable = False
        self._waiter: asyncio.Future[ResponseHead] | None = None
        self._on_line: LineCallback = _ignore_line
        self._on_head: Callable[[ResponseHead], None] | None = None
        self._max_line = DEFAULT_MAX_LINE_BYTES
        self._max_error_body = DEFAULT_MAX_ERROR_BODY_BYTES
        self._reset()

    def _reset(self) -> None:
        self._parser = new_parser(self)
        self._state = _HEAD
        self._framing = NO_BODY
        self._raw = bytearray()  # the start of a head whose end has not come yet
        self._head_raw = b""  # the last complete head, to say what was wrong with it
        self._reason = b""
        self._headers: dict[str, str] = {}
        self._head: ResponseHead | None = None
        self._length = 0  # a Content-Length body's size
        self._body_bytes = 0
        self._pending = bytearray()  # the start of a line whose b"\n" has not come yet
        self._arrived = 0.0
        self._received = False
        self._error_body = bytearray()
        self._collecting_error = False
        # A chunked body: whether llhttp stands between chunks, whether the last read ended
        # there, the reads since then, and the framing bytes read since the last data.
        self._boundary = True
        self._clean = True
        self._replay: list[bytes] | None = []
        self._replay_bytes = 0
        self._framing_bytes = 0

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.reusable = False
            self.abort()
            return
        self._arrived = time.perf_counter()
        self._received = True
        try:
            if self._state == _BODY:
                self._feed_body(data)
            else:
                self._feed_heads(data)
        except Exception as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._state == _BODY and self._framing == UNTIL_CLOSE:
            try:
                self._finish()  # a close-delimited body ends here
            except Exception as callback_error:
                self._fail(callback_error)
            return
        lost: ConnectionLost
        if not self._received:
            kind = _StaleConnection if self.uses > 1 else ConnectionLost
            lost = kind("server closed the connection without an answer")
        elif self._state == _HEAD:
            lost = ConnectionLost("server closed the connection inside the response head")
        elif self._framing == CHUNKED:
            lost = ConnectionLost("server closed the connection mid-body (incomplete chunked read)")
        else:
            lost = ConnectionLost(
                f"server closed the connection mid-body ({self._length - self._body_bytes} "
                "bytes of Content-Length missing)"
            )
        if exc is not None:
            lost.__cause__ = exc
        self._fail(lost)

    # --- one exchange ------------------------------------------------------------------------

    def start(
        self,
        request: bytes,
        on_line: LineCallback,
        on_head: Callable[[ResponseHead], None] | None,
        max_line_bytes: int,
        max_error_body_bytes: int,
    ) -> asyncio.Future[ResponseHead]:
        """Send one request; the Future gives the head once the body was read to its end."""
        assert self.transport is not None
        self._reset()
        self.uses += 1
        self.reusable = False
        self._on_line, self._on_head = on_line, on_head
        self._max_line, self._max_error_body = max_line_bytes, max_error_body_bytes
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def transport_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def abort(self) -> None:
        """Drop the connection at once (an exchange cut short cannot leave it reusable)."""
        self.reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _finish(self) -> None:
        """The body ended: hand over its last unterminated line, then settle the exchange."""
        self._state = _DONE
        if self._pending and not self._collecting_error:
            line = bytes(self._pending)
            self._pending.clear()
            self._on_line(line, self._arrived)
        head = self._head
        assert head is not None
        if self._collecting_error:
            head.error_body = bytes(self._error_body)
        waiter, self._waiter = self._waiter, None
        self.reusable = not self.closed and head.keep_alive
        if waiter is not None and not waiter.done():
            waiter.set_result(head)

    # --- reading -----------------------------------------------------------------------------

    def _feed_heads(self, data: bytes) -> None:
        """Collect each head (1xx answers come before the real one) and let llhttp read it.

        The head's end is found here, not by llhttp, for the 64 KiB cap and the bare-LF rule,
        and so that a head llhttp refuses can be quoted whole.
        """
        while self._state == _HEAD:
            raw = self._raw
            searched_from = max(0, len(raw) - 3)
            raw += data
            found = raw.find(b"\r\n\r\n", searched_from)
            refuse_bare_lf(raw, searched_from, len(raw) if found < 0 else found + 4)
            if found < 0:
                if len(raw) > MAX_HEAD_BYTES:
                    raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")
                return
            if found > MAX_HEAD_BYTES:
                raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")
            self._head_raw, data = bytes(raw[: found + 4]), bytes(raw[found + 4 :])
            raw.clear()
            self._feed(self._head_raw)
            if not data:
                return
        if self._state == _BODY:
            self._feed_body(data)
        else:  # bytes after an answer without a body (204, Content-Length: 0)
            self._feed(data)

    def _feed_body(self, data: bytes) -> None:
        """Hand one read of the body to llhttp.

        For chunked framing, the reads since the last one that began between chunks are kept
        (by reference): llhttp says a size line was bad, not which, and replaying them finds
        it (http1.bad_size_line). Reads that bring framing but no data are counted and capped.
        """
        if self._framing != CHUNKED:
            self._feed(data)
            return
        if self._clean:
            self._replay, self._replay_bytes = [data], len(data)
        elif self._replay is not None:
            self._replay.append(data)
            self._replay_bytes += len(data)
            if self._replay_bytes > MAX_REPLAY_BYTES:
                self._replay = None
        body_before = self._body_bytes
        self._feed(data)
        self._clean = self._boundary and data[-1] == 0x0A
        if self._body_bytes != body_before:
            self._framing_bytes = 0
        elif self._state == _BODY:
            self._framing_bytes += len(data)
            if self._framing_bytes > MAX_FRAMING_BYTES:
                raise ProtocolError(
                    f"chunk framing over {MAX_FRAMING_BYTES // 1024} KiB with no data in it"
                )

    def _feed(self, data: bytes) -> None:
        """Run llhttp over `data` (its callbacks do the work); its errors become this module's."""
        error: BaseException
        try:
            self._parser.feed_data(data)
            return
        except httptools.HttpParserCallbackError as exc:
            error = exc.__context__ or ProtocolError(str(exc))  # what the callback raised
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            error = _AnswerEnded() if self._state == _DONE else self._broken(exc)
        if isinstance(error, _AnswerEnded):
            # Bytes after the answer, or the exchange was settled early: the connection's
            # framing can no longer be trusted.
            self.reusable = False
            self.abort()
            return
        raise error

    def _broken(self, exc: Exception) -> ProtocolError:
        """llhttp refused the server's bytes: what was wrong, in this module's words."""
        if self._state == _HEAD:
            return ProtocolError(head_problem(self._head_raw, str(exc)))
        return ProtocolError(chunked_problem(str(exc), self._replay))

    # --- llhttp's callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._state == _DONE:
            raise _AnswerEnded  # a second answer to one request

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._state != _HEAD:
            return  # a trailer: nothing here reads them
        key, text = name.decode("latin-1").lower(), value.decode("latin-1").strip()
        headers = self._headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status, version = self._parser.get_status_code(), self._parser.get_http_version()
        if not version.startswith("1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {status_line(self._head_raw)!r}")
        if status < 200:
            if status == 101:
                raise ProtocolError("server switched protocols (HTTP 101) when no one asked")
            return  # an interim answer (100 Continue): the real head follows
        head = ResponseHead(
            status, self._reason.decode("latin-1"), self._headers, f"HTTP/{version}"
        )
        self._head = head
        self._state = _BODY
        self._collecting_error = status >= 300
        if self._on_head is not None:
            self._on_head(head)
        self._framing = framing_of(head)
        if self._framing == LENGTH:
            self._length = int(head.headers["content-length"])
        elif self._framing == UNTIL_CLOSE:
            head.headers["connection"] = "close"  # nothing else can end this body

    def on_chunk_header(self) -> None:
        self._boundary = False

    def on_chunk_complete(self) -> None:
        self._boundary = True

    def on_body(self, piece: bytes) -> None:
        """Body bytes: split into lines for the callback, or kept as an error body."""
        self._body_bytes += len(piece)
        if self._collecting_error:
            self._keep_error_body(piece)
            return
        pending = self._pending
        on_line, max_line, arrived = self._on_line, self._max_line, self._arrived
        start = 0
        while True:
            found = piece.find(b"\n", start)
            if found < 0:
                break
            if pending:
                pending += piece[start:found]
                line = bytes(pending)
                pending.clear()
            else:
                line = piece[start:found]
            if len(line) > max_line:
                raise LineTooLong(f"a line longer than {max_line} bytes")
            on_line(line, arrived)
            start = found + 1
            if self._waiter is None:
                raise _AnswerEnded  # the callback ended the exchange
        if start < len(piece):
            pending += piece[start:]
            if len(pending) > max_line:
                raise LineTooLong(f"a line longer than {max_line} bytes")

    def on_message_complete(self) -> None:
        if self._head is None:  # the end of an interim answer: read the next head afresh
            self._reason, self._headers = b"", {}
            return
        self._finish()

    def _keep_error_body(self, piece: bytes) -> None:
        """The start of an error answer's body is kept for its message; then the read stops."""
        room = self._max_error_body - len(self._error_body)
        self._error_body += piece[:room]
        if len(piece) >= room:
            # Enough to show: the rest is not downloaded, so the connection goes.
            self._finish()
            raise _AnswerEnded


def _ignore_line(line: bytes, arrived: float) -> None:
    """No exchange in progress."""


class _WholeBody:
    """Collects the lines of a body that is read whole (a JSON answer), up to a cap."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.lines: list[bytes] = []
        self.size = 0

    def __call__(self, line: bytes, arrived: float) -> None:
        self.size += len(line) + 1
        if self.size > self.max_bytes:
            raise LineTooLong(f"an answer longer than {self.max_bytes} bytes")
        self.lines.append(line)

    def body(self) -> bytes:
        return b"\n".join(self.lines)


class NdjsonHttpClient:
    """POSTs to one host and streams the answers' lines; keeps idle connections for reuse."""

    def __init__(
        self,
        base_url: str,
        max_idle_connections: int = 64,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_error_body_bytes: int = DEFAULT_MAX_ERROR_BODY_BYTES,
        user_agent: str = "novabench",
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r}: only http:// and https:// URLs are supported")
        self.hostname = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._prefix = parts.path.rstrip("/")
        host_header = parts.netloc.rpartition("@")[2]
        self._header_lines = f"Host: {host_header}\r\nUser-Agent: {user_agent}\r\n".encode()
        self.max_idle_connections = max_idle_connections
        self.max_line_bytes = max_line_bytes
        self.max_error_body_bytes = max_error_body_bytes
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self.connections_made = 0

    async def post_lines(
        self,
        path: str,
        body: bytes,
        on_line: LineCallback,
        *,
        connect_timeout_s: float,
        on_head: Callable[[ResponseHead], None] | None = None,
        accept: str = "application/x-ndjson",
    ) -> ResponseHead:
        """POST a JSON body; each line of a 2xx answer goes to `on_line` as it arrives.

        Returns the head once the body was read to its end (for status >= 300 with the start
        of the body in `error_body`, and no lines delivered). `on_head` sees the head first.
        Raises TransportError subclasses, LineTooLong, or whatever a callback raised.
        """
        request = self._request_bytes("POST", path, body, accept)
        connection = self._idle_connection()
        if connection is not None:
            try:
                return await self._exchange(connection, request, on_line, on_head)
            except _StaleConnection:
                pass  # the server closed it while idle and read nothing: safe to send again
        connection = await self._connect(connect_timeout_s)
        return await self._exchange(connection, request, on_line, on_head)

    async def fetch(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        connect_timeout_s: float,
        timeout_s: float,
        max_body_bytes: int,
    ) -> tuple[ResponseHead, bytes]:
        """One request whose answer is read whole: (head, body; for status >= 300 the body is
        `head.error_body`). `timeout_s` bounds the whole call, connecting included.

        Raises ConnectError / ConnectTimeout when no connection could be made, AnswerTimeout
        when the server took the request but did not answer in time, LineTooLong past
        `max_body_bytes`, and the other TransportError subclasses.
        """
        loop = asyncio.get_running_loop()
        answer_by = loop.time() + timeout_s
        request = self._request_bytes(method, path, body, "application/json")
        collected = _WholeBody(max_body_bytes)
        heads: list[ResponseHead] = []
        connection = self._idle_connection()
        for _ in range(2):
            if connection is None:
                left_s = max(0.0, answer_by - loop.time())
                connection = await self._connect(min(connect_timeout_s, left_s))
            try:
                async with asyncio.timeout_at(answer_by):
                    head = await self._exchange(
                        connection, request, collected, heads.append, max_body_bytes
                    )
                return head, collected.body()
            except _StaleConnection:
                connection = None  # closed while idle, nothing read: safe to send again
            except TimeoutError:
                raise AnswerTimeout(got_head=bool(heads)) from None
        raise ConnectionLost("server closed the connection without an answer")

    def _request_bytes(self, method: str, path: str, body: bytes | None, accept: str) -> bytes:
        head = f"{method} {self._prefix}{path} HTTP/1.1\r\n".encode() + self._header_lines
        head += f"Accept: {accept}\r\n".encode()
        if body is None:
            return head + b"\r\n"
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        return head + body

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely timed out
            if not connection.closed and not connection.transport_closing():
                return connection
            self._open.discard(connection)
        return None

    async def _exchange(
        self,
        connection: _Connection,
        request: bytes,
        on_line: LineCallback,
        on_head: Callable[[ResponseHead], None] | None,
        max_line_bytes: int | None = None,
    ) -> ResponseHead:
        waiter = connection.start(
            request,
            on_line,
            on_head,
            max_line_bytes or self.max_line_bytes,
            self.max_error_body_bytes,
        )
        try:
            head = await waiter
        except BaseException:
            # A failure, a timeout or a cancellation: the answer was not read to its end.
            connection.abort()
            self._open.discard(connection)
            raise
        if connection.reusable and len(self._idle) < self.max_idle_connections:
            self._idle.append(connection)
        else:
            connection.abort()
            self._open.discard(connection)
        return head

    async def _connect(self, timeout_s: float) -> _Connection:
        """A new connection, trying each address of the host in turn (the first error wins)."""
        loop = asyncio.get_running_loop()
        first_error: OSError | None = None
        try:
            async with asyncio.timeout(timeout_s):
                infos = await loop.getaddrinfo(self.hostname, self.port, type=socket.SOCK_STREAM)
                for family, _, _, _, address in infos:
                    try:
                        _, connection = await loop.create_connection(
                            _Connection,
                            str(address[0]),
                            int(address[1]),
                            family=family,
                            ssl=self._ssl,
                            server_hostname=self.hostname if self._ssl else None,
                        )
                    except OSError as exc:
                        first_error = first_error or exc
                        continue
                    self.connections_made += 1
                    self._open.add(connection)
                    return connection
        except TimeoutError as exc:
            raise ConnectTimeout(f"no connection within {timeout_s:g} s") from exc
        except OSError as exc:  # the name did not resolve
            raise ConnectError(str(exc)) from exc
        assert first_error is not None  # getaddrinfo never answers an empty list
        raise ConnectError(str(first_error)) from first_error

    async def aclose(self) -> None:
        """Close every connection, idle or in use."""
        for connection in list(self._open):
            connection.abort()
        self._open.clear()
        self._idle.clear()
