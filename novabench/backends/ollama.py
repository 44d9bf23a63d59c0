"""Ollama's native API: version, installed models, and /api/chat streamed (NDJSON) into a result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx

from novabench.backends import ChatRequest, ModelInfo, TextCallback
from novabench.backends.ndjson_http import LineTooLong, NdjsonHttpClient, ResponseHead
from novabench.backends.streaming import StreamedText, describe_connect_error, stream_guarded
from novabench.errors import HostUnreachableError, RequestError
from novabench.metrics import RequestResult

CONNECT_TIMEOUT_S = 10.0
INFO_TIMEOUT_S = 30.0
# After the done line only the end of the body is left to read; a server that never sends it
# costs this much, not the request's whole timeout.
BODY_END_TIMEOUT_S = 1.0
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

    def __init__(self, host: str, max_connections: int = 1024) -> None:
        self.host = host.rstrip("/")
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(
            base_url=self.host,
            timeout=httpx.Timeout(INFO_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            limits=limits,
            trust_env=False,  # a proxy from the environment must not sit between us and the server
        )
        # The streamed chats go through a transport of their own (ndjson_http.py: httpx's
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
        await self._client.aclose()

    async def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One non-streaming request; its JSON answer, or RequestError / HostUnreachableError.

        A GET that cannot connect means the host is unreachable; a POST that cannot connect is
        one failed request (the host answered the GETs before it).
        """
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TransportError as exc:
            if method == "GET":
                raise HostUnreachableError(self.host, describe_connect_error(exc)) from exc
            raise RequestError(f"{self.host}{path}: {describe_connect_error(exc)}") from exc
        if response.is_redirect:
            raise RequestError(
                f"{self.host}{path} answered "
                f"{_redirect_text(response.status_code, response.headers)}",
                response.status_code,
            )
        if response.status_code >= 400:
            raise RequestError(
                f"{self.host}{path} answered HTTP {response.status_code}: "
                f"{_error_text(response.text)}",
                response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise RequestError(f"{self.host}{path} did not answer JSON: {exc}") from exc

    def model_key(self, model: str) -> str:
        return canonical_name(model)

    async def version(self) -> str:
        body = await self._json("GET", "/api/version")
        return str(body.get("version", "unknown")) if isinstance(body, dict) else "unknown"

    async def list_models(self) -> dict[str, ModelInfo]:
        """Installed models by canonical name."""
        body = await self._json("GET", "/api/tags")
        models: dict[str, ModelInfo] = {}
        for entry in (body or {}).get("models") or []:
            details = entry.get("details") or {}
            name = entry.get("name") or entry.get("model") or ""
            size = entry.get("size")
            models[canonical_name(name)] = ModelInfo(
                name=name,
                digest=entry.get("digest") or None,
                size_bytes=size if isinstance(size, int) else None,
                family=details.get("family") or None,
                parameter_size=details.get("parameter_size") or None,
                quantization=details.get("quantization_level") or None,
                details=details,
            )
        return models

    async def show(self, model: str) -> dict[str, Any]:
        """What /api/show says of a model: details, parameters, capabilities, context length."""
        body = await self._json("POST", "/api/show", {"model": model})
        body = body if isinstance(body, dict) else {}
        info = body.get("model_info") or {}
        context = next(
            (v for k, v in info.items() if k.endswith(".context_length") and isinstance(v, int)),
            None,
        )
        return {
            "details": body.get("details") or {},
            "parameters": body.get("parameters") or "",
            "capabilities": body.get("capabilities") or [],
            "context_length": context,
            "architecture": info.get("general.architecture"),
            "parameter_count": info.get("general.parameter_count"),
        }

    async def loaded_models(self) -> dict[str, dict[str, Any]]:
        """/api/ps: loaded models by canonical name, with `size` and `size_vram` in bytes."""
        body = await self._json("GET", "/api/ps")
        return {
            canonical_name(entry.get("name") or entry.get("model") or ""): entry
            for entry in (body or {}).get("models") or []
        }

    async def unload(self, model: str) -> None:
        """Unload a model now: an empty generate request with keep_alive 0 (ollama-api.md §1.6)."""
        await self._json("POST", "/api/generate", {"model": model, "keep_alive": 0})

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
            "Ollama",
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
    """The request body as httpx would send it: compact UTF-8 JSON."""
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
