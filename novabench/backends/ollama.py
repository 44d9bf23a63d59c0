"""Ollama's native API: version, installed models, and /api/chat streamed (NDJSON) into a result."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import httpx

from novabench.backends import ChatRequest, ModelInfo, TextCallback
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

    async def aclose(self) -> None:
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
                f"{self.host}{path} answered {_redirect_text(response)}", response.status_code
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
        timeout = httpx.Timeout(
            request.timeout_s, connect=min(request.connect_timeout_s, request.timeout_s)
        )
        text = StreamedText(result, on_text, deadline, total_by)
        try:
            async with self._client.stream(
                "POST", "/api/chat", json=body, timeout=timeout
            ) as response:
                result.http_status = response.status_code
                if response.is_redirect:
                    raise RequestError(_redirect_text(response), response.status_code)
                if response.status_code >= 400:
                    error_body = await _read_error_body(response)
                    raise RequestError(
                        self._http_error(request.model, response.status_code, error_body),
                        response.status_code,
                    )
                # Lines are split here, not by aiter_lines(), so that one line is capped at
                # MAX_LINE_BYTES (aiter_lines buffers a line whole, however long it grows).
                pending = b""
                async for data in response.aiter_bytes():
                    if pending:
                        data = pending + data
                    lines = data.split(b"\n")
                    pending = lines.pop()
                    if len(pending) > MAX_LINE_BYTES:
                        raise RequestError(_TOO_LONG)
                    for line in lines:
                        arrived = time.perf_counter() - sent
                        # After `done`, read on to the end of the body (the chunked terminator,
                        # normally in the same packet) without looking: httpcore reuses a
                        # connection only once its response was read to the end, and stopping
                        # at `done` cost a new TCP connection, so a handshake, in every
                        # request's TTFT.
                        if result.done_reason is not None or not line.strip():
                            continue
                        if len(line) > MAX_LINE_BYTES:
                            raise RequestError(_TOO_LONG)
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
                            text.add(arrived, piece, thought)
                        if chunk.get("done"):
                            result.e2e_s = arrived
                            end_by = asyncio.get_running_loop().time() + BODY_END_TIMEOUT_S
                            when = deadline.when()
                            if when is None or when > end_by:
                                deadline.reschedule(end_by)
                            done_reason = chunk.get("done_reason")
                            result.done_reason = done_reason if isinstance(done_reason, str) else ""
                            for wire, name in SERVER_FIELDS.items():
                                value = chunk.get(wire)
                                if isinstance(value, int | float) and math.isfinite(value):
                                    setattr(result, name, int(value))
                if pending.strip() and result.done_reason is None:
                    raise RequestError(_malformed(pending))
        finally:
            text.close()

    def _http_error(self, model: str, status: int, text: str) -> str:
        if status == 404 and "not found" in text:
            return f"model {model!r} not found on {self.host}"
        return f"HTTP {status}: {_error_text(text)}"


_TOO_LONG = f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB from server"


def _malformed(line: bytes) -> str:
    return f"malformed line from server: {line[:80].decode('utf-8', 'replace')!r}"


def _redirect_text(response: httpx.Response) -> str:
    location = response.headers.get("location", "(no Location header)")
    return (
        f"HTTP {response.status_code}: redirected to {location} "
        "(novabench does not follow redirects)"
    )


async def _read_error_body(response: httpx.Response) -> str:
    """The start of an error response's body (at most MAX_ERROR_BODY_BYTES are read)."""
    received = b""
    async for data in response.aiter_bytes():
        received += data
        if len(received) >= MAX_ERROR_BODY_BYTES:
            break
    return received[:MAX_ERROR_BODY_BYTES].decode("utf-8", "replace")


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
