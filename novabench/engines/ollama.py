"""Ollama's native API: version, installed models, and /api/chat streamed (NDJSON) into a result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from novabench.engines import CallLimits, ChatRequest, ModelInfo, TextCallback
from novabench.engines import answers as schema
from novabench.engines.streaming import (
    BODY_END_TIMEOUT_S,
    MAX_ANSWER_BYTES,
    StreamedText,
    describe_connect_error,
    describe_lost_answer,
    stream_guarded,
)
from novabench.engines.transport import (
    AnswerTimeout,
    ConnectError,
    ConnectTimeout,
    LineTooLong,
    NdjsonHttpClient,
    ResponseHead,
    TransportError,
)
from novabench.errors import HostUnreachableError, RequestError, ServerAnswerError
from novabench.records import RequestResult
from novabench.text import terminal_safe

SERVER_NAME = "Ollama"
# One NDJSON line longer than this is refused: Ollama's lines are a few hundred bytes, and a
# server that never sends a newline must not make novabench buffer without end.
MAX_LINE_BYTES = 1024 * 1024
# The part of an error body that is read (and shown shortened); the rest is not downloaded.
MAX_ERROR_BODY_BYTES = 64 * 1024
# Server fields copied as they are; Ollama omits any that are zero (ollama-api.md §0).
SERVER_FIELDS = {
    "prompt_eval_count": "prompt_eval_count",
    "prompt_eval_duration": "prompt_eval_duration_ns",
    "eval_count": "eval_count",
    "eval_duration": "eval_duration_ns",
    "load_duration": "load_duration_ns",
    "total_duration": "total_duration_ns",
}


def canonical_name(name: str) -> str:
    """How Ollama matches model names: case-insensitive, with an implicit ':latest' tag."""
    name = name.strip().lower()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


class OllamaBackend:
    """A client for one Ollama host."""

    kind = "ollama"

    def __init__(
        self, host: str, max_connections: int = 1024, limits: CallLimits | None = None
    ) -> None:
        self.host = host.rstrip("/")
        self.limits = limits or CallLimits()
        # Chats and the calls around them share one lean transport (transport.py: httpx's
        # per-token CPU cost saturates the client at a few hundred streams). Idle connections
        # never outnumber the streams once in flight; closing any would put a handshake into a
        # later request's TTFT.
        self._stream = NdjsonHttpClient(
            self.host,
            max_idle_connections=max_connections,
            max_line_bytes=MAX_LINE_BYTES,
            max_error_body_bytes=MAX_ERROR_BODY_BYTES,
        )

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        """One call around the chat: the body of its 2xx answer, or why there is none.

        A GET that cannot connect means the host is unreachable (HostUnreachableError); a POST
        that cannot connect is one failed request (RequestError: the host answered the GETs
        before it). Any other failure is a ServerAnswerError naming the URL.
        """
        url = f"{self.host}{path}"
        limits = self.limits
        try:
            head, answer = await self._stream.fetch(
                method,
                path,
                None if body is None else _json_bytes(body),
                connect_timeout_s=limits.connect_s,
                timeout_s=limits.total_s,
                max_body_bytes=MAX_ANSWER_BYTES,
            )
        except ConnectError as exc:
            reason = (
                limits.no_connection()
                if isinstance(exc, ConnectTimeout)
                else describe_connect_error(exc)
            )
            if method == "GET":
                raise HostUnreachableError(self.host, reason) from exc
            raise RequestError(f"{url}: {reason}") from exc
        except AnswerTimeout as exc:
            raise ServerAnswerError(f"{url}: {limits.no_answer(exc.got_head)}") from None
        except TransportError as exc:
            raise ServerAnswerError(f"{url}: {describe_lost_answer(exc, 0)}") from exc
        except LineTooLong:
            limit_mib = MAX_ANSWER_BYTES // (1024 * 1024)
            raise ServerAnswerError(f"{url}: an answer longer than {limit_mib} MiB") from None
        # The server's words go into an Error: line as they are: made safe for a terminal.
        if 300 <= head.status < 400:
            redirect = terminal_safe(_redirect_text(head.status, head.headers))
            raise ServerAnswerError(f"{url} answered {redirect}", head.status)
        if head.status >= 400:
            text = terminal_safe(_error_text(head.error_body.decode("utf-8", "replace")))
            raise ServerAnswerError(f"{url} answered HTTP {head.status}: {text}", head.status)
        return answer

    async def _answer(
        self, answer: type[schema.Schema], method: str, path: str, body: dict[str, Any] | None
    ) -> schema.Schema:
        raw = await self._call(method, path, body)
        return schema.parse_answer(answer, raw, f"{self.host}{path}", SERVER_NAME)

    def model_key(self, model: str) -> str:
        return canonical_name(model)

    async def version(self) -> str:
        answer = await self._answer(schema.VersionAnswer, "GET", "/api/version", None)
        return answer.version

    async def list_models(self) -> dict[str, ModelInfo]:
        """Installed models by canonical name."""
        answer = await self._answer(schema.TagsAnswer, "GET", "/api/tags", None)
        models: dict[str, ModelInfo] = {}
        for entry in answer.models or []:
            details = entry.details or schema.ModelDetails()
            models[canonical_name(entry.installed_name)] = ModelInfo(
                name=entry.installed_name,
                digest=entry.digest or None,
                size_bytes=entry.size,
                family=details.family or None,
                parameter_size=details.parameter_size or None,
                quantization=details.quantization_level or None,
                details=details.model_dump(exclude_none=True),
            )
        return models

    async def show(self, model: str) -> dict[str, Any]:
        """What /api/show says of a model: details, parameters, capabilities, context length."""
        answer = await self._answer(schema.ShowAnswer, "POST", "/api/show", {"model": model})
        url = f"{self.host}/api/show"
        info = answer.model_info or {}
        facts = schema.validated(schema.ModelInfoFacts, info, url, SERVER_NAME, ("model_info",))
        details = answer.details or schema.ModelDetails()
        return {
            "details": details.model_dump(exclude_none=True),
            "parameters": answer.parameters or "",
            "capabilities": answer.capabilities or [],
            "context_length": schema.context_length(info, facts.architecture, url, SERVER_NAME),
            "architecture": facts.architecture,
            "parameter_count": facts.parameter_count,
        }

    async def loaded_models(self) -> dict[str, dict[str, Any]]:
        """/api/ps: loaded models by canonical name, with `size` and `size_vram` in bytes."""
        answer = await self._answer(schema.PsAnswer, "GET", "/api/ps", None)
        return {
            canonical_name(entry.installed_name): {"size": entry.size, "size_vram": entry.size_vram}
            for entry in answer.models or []
        }

    async def unload(self, model: str) -> None:
        """Unload a model now: an empty generate request with keep_alive 0 (ollama-api.md §1.6)."""
        await self._call("POST", "/api/generate", {"model": model, "keep_alive": 0})

    async def chat(
        self, request: ChatRequest, result: RequestResult, on_text: TextCallback | None = None
    ) -> None:
        """Stream one /api/chat request, recording timings and server fields into `result`.

        Never raises for a failed request: the failure is recorded in `result.error`.
        """
        body: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "stream": True,
        }
        if request.options:
            body["options"] = request.options
        if request.keep_alive is not None:
            body["keep_alive"] = request.keep_alive
        await stream_guarded(
            request,
            result,
            lambda sent, deadline, total_by: self._stream_chat(
                body, request, result, sent, on_text, deadline, total_by
            ),
            SERVER_NAME,
            self.host,
            "a done line",
        )

    async def _stream_chat(
        self,
        body: dict[str, Any],
        request: ChatRequest,
        result: RequestResult,
        sent: float,
        on_text: TextCallback | None,
        deadline: asyncio.Timeout,
        total_by: float,
    ) -> None:
        text = StreamedText(result, on_text, deadline, total_by)

        def on_head(head: ResponseHead) -> None:
            result.http_status = head.status

        try:
            head = await self._stream.post_lines(
                "/api/chat",
                _json_bytes(body),
                _ChatLines(result, text, sent, deadline),
                connect_timeout_s=min(request.connect_timeout_s, request.timeout_s),
                on_head=on_head,
            )
        except LineTooLong:
            raise RequestError(_TOO_LONG) from None
        finally:
            text.close()
        if 300 <= head.status < 400:
            raise RequestError(_redirect_text(head.status, head.headers), head.status)
        if head.status >= 400:
            raise RequestError(
                self._http_error(
                    request.model, head.status, head.error_body.decode("utf-8", "replace")
                ),
                head.status,
            )

    def _http_error(self, model: str, status: int, text: str) -> str:
        if status == 404 and "not found" in text:
            return f"model {model!r} not found on {self.host}"
        return f"HTTP {status}: {_error_text(text)}"


_TOO_LONG = f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB from server"


def _malformed(line: bytes) -> str:
    return f"malformed line from server: {line[:80].decode('utf-8', 'replace')!r}"


def _redirect_text(status: int, headers: Mapping[str, str]) -> str:
    location = headers.get("location", "(no Location header)")
    return f"HTTP {status}: redirected to {location} (novabench does not follow redirects)"


def _json_bytes(body: dict[str, Any]) -> bytes:
    """A request body as compact UTF-8 JSON."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class _ChatLines:
    """Records each /api/chat NDJSON line into the result, called from the transport's
    data_received (no coroutine switch per token)."""

    def __init__(
        self, result: RequestResult, text: StreamedText, sent: float, deadline: asyncio.Timeout
    ) -> None:
        self.result = result
        self.text = text
        self.sent = sent
        self.deadline = deadline

    def __call__(self, line: bytes, arrived_at: float) -> None:
        result = self.result
        # After `done`, the rest of the body (normally just the chunked terminator) is read
        # without looking, so that the connection is reused: a new one costs a handshake in
        # the next request's TTFT.
        if result.done_reason is not None or not line.strip():
            return
        arrived = arrived_at - self.sent
        result.chunk_count += 1
        result.response_bytes += len(line)
        try:
            chunk = json.loads(line)
        except ValueError:
            raise RequestError(_malformed(line)) from None
        if not isinstance(chunk, dict):
            raise RequestError(_malformed(line))
        if chunk.get("error"):
            raise RequestError(f"server error mid-stream: {chunk['error']}")
        message = chunk.get("message") or {}
        if not isinstance(message, dict):
            raise RequestError(_malformed(line))
        piece = message.get("content") or ""
        thought = message.get("thinking") or ""
        if piece or thought:
            if not isinstance(piece, str) or not isinstance(thought, str):
                raise RequestError(_malformed(line))
            self.text.add(arrived, piece, thought)
        if chunk.get("done"):
            result.e2e_s = arrived
            end_by = asyncio.get_running_loop().time() + BODY_END_TIMEOUT_S
            when = self.deadline.when()
            if when is None or when > end_by:
                self.deadline.reschedule(end_by)
            done_reason = chunk.get("done_reason")
            result.done_reason = done_reason if isinstance(done_reason, str) else ""
            for wire, name in SERVER_FIELDS.items():
                value = chunk.get(wire)
                if value is not None:
                    # As sent: metrics.make_storable names a value the database cannot hold.
                    setattr(result, name, value)


def _error_text(text: str) -> str:
    """The message of an Ollama error body, or the raw text shortened."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    text = text.strip()
    return (text[:200] + "…") if len(text) > 200 else (text or "(empty body)")
