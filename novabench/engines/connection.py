"""One HTTP/1.1 connection as an asyncio Protocol: each read is stamped once, handed whole to
llhttp (through httptools), and the body is cut into lines, one call per line, stamped with their
read's arrival.

llhttp reads the framing (status line, headers, chunked, Content-Length and close-delimited
bodies) and calls back once per piece of body. Kept here: finding a head's end (for its 64 KiB
cap and the bare-LF rule), the lines and their caps, an error answer's body, and the cap on chunk
framing that carries no data; http1.py has the records, the errors and their words.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

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
    ConnectionLost,
    LineTooLong,
    ProtocolError,
    ResponseHead,
    chunked_problem,
    framing_of,
    head_problem,
    new_parser,
    refuse_bare_lf,
    status_line,
)

LineCallback = Callable[[bytes, float], None]  # (line without b"\n", arrival perf_counter)

# What the next bytes of an exchange are.
_HEAD, _BODY, _DONE = range(3)


class StaleConnection(ConnectionLost):
    """A reused keep-alive connection closed before a single byte of the answer arrived."""


class _AnswerEnded(Exception):
    """Raised in a parser callback once the exchange is settled: read no more of this connection."""


class Connection(asyncio.Protocol):
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
            kind = StaleConnection if self.uses > 1 else ConnectionLost
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
