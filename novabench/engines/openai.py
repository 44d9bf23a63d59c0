"""Any OpenAI-compatible server (llama-server, vLLM, LM Studio, Ollama's /v1): /v1/models and
/v1/chat/completions streamed (SSE) into a result.

The API has no server timings, so a result carries token counts (from `usage`) but no
durations: tokens/s is the client figure. Where it has no `usage` either (a server without
`stream_options.include_usage`), the count falls back to the content chunks seen.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

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
from novabench.errors import HostUnreachableError, RequestError, ServerAnswerError
from novabench.records import RequestResult
from novabench.text import terminal_safe

# Suite options (Ollama names) that the OpenAI chat API has, and their names there. The others
# (num_ctx, top_k, repeat_penalty, ...) have no OpenAI equivalent and are not sent.
OPENAI_OPTIONS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
SERVER_NAME = "an OpenAI-compatible server"
DONE = "[DONE]"
# The redaction an API key gets wherever a server echoes it (an error message).
KEY_REDACTED = "[api key]"


def api_base(host: str) -> str:
    """The server root of a suite host: 'http://h:8080/v1' and 'http://h:8080' both name it."""
    base = host.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def request_body(request: ChatRequest) -> dict[str, Any]:
    """The /v1/chat/completions body of a request: streamed, with usage, options renamed."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    for name, value in request.options.items():
        wire = OPENAI_OPTIONS.get(name)
        if wire is None or value is None:
            continue
        if wire == "max_tokens" and (not isinstance(value, int) or value <= 0):
            continue  # Ollama's -1 (no limit) and -2 (fill the context) are OpenAI's default
        body[wire] = value
    return body


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each server-sent event, from the body's lines (the WHATWG EventSource rules).

    `data:` lines of one event are joined with newlines; a blank line ends the event; lines
    starting with ':' are comments; other fields (event, id, retry) are ignored. An event the
    body ends in the middle of is still given (a server may omit the last blank line).
    """
    data: list[str] | None = None
    async for line in lines:
        if not line:
            if data is not None:
                yield "\n".join(data)
            data = None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data = [*(data or []), value]
    if data is not None:
        yield "\n".join(data)


class OpenAIBackend:
    """A client for one OpenAI-compatible server."""

    kind = "openai"

    def __init__(
        self,
        host: str,
        max_connections: int = 1024,
        api_key: str | None = None,
        limits: CallLimits | None = None,
    ) -> None:
        self.host = host.rstrip("/")
        self.limits = limits or CallLimits()
        self._api_key = api_key or None
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        pool = httpx.Limits(max_connections=max_connections, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(
            base_url=api_base(self.host),
            headers=headers,
            timeout=httpx.Timeout(self.limits.total_s, connect=self.limits.connect_s),
            limits=pool,
            trust_env=False,  # a proxy from the environment must not sit between us and the server
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def _models_url(self) -> str:
        return f"{api_base(self.host)}/v1/models"

    def _redact(self, text: str) -> str:
        """`text` with the API key taken out: a server may echo it in an error."""
        return text.replace(self._api_key, KEY_REDACTED) if self._api_key else text

    async def _get_models(self) -> tuple[bytes, str]:
        """GET /v1/models: its body and Server header. HostUnreachableError if nothing answers,
        else ServerAnswerError when the answer is not a 2xx one read whole in time."""
        url = self._models_url
        progress: set[str] = set()

        async def trace(event: str, info: dict[str, Any]) -> None:
            progress.add(event)

        limits = self.limits
        try:
            async with asyncio.timeout(limits.total_s):
                status, body, server = await self._read_models(trace)
        except (TimeoutError, httpx.TimeoutException) as exc:
            if "http11.send_request_headers.started" not in progress:
                raise self._unreachable(limits.no_connection()) from exc
            got_head = "http11.receive_response_headers.complete" in progress
            raise ServerAnswerError(f"{url}: {limits.no_answer(got_head)}") from None
        except httpx.ConnectError as exc:
            raise self._unreachable(describe_connect_error(exc)) from exc
        except httpx.TransportError as exc:
            raise ServerAnswerError(f"{url}: {describe_lost_answer(exc, 0)}") from exc
        if status >= 400:
            text = terminal_safe(self._redact(error_text(body.decode("utf-8", "replace"))))
            hint = " (check the API key: the suite's api_key_env)" if status in (401, 403) else ""
            raise ServerAnswerError(f"{url} answered HTTP {status}: {text}{hint}", status)
        if status >= 300:
            raise ServerAnswerError(f"{url} answered HTTP {status} (a redirect, not followed)")
        return body, server

    async def _read_models(self, trace: Any) -> tuple[int, bytes, str]:
        """(status, body, Server header) of /v1/models; a body past MAX_ANSWER_BYTES is refused."""
        async with self._client.stream(
            "GET", "/v1/models", extensions={"trace": trace}
        ) as response:
            body = bytearray()
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > MAX_ANSWER_BYTES:
                    limit_mib = MAX_ANSWER_BYTES // (1024 * 1024)
                    raise ServerAnswerError(
                        f"{self._models_url}: an answer longer than {limit_mib} MiB"
                    )
            server = terminal_safe(response.headers.get("server", "").strip())
            return response.status_code, bytes(body), server

    def _unreachable(self, reason: str) -> HostUnreachableError:
        return HostUnreachableError(
            self.host, reason, server=SERVER_NAME, hint="start it or fix the suite's host"
        )

    def model_key(self, model: str) -> str:
        return model

    async def version(self) -> str:
        """No standard endpoint says it: the `Server` header of /v1/models, if it has one."""
        _, server = await self._get_models()
        return f"{server} (openai-compatible)" if server else "openai-compatible"

    async def list_models(self) -> dict[str, ModelInfo]:
        """The models of /v1/models by exact id.

        Ollama lists `llama3.2:latest` where a suite says `llama3.2`: an id ending in ':latest'
        is also listed without it (unless another model has that exact id).
        """
        body, _ = await self._get_models()
        answer = schema.parse_answer(schema.OpenAIModels, body, self._models_url, SERVER_NAME)
        models = {entry.id: ModelInfo(name=entry.id) for entry in answer.data or []}
        for model_id, info in list(models.items()):
            if model_id.endswith(":latest"):
                models.setdefault(model_id.removesuffix(":latest"), info)
        return models

    async def show(self, model: str) -> None:
        return None  # the API describes a model by its id alone

    async def loaded_models(self) -> dict[str, dict[str, Any]]:
        return {}

    async def unload(self, model: str) -> None:
        raise RequestError("the openai backend cannot unload a model")

    async def chat(
        self, request: ChatRequest, result: RequestResult, on_text: TextCallback | None = None
    ) -> None:
        """Stream one /v1/chat/completions request, recording timings and usage into `result`.

        Never raises for a failed request: the failure is recorded in `result.error`.
        """
        result.backend = self.kind
        body = request_body(request)
        await stream_guarded(
            request,
            result,
            lambda sent, deadline, total_by: self._stream_chat(
                body, request, result, sent, on_text, deadline, total_by
            ),
            SERVER_NAME,
            self.host,
            "[DONE]",
        )
        if result.error is not None:
            result.error = self._redact(result.error)

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
        finish_reason: str | None = None
        try:
            async with self._client.stream(
                "POST", "/v1/chat/completions", json=body, timeout=timeout
            ) as response:
                result.http_status = response.status_code
                if response.status_code >= 400:
                    await response.aread()
                    raise RequestError(
                        self._http_error(request.model, response), response.status_code
                    )
                async for data in sse_events(response.aiter_lines()):
                    arrived = time.perf_counter() - sent
                    # After [DONE], read on to the end of the body without looking, so that
                    # the connection is reused (see the Ollama backend).
                    if result.done_reason is not None:
                        continue
                    if data.strip() == DONE:
                        result.e2e_s = arrived
                        end_by = asyncio.get_running_loop().time() + BODY_END_TIMEOUT_S
                        when = deadline.when()
                        if when is None or when > end_by:
                            deadline.reschedule(end_by)
                        result.done_reason = finish_reason or ""
                        continue
                    result.chunk_count += 1
                    result.response_bytes += len(data.encode())
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise RequestError(
                            f"malformed SSE data from server: {data[:80]!r}"
                        ) from None
                    if not isinstance(chunk, dict):
                        raise RequestError(f"malformed SSE data from server: {data[:80]!r}")
                    if chunk.get("error"):
                        raise RequestError(f"server error mid-stream: {_message(chunk['error'])}")
                    choices = chunk.get("choices") or []
                    choice = choices[0] if isinstance(choices, list) and choices else {}
                    choice = choice if isinstance(choice, dict) else {}
                    delta = choice.get("delta") or {}
                    delta = delta if isinstance(delta, dict) else {}
                    piece = _text(delta.get("content"))
                    thought = _text(delta.get("reasoning")) or _text(delta.get("reasoning_content"))
                    if piece or thought:
                        text.add(arrived, piece, thought)
                    # Both finish forms: an empty-delta finish chunk (Ollama >= 0.32.6, OpenAI)
                    # or finish_reason on the last content chunk (older servers).
                    if isinstance(choice.get("finish_reason"), str):
                        finish_reason = choice["finish_reason"]
                    usage = chunk.get("usage")
                    if isinstance(usage, dict):
                        for wire, name in (
                            ("prompt_tokens", "prompt_eval_count"),
                            ("completion_tokens", "eval_count"),
                        ):
                            value = usage.get(wire)
                            if isinstance(value, int) and not isinstance(value, bool):
                                setattr(result, name, value)
        finally:
            text.close()

    def _http_error(self, model: str, response: httpx.Response) -> str:
        message = error_text(response.text)
        if response.status_code == 404 and (
            "not found" in message.lower() or "does not exist" in message.lower()
        ):
            return f"model {model!r} not found on {self.host}"
        return f"HTTP {response.status_code}: {message}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _message(error: Any) -> str:
    """The message of an OpenAI error object (or of an error given as a bare value)."""
    if isinstance(error, dict):
        message = error.get("message")
        return str(message) if message else json.dumps(error)[:200]
    return str(error)


def error_text(text: str) -> str:
    """The message of an error body (OpenAI's {"error": {"message"}} and common variants)."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "message", "detail"):
            value = body.get(key)
            if isinstance(value, dict | str) and value:
                return _message(value)
    text = text.strip()
    return (text[:200] + "…") if len(text) > 200 else (text or "(empty body)")
