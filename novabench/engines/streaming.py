"""What every HTTP streaming backend shares: the timeouts around one request, and how each
arriving piece of text is recorded."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import httpx

from novabench.engines import ChatRequest, TextCallback
from novabench.engines import transport as ndjson_http
from novabench.errors import RequestError
from novabench.records import RequestResult

# After the done line only the end of the body is left to read; a server that never sends it
# costs this much, not the request's whole timeout.
BODY_END_TIMEOUT_S = 1.0
# A whole JSON answer (/api/show of a large model, with its template and license, is < 1 MiB).
MAX_ANSWER_BYTES = 16 * 1024 * 1024

# Reads the body and records into the result: (request sent at, deadline, total deadline).
StreamReader = Callable[[float, asyncio.Timeout, float], Awaitable[None]]


def describe_connect_error(exc: BaseException) -> str:
    """Why a connection failed, as a user would say it (from the OS error beneath)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "host name not found"
        if isinstance(
            seen,
            httpx.ConnectTimeout | httpx.PoolTimeout | ndjson_http.ConnectTimeout | TimeoutError,
        ):
            return "connection timed out"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


# httpx reports a connection closed before or during the answer as a protocol error, with
# these words: the bytes that came were not broken HTTP.
_HTTPX_CLOSED = ("Server disconnected", "peer closed connection")


def is_broken_http(exc: BaseException) -> bool:
    """Whether the server's bytes were not HTTP/1.1 (as opposed to a connection that ended)."""
    if isinstance(exc, ndjson_http.ProtocolError):
        return True
    return isinstance(exc, httpx.RemoteProtocolError) and not str(exc).startswith(_HTTPX_CLOSED)


def describe_lost_answer(exc: BaseException, chunk_count: int) -> str:
    """Why an answer that had begun (a connection was made) did not arrive whole."""
    after = f" after {chunk_count} chunks" if chunk_count else ""
    if is_broken_http(exc):
        return f"server answered with broken HTTP{after} ({exc})"
    if chunk_count:
        return f"connection lost{after}: {exc!s}"
    if isinstance(exc, ndjson_http.ConnectionLost):
        return str(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        if str(exc).startswith(_HTTPX_CLOSED[0]):
            return "server closed the connection without an answer"
        return f"server closed the connection mid-body ({exc})"
    return f"connection lost before an answer ({describe_connect_error(exc)})"


class StreamedText:
    """The pieces of one streamed answer, recorded into its result as they arrive."""

    def __init__(
        self,
        result: RequestResult,
        on_text: TextCallback | None,
        deadline: asyncio.Timeout,
        total_by: float,
    ) -> None:
        self.result = result
        self.on_text = on_text
        self.deadline = deadline
        self.total_by = total_by
        self.content: list[str] = []
        self.thinking: list[str] = []

    def add(self, arrived: float, piece: str, thought: str) -> None:
        """A chunk that carried content and/or thinking arrived `arrived` s after the send."""
        result = self.result
        if result.ttft_s is None:
            result.ttft_s = arrived
            self.deadline.reschedule(self.total_by)  # the first-token wait is over
        result.token_offsets_s.append(arrived)
        if piece:
            self.content.append(piece)
            if self.on_text is not None:
                self.on_text(piece)
        if thought:
            self.thinking.append(thought)

    def close(self) -> None:
        """Store the text received so far (also after a failure: the partial answer is kept)."""
        self.result.response_text = "".join(self.content)
        self.result.thinking_text = "".join(self.thinking)


async def stream_guarded(
    request: ChatRequest,
    result: RequestResult,
    read: StreamReader,
    server: str,
    host: str,
    end_marker: str,
) -> None:
    """Run `read` under the request's first-token and total deadlines; record any failure.

    Never raises for a failed request. `server` and `host` name the server in a connection error
    ("Ollama"); `end_marker` names what a complete stream ends with ("a done line").
    """
    sent = time.perf_counter()
    first_by, total_by = request.deadlines(asyncio.get_running_loop().time())
    try:
        async with asyncio.timeout_at(first_by) as deadline:
            await read(sent, deadline, total_by)
    except TimeoutError:
        if result.done_reason is None:  # a stall after the end loses nothing
            result.error = request.timeout_error(result.ttft_s is not None)
    except RequestError as exc:
        result.error = str(exc)
        result.http_status = exc.http_status or result.http_status
    except (httpx.TransportError, ndjson_http.TransportError) as exc:
        if result.done_reason is not None:
            pass  # the body's end was lost after the answer ended: it is complete
        elif isinstance(exc, httpx.ConnectTimeout | ndjson_http.ConnectTimeout):
            result.error = f"{request.connect_error()} ({host})"
        elif isinstance(exc, httpx.ConnectError | ndjson_http.ConnectError):
            result.error = f"cannot reach {server} at {host} ({describe_connect_error(exc)})"
        else:
            result.error = describe_lost_answer(exc, result.chunk_count)
    finally:
        if result.e2e_s is None:  # else the arrival of the end of the answer
            result.e2e_s = time.perf_counter() - sent
        if result.error is None and result.done_reason is None:
            result.error = f"stream ended without {end_marker}"
