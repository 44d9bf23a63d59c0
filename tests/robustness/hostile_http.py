"""A hostile HTTP server for tests: a raw TCP server on loopback that answers each request path
with exactly the bytes a test gives it (or never answers, or closes the connection).

Not an Ollama double: it knows nothing of the API, so a test can send what no real server
would (a malformed head, broken chunking, a head over 64 KiB, JSON of the wrong shape). It runs
in a thread with its own event loop, so synchronous tests (CliRunner, run_suite) can use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import dataclass
from typing import Any

_REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}
_MAX_REQUEST_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What the server does with a request: send `raw` (None: nothing), then close or hold."""

    raw: bytes | None
    close: bool = True  # False: keep the connection open (and silent) until the server stops


NEVER = Answer(None, close=False)  # accept the request, then never answer
CLOSE = Answer(None, close=True)  # read the request, then close without a byte


def response(
    body: bytes | str,
    status: int = 200,
    content_type: str = "application/json; charset=utf-8",
    extra_headers: str = "",
) -> bytes:
    """A well-formed HTTP/1.1 response with a Content-Length body (`connection: close`)."""
    payload = body.encode() if isinstance(body, str) else body
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'X')}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n{extra_headers}\r\n"
    ).encode() + payload


def json_response(value: Any, status: int = 200) -> bytes:
    """A well-formed response whose body is `value` as JSON (whatever its shape)."""
    return response(json.dumps(value), status)


def chunked(head: str, *chunks: bytes) -> bytes:
    """A chunked response: `head` (lines without CRLF endings) then each chunk, as given.

    A chunk is sent verbatim: a test puts in it the size line and CRLFs it wants, right or wrong.
    """
    lines = "".join(f"{line}\r\n" for line in head.splitlines())
    return (lines + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(chunks)


class HostileHTTP:
    """Answers each path with the Answer a test set for it; an unset path gets a 404."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) as they arrived
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._held: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, path: str, raw: bytes | Answer) -> None:
        """Answer `path` with these exact bytes (then close), or with an Answer (NEVER, CLOSE)."""
        self.answers[path] = raw if isinstance(raw, Answer) else Answer(raw)

    def paths_asked(self) -> list[str]:
        return [path for _, path in self.requests]

    def __enter__(self) -> HostileHTTP:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10) or not self.port:
            raise RuntimeError("the hostile HTTP server did not start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _main(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        finally:
            ready.set()
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for writer in list(self._held):
                writer.transport.abort()
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                answer = self.answers.get(request[1]) or Answer(response("404 page not found", 404))
                if answer.raw is not None:
                    writer.write(answer.raw)
                    await writer.drain()
                if not answer.close:
                    self._held.add(writer)  # silent until the client gives up or the server stops
                    await reader.read()  # returns at the client's close
                    self._held.discard(writer)
                break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
    """(method, path) of the next request, its body read and dropped; None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    if len(head) > _MAX_REQUEST_HEAD_BYTES:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    if length:
        await reader.readexactly(length)
    return method, path.split("?", 1)[0]
