"""A lean HTTP/1.1 client for the hot path: POST a JSON body, hand each line of the answer to a
callback from the protocol's data_received, stamped with its arrival time. The calls around the
chat (version, model lists) use it too, reading the whole answer (`fetch`), so that one reader
with one set of limits and wording judges every answer of a host.

Why not httpx here: its per-token path (httpcore → h11 → an async iterator per chunk) costs
15–27 µs of CPU and a coroutine switch per streamed line, and 1.5–2 ms per request start. At a
few hundred concurrent streams that saturates the client's core and every token is read late.
This module does one exchange shape only (request body known up front, answer read as lines), so
it can do it with one Future per request and a plain function call per line.

Here: the requests' bytes, the pool of kept connections, connecting, and the two exchange shapes.
connection.py reads one answer (llhttp does the framing); http1.py has the records and errors.

Plain http:// and https:// (stdlib ssl, the system's trust store); no proxies, no redirects
followed, no compression asked for.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from novabench.engines.connection import Connection, LineCallback, StaleConnection
from novabench.engines.http1 import (
    DEFAULT_MAX_ERROR_BODY_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    MAX_HEAD_BYTES,
    AnswerTimeout,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    LineTooLong,
    ProtocolError,
    ResponseHead,
    TransportError,
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
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()
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
            except StaleConnection:
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
            except StaleConnection:
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

    def _idle_connection(self) -> Connection | None:
        while self._idle:
            connection = self._idle.pop()  # the most recently used: least likely timed out
            if not connection.closed and not connection.transport_closing():
                return connection
            self._open.discard(connection)
        return None

    async def _exchange(
        self,
        connection: Connection,
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

    async def _connect(self, timeout_s: float) -> Connection:
        """A new connection, trying each address of the host in turn (the first error wins)."""
        loop = asyncio.get_running_loop()
        first_error: OSError | None = None
        try:
            async with asyncio.timeout(timeout_s):
                infos = await loop.getaddrinfo(self.hostname, self.port, type=socket.SOCK_STREAM)
                for family, _, _, _, address in infos:
                    try:
                        _, connection = await loop.create_connection(
                            Connection,
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
