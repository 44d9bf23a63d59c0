"""HTTP/1.1 as the streaming transport reads it: the caps, the errors, the response head, how
llhttp is set up, and the words for what llhttp refuses.

llhttp (through httptools) says that bytes were wrong, and roughly where in the grammar, but not
which bytes: the functions at the end find them, so that an error line quotes what the server
sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import httptools

# A response head larger than this is refused (Ollama's are a few hundred bytes).
MAX_HEAD_BYTES = 64 * 1024
# Chunk framing (size lines, extensions, trailers) arriving with no data between: llhttp reads
# through it without keeping it, so only this stops a server that sends nothing else.
MAX_FRAMING_BYTES = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
DEFAULT_MAX_ERROR_BODY_BYTES = 64 * 1024
# The reads of a chunked body kept to name a bad size line (see bad_size_line).
MAX_REPLAY_BYTES = 64 * 1024
_CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

# How a body ends.
NO_BODY, CHUNKED, LENGTH, UNTIL_CLOSE = range(4)


class TransportError(Exception):
    """The connection failed or the server broke HTTP/1.1: there is no complete answer."""


class ConnectError(TransportError):
    """No connection could be made (the OS error is the __cause__)."""


class ConnectTimeout(ConnectError):
    """No connection within the connect timeout."""


class ConnectionLost(TransportError):
    """The server closed or reset the connection before its answer ended."""


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


def framing_of(head: ResponseHead) -> int:
    """How this answer's body ends (RFC 9112 §6.3), as llhttp reads it too."""
    if head.status in (204, 304):
        return NO_BODY
    encoding = head.headers.get("transfer-encoding", "")
    if encoding:
        # chunked must come last; any other coding runs to the close
        last = encoding.rsplit(",", 1)[-1].strip().lower()
        return CHUNKED if last == "chunked" else UNTIL_CLOSE
    return LENGTH if "content-length" in head.headers else UNTIL_CLOSE


def new_parser(protocol: object) -> httptools.HttpResponseParser:
    """llhttp reading responses, calling `protocol`'s on_* methods."""
    parser = httptools.HttpResponseParser(protocol)
    # Two leniencies keep what the reader before llhttp accepted. RFC 9112 §7.1.1 lets
    # whitespace come before a chunk extension's ";" (and some servers pad the size). §6.3: with
    # both Transfer-Encoding and Content-Length, the former rules; the smuggling that makes
    # llhttp refuse them needs a proxy between two parsers, and this client is the last one.
    parser.set_dangerous_leniencies(
        lenient_spaces_after_chunk_size=True, lenient_chunked_length=True
    )
    return parser


def refuse_bare_lf(raw: bytearray, start: int, end: int) -> None:
    """A head line ended by LF alone: RFC 9112 lets a client accept it, but no HTTP/1.1 server
    sends one (Ollama's Go net/http never does), and waiting for CRLF CRLF would hang."""
    # Every LF in raw[start:end] has its CR when they count the same as the CRLFs from one
    # byte earlier (a CRLF cut by `start` ends in it); two counts in C, not a loop per line.
    if raw.count(b"\n", start, end) != raw.count(b"\r\n", max(start - 1, 0), end):
        raise ProtocolError("response head lines end in LF, not CRLF")


def status_line(raw_head: bytes) -> str:
    """The first line of a head, as far as a message quotes it."""
    return raw_head.decode("latin-1").partition("\r\n")[0][:80]


def head_problem(raw_head: bytes, reason: str) -> str:
    """Why llhttp refused a complete head (`reason`), in this module's words where it has them."""
    lines = raw_head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
        return f"not an HTTP/1.x status line: {lines[0][:80]!r}"
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if line and not colon:
            return f"malformed header line: {line[:80]!r}"
        if name.strip().lower() == "content-length" and not value.strip().isdigit():
            return f"bad Content-Length: {value.strip()[:40]!r}"
    return f"malformed response head ({reason})"


def chunked_problem(reason: str, replay: list[bytes] | None) -> str:
    """Why llhttp refused a chunked body (`reason`); `replay`: its reads from a chunk's start."""
    if reason.startswith("Missing expected CR"):
        return "chunk framing lines end in LF, not CRLF"
    if "chunk size" in reason or "chunk extension" in reason:
        line = bad_size_line(replay)
        return (
            f"bad chunk size line: {line!r}"
            if line is not None
            else f"bad chunk size line ({reason})"
        )
    if "chunk data" in reason:
        return "chunk data longer than its size line said"
    return f"bad chunked framing ({reason})"


def bad_size_line(replay: list[bytes] | None) -> bytes | None:
    """The size line llhttp refused in these reads (they begin at a chunk's start), as far as
    it came; None if they were not kept or llhttp takes them."""
    if replay is None:
        return None
    sent = b"".join(replay)
    refused_at = _first_refused_byte(sent)
    if refused_at is None:
        return None
    start = sent.rfind(b"\n", 0, refused_at) + 1
    end = sent.find(b"\n", refused_at)
    return sent[start : len(sent) if end < 0 else end].rstrip(b"\r")[:40]


def _first_refused_byte(body: bytes) -> int | None:
    """Where llhttp first refuses `body` read as chunks from a chunk's start (by bisection)."""
    if not _refuses(body):
        return None
    accepted, refused = 0, len(body)  # lengths of prefixes known to pass and to fail
    while refused - accepted > 1:
        middle = (accepted + refused) // 2
        if _refuses(body[:middle]):
            refused = middle
        else:
            accepted = middle
    return refused - 1


def _refuses(body: bytes) -> bool:
    try:
        new_parser(object()).feed_data(_CHUNKED_HEAD + body)
    except (httptools.HttpParserError, httptools.HttpParserUpgrade):
        return True
    return False
