"""A lean HTTP/1.1 client for the hot path: POST a JSON body, hand each line of the answer to a
callback from the protocol's data_received, stamped with its arrival time. The calls around the
chat (version, model lists) use it too, reading the whole answer (`fetch`), so that one reader
with one set of limits and wording judges every answer of a host.

Why not httpx here: its per-token path (httpcore → h11 → an async iterator per chunk) costs
15–27 µs of CPU and a coroutine switch per streamed line, and 1.5–2 ms per request start. At a
few hundred concurrent streams that saturates the client's core and every token is read late.
This module does one exchange shape only (request body known up front, answer read as lines), so
it can do it with one Future per request and a plain function call per line.

Plain http:// and https:// (stdlib ssl, the system's trust store); no proxies, no redirects
followed, no compression asked for.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# A response head larger than this is refused (Ollama's are a few hundred bytes).
MAX_HEAD_BYTES = 64 * 1024
# A chunk-size line or trailer line larger than this is refused.
MAX_CONTROL_LINE_BYTES = 4096
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
DEFAULT_MAX_ERROR_BODY_BYTES = 64 * 1024

LineCallback = Callable[[bytes, float], None]  # (line without b"\n", arrival perf_counter)


class TransportError(Exception):
    """The connection failed or the server broke HTTP/1.1: there is no complete answer."""


class ConnectError(TransportError):
    """No connection could be made (the OS error is the __cause__)."""


class ConnectTimeout(ConnectError):
    """No connection within the connect timeout."""


class ConnectionLost(TransportError):
    """The server closed or reset the connection before its answer ended."""


class _StaleConnection(ConnectionLost):
    """A reused keep-alive connection closed before a single byte of the answer arrived."""


class ProtocolError(TransportError):
    """The server's answer is not HTTP/1.1 as this client reads it."""


class AnswerTimeout(TransportError):
    """Connected and sent, but the answer (or its end) did not come in time."""

    def __init__(self, got_head: bool) -> None:
        self.got_head = got_head
        super().__init__("the answer did not end in time" if got_head else "no answer in time")


class LineTooLong(Exception):
    """One line of the body is longer than the cap; the rest of the body is not read."""


@dataclass
class ResponseHead:
    """A response's status line and headers; for status >= 300 also the start of its body."""

    status: int
    reason: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    version: str = "HTTP/1.1"
    error_body: bytes = b""  # status >= 300: at most max_error_body_bytes of the body

    @property
    def keep_alive(self) -> bool:
        """Whether the server lets the connection carry another request."""
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


# Parser states, one per thing the next bytes are.
_HEAD, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _LENGTH, _UNTIL_CLOSE, _DONE = range(8)


def _parse_head(raw: bytes) -> ResponseHead:
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise ProtocolError(f"malformed header line: {line[:80]!r}")
        key, value = name.strip().lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return ResponseHead(int(code), reason, headers, version)


class _Connection(asyncio.Protocol):
    """One TCP connection; carries one exchange at a time, parsed as the bytes arrive."""

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
        self._state = _HEAD
        self._raw = bytearray()  # bytes of the head or of a control line not yet complete
        self._head: ResponseHead | None = None
        self._left = 0  # bytes still to come in this chunk, or of a Content-Length body
        self._pending = bytearray()  # the start of a line whose b"\n" has not come yet
        self._arrived = 0.0
        self._received = False
        self._error_body = bytearray()
        self._collecting_error = False

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
            self._feed(data)
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
        if self._state == _UNTIL_CLOSE:
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
        elif self._state in (_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS):
            lost = ConnectionLost("server closed the connection mid-body (incomplete chunked read)")
        else:
            lost = ConnectionLost(
                f"server closed the connection mid-body ({self._left} bytes of Content-Length "
                "missing)"
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

    def _feed(self, data: bytes) -> None:
        """Parse whatever arrived: head, chunk framing, body lines (the states above)."""
        pos, end = 0, len(data)
        while pos < end:
            state = self._state
            if state == _CHUNK_DATA:
                take = min(self._left, end - pos)
                self._body(data if pos == 0 and take == end else data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _CHUNK_END
            elif state == _CHUNK_SIZE:
                line, pos = self._control_line(data, pos)
                if line is None:
                    break
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size line: {line[:40]!r}") from None
                if size < 0:
                    raise ProtocolError(f"bad chunk size line: {line[:40]!r}")
                self._left = size
                self._state = _CHUNK_DATA if size else _TRAILERS
            elif state == _CHUNK_END:
                line, pos = self._control_line(data, pos)
                if line is None:
                    break
                if line:
                    raise ProtocolError("chunk data longer than its size line said")
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                line, pos = self._control_line(data, pos)
                if line is None:
                    break
                if not line:
                    self._finish()
            elif state == _LENGTH:
                take = min(self._left, end - pos)
                self._body(data if pos == 0 and take == end else data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._finish()
            elif state == _UNTIL_CLOSE:
                self._body(data if pos == 0 else data[pos:])
                pos = end
            elif state == _HEAD:
                pos = self._head_bytes(data, pos)
            else:  # _DONE: bytes after the answer: do not trust this connection again
                self.reusable = False
                self.abort()
                return
            if self._waiter is None:  # settled early (an error body long enough, a failure)
                if pos < end:
                    self.reusable = False
                    self.abort()
                return

    def _control_line(self, data: bytes, pos: int) -> tuple[bytes | None, int]:
        """The next CRLF-ended line of chunk framing and the position after it, or None."""
        found = data.find(b"\n", pos)
        if found < 0:
            self._raw += data[pos:]
            if len(self._raw) > MAX_CONTROL_LINE_BYTES:
                raise ProtocolError("chunk framing line too long")
            return None, len(data)
        if self._raw:
            self._raw += data[pos:found]
            line = bytes(self._raw)
            self._raw.clear()
        else:
            line = data[pos:found]
        return line.rstrip(b"\r"), found + 1

    def _head_bytes(self, data: bytes, pos: int) -> int:
        """Collect the response head; once complete, pick how the body is framed."""
        raw = self._raw
        searched_from = max(0, len(raw) - 3)
        raw += data[pos:]
        found = raw.find(b"\r\n\r\n", searched_from)
        _refuse_bare_lf(raw, searched_from, len(raw) if found < 0 else found + 4)
        if found < 0:
            if len(raw) > MAX_HEAD_BYTES:
                raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")
            return len(data)
        if found > MAX_HEAD_BYTES:
            raise ProtocolError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")
        rest = len(raw) - (found + 4)
        head = _parse_head(bytes(raw[:found]))
        raw.clear()
        next_pos = len(data) - rest
        if 100 <= head.status < 200:
            return next_pos  # an interim answer (100 Continue): the real head follows
        self._head = head
        self._collecting_error = head.status >= 300
        if self._on_head is not None:
            self._on_head(head)
        encoding = head.headers.get("transfer-encoding", "").lower()
        length = head.headers.get("content-length")
        if head.status in (204, 304):
            self._finish()
        elif encoding:
            # RFC 9112 §6.3: chunked must come last; any other coding runs to the close.
            chunked = encoding.rsplit(",", 1)[-1].strip() == "chunked"
            self._state = _CHUNK_SIZE if chunked else _UNTIL_CLOSE
        elif length is not None:
            if not length.strip().isdigit():
                raise ProtocolError(f"bad Content-Length: {length[:40]!r}")
            self._left = int(length)
            self._state = _LENGTH
            if not self._left:
                self._finish()
        else:
            self._state = _UNTIL_CLOSE
        if self._state == _UNTIL_CLOSE:
            head.headers["connection"] = "close"  # nothing else can end this body
        return next_pos

    def _body(self, piece: bytes) -> None:
        """Body bytes: split into lines for the callback, or kept as an error body."""
        if self._collecting_error:
            room = self._max_error_body - len(self._error_body)
            self._error_body += piece[:room]
            if len(piece) >= room:
                # Enough to show: the rest is not downloaded, so the connection goes.
                self._finish()
                self.reusable = False
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
                return  # the callback ended the exchange
        if start < len(piece):
            pending += piece[start:]
            if len(pending) > max_line:
                raise LineTooLong(f"a line longer than {max_line} bytes")


def _refuse_bare_lf(raw: bytearray, start: int, end: int) -> None:
    """A head line ended by LF alone: RFC 9112 lets a client accept it, but no HTTP/1.1 server
    sends one (Ollama's Go net/http never does), and waiting for CRLF CRLF would hang."""
    found = raw.find(b"\n", start, end)
    while found >= 0:
        if found == 0 or raw[found - 1] != 0x0D:
            raise ProtocolError("response head lines end in LF, not CRLF")
        found = raw.find(b"\n", found + 1, end)


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
