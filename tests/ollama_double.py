"""A protocol-faithful Ollama server double on loopback, for novabench tests and demos.

It follows /work/shared/ollama-api.md: NDJSON streaming over chunked HTTP/1.1 with keep-alive,
metrics that are the times the double really slept, cold/warm loads, a per-model parallel-slot
semaphore, a bounded load queue, keep_alive, injected faults, and the OpenAI-compatible /v1 SSE.

    with OllamaDouble(models=[FakeModel("llama3.2")]) as double:
        httpx.post(f"{double.url}/api/chat", json={...})

Run standalone: python -m tests.ollama_double --port 11434 --models llama3.2,nemotron-mini
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

__all__ = ["QUEUE_FULL_MESSAGE", "FakeModel", "Fault", "OllamaDouble", "RecordedRequest"]

logger = logging.getLogger(__name__)

QUEUE_FULL_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
DEFAULT_FAULT_MESSAGE = "an error was encountered while running the model"

# A warm runner is handed back after a little scheduler bookkeeping; real servers show 1-50 ms.
_WARM_LOAD_S = 0.001
# Chat templates wrap each message in role headers, and the prompt in BOS plus an assistant header.
_TEMPLATE_TOKENS_PER_MESSAGE = 4
_TEMPLATE_TOKENS_PER_PROMPT = 4
_PROMPT_CACHE_ENTRIES = 4
# Negative keep_alive means "forever": Go's max Duration, which /api/ps shows as about year 2318.
_FOREVER_S = 292 * 365.25 * 24 * 3600.0
_EMBEDDING_DIMENSIONS = 16

_TOKEN_RE = re.compile(r"\s*\S+")
_NDJSON = "application/x-ndjson"
_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_SSE = "text/event-stream"

_INT_OPTIONS = frozenset(
    {
        "num_predict",
        "num_ctx",
        "seed",
        "top_k",
        "num_keep",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "repeat_last_n",
        "draft_num_predict",
    }
)
_FLOAT_OPTIONS = frozenset(
    {
        "temperature",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)
_THINK_LEVELS = ("high", "medium", "low", "max")
_REASONING_EFFORTS = {
    "none": False,
    "minimal": True,
    "low": True,
    "medium": True,
    "high": True,
    "max": True,
    "xhigh": True,
    "ultra": True,
}
_STREAM_FAULTS = frozenset({"error_line", "cut", "malformed", "stall", "huge_line", "endless"})


# --------------------------------------------------------------------------------------------
# Public configuration objects


@dataclass
class FakeModel:
    """One installed model: what it replies, how fast, and what /api/tags and /api/show say."""

    name: str
    reply: str | Callable[[str], str] = "I am fine, thank you."
    thinking: str = ""
    load_s: float = 0.05
    prompt_token_s: float = 0.0005
    ttft_s: float = 0.01
    token_interval_s: float = 0.002
    # 0: the reply streams one word per token; n: in pieces of n characters, so that a reply of
    # megabytes takes a few dozen lines rather than a hundred thousand.
    reply_chunk_chars: int = 0
    # Continuous batching (ollama-api.md §2.4): each other generation running at the same time
    # stretches this one's token interval by this fraction, so per-stream tokens/s drops and the
    # aggregate grows less than linearly. 0: slots are independent; 1: compute-bound, the
    # aggregate does not grow at all.
    batch_slowdown: float = 0.0
    size_bytes: int = 2_019_393_189
    digest: str = ""
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization_level: str = "Q4_K_M"
    context_length: int = 131072
    size_vram: int | None = None
    capabilities: list[str] = field(default_factory=lambda: ["completion"])

    def __post_init__(self) -> None:
        if not self.digest:
            self.digest = hashlib.sha256(self.installed_name.encode()).hexdigest()

    @property
    def installed_name(self) -> str:
        """The name as /api/tags lists it, always with a tag (`llama3.2:latest`)."""
        return _with_tag(self.name)

    @property
    def all_capabilities(self) -> list[str]:
        """Declared capabilities, plus `thinking` when the model has thinking text."""
        if self.thinking and "thinking" not in self.capabilities:
            return [*self.capabilities, "thinking"]
        return list(self.capabilities)

    def reply_text(self, user_text: str) -> str:
        """The assistant reply to the last user message."""
        return self.reply(user_text) if callable(self.reply) else self.reply


@dataclass(frozen=True)
class Fault:
    """A failure injected into the next generating request to one model (OllamaDouble.add_fault)."""

    kind: str
    after_tokens: int = 0
    status: int = 0
    body: dict[str, Any] | str | None = None
    message: str = ""
    line: bytes = b""
    seconds: float = 0.0
    clean: bool = False
    size: int = 0
    location: str = ""

    @classmethod
    def http_status(cls, status: int, body: dict[str, Any] | str | None = None) -> Fault:
        """Answer with this status before any stream: a dict is sent as JSON, a str as raw text."""
        return cls("http_status", status=status, body=body)

    @classmethod
    def error_line(cls, after_tokens: int, message: str = DEFAULT_FAULT_MESSAGE) -> Fault:
        """A 200 stream of `after_tokens` chunks, then `{"error": message}` and no done line."""
        return cls("error_line", after_tokens=after_tokens, message=message)

    @classmethod
    def cut(cls, after_tokens: int, *, clean: bool = False) -> Fault:
        """The stream stops after `after_tokens` chunks with no done line.

        By default the connection is closed mid-body (an incomplete chunked read for the client);
        with clean=True the chunked body is terminated properly, so the client sees a plain EOF.
        """
        return cls("cut", after_tokens=after_tokens, clean=clean)

    @classmethod
    def malformed(cls, after_tokens: int, line: bytes = b"{not json") -> Fault:
        """A line that is not JSON after `after_tokens` chunks; the stream then goes on to done."""
        return cls("malformed", after_tokens=after_tokens, line=line)

    @classmethod
    def stall(cls, after_tokens: int, seconds: float) -> Fault:
        """Pause `seconds` after `after_tokens` chunks (it counts in eval_duration)."""
        return cls("stall", after_tokens=after_tokens, seconds=seconds)

    @classmethod
    def huge_line(cls, size: int, after_tokens: int = 0) -> Fault:
        """After `after_tokens` chunks, one line of `size` bytes (sent in 64 KiB HTTP chunks)."""
        return cls("huge_line", after_tokens=after_tokens, size=size)

    @classmethod
    def endless(cls) -> Fault:
        """A stream that never sends done: tokens go on until the client leaves."""
        return cls("endless")

    @classmethod
    def not_ndjson(cls, body: bytes | str, content_type: str = "text/html") -> Fault:
        """A 200 whose body is not NDJSON at all (a proxy's login page, say)."""
        text = body.decode("latin-1") if isinstance(body, bytes) else body
        return cls("not_ndjson", body=text, message=content_type)

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Fault:
        """Answer with a redirect to `location` (no body)."""
        return cls("redirect", status=status, location=location)

    @classmethod
    def done_fields(cls, **fields: Any) -> Fault:
        """A normal stream whose done line carries these values instead (out of range, say)."""
        return cls("done_fields", body=fields)

    @classmethod
    def delay_headers(cls, seconds: float) -> Fault:
        """Wait `seconds` before handling, so headers come late; counted only in total_duration."""
        return cls("delay_headers", seconds=seconds)


class _Headers(dict[str, str]):
    """Request headers with case-insensitive lookup (keys are stored lower-cased)."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    """One request the double received, as it arrived."""

    method: str
    path: str
    query: str
    headers: _Headers
    body: bytes
    json: Any
    connection_id: int
    json_error: str | None = field(default=None, repr=False)
    # Server-side metrics of a completed generation (the done line's six fields), else None.
    metrics: dict[str, int] | None = None
    # Ground truth for client measurements (GET /_double/timings), on time.perf_counter_ns:
    # CLOCK_MONOTONIC on Linux, so directly comparable with another process's perf_counter.
    # When the request was read and parsed, and when each token line was handed to the kernel.
    received_ns: int = field(default=0, repr=False)
    token_write_ns: list[int] = field(default_factory=list, repr=False)
    # Token writes the socket did not take at once (queued in user space, sent later).
    buffered_writes: int = field(default=0, repr=False)
    # When the done line was handed to the kernel (0 until then).
    done_ns: int = field(default=0, repr=False)


# --------------------------------------------------------------------------------------------
# Wire helpers

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_json(value: Any) -> bytes:
    """Encode like Go's encoding/json: compact, raw UTF-8, with <, > and & escaped."""
    # Those characters can only occur inside JSON strings, so translating the output is safe.
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_GO_ESCAPES).encode()


_utc_second_cache: tuple[int, str] = (-1, "")
_date_header_cache: tuple[int, str] = (-1, "")


def _utc_timestamp() -> str:
    """Now as Go's RFC3339Nano in UTC (trailing zeros trimmed, `Z`), cheap enough per token."""
    global _utc_second_cache
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached_second, prefix = _utc_second_cache
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _utc_second_cache = (seconds, prefix)
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{prefix}.{fraction}Z" if fraction else f"{prefix}Z"


def _local_timestamp(unix_s: float) -> str:
    """A server-local RFC3339Nano time with its offset, as Go prints modified_at/expires_at."""
    moment = datetime.fromtimestamp(unix_s).astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    if fraction:
        text += "." + fraction
    offset = moment.utcoffset()
    if not offset:
        return text + "Z"
    offset_min = int(offset.total_seconds()) // 60
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def _http_date() -> str:
    """The Date header value, recomputed once a second."""
    global _date_header_cache
    now = int(time.time())
    cached_second, text = _date_header_cache
    if cached_second != now:
        text = formatdate(now, usegmt=True)
        _date_header_cache = (now, text)
    return text


def _reason(status: int) -> str:
    """The reason phrase for a status line."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _response_head(
    status: int, content_type: str | None, content_length: int | None, keep_alive: bool
) -> bytes:
    """Status line and headers; content_length None means a chunked body."""
    lines = [f"HTTP/1.1 {status} {_reason(status)}", f"Date: {_http_date()}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if content_length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {content_length}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _with_tag(name: str) -> str:
    """Add the implicit `:latest` tag when the last path segment has none."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


def _canonical_name(name: str) -> str:
    """The key a model name resolves to: lower-case, default registry stripped, tagged."""
    key = name.strip().lower()
    for prefix in ("registry.ollama.ai/", "library/"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return _with_tag(key)


def _json_kind(value: Any) -> str:
    """How Go's decoder names a JSON value's type in unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_json_error(text: str) -> str:
    """Go encoding/json's message for a body Python's parser rejected (close enough to match on)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        if error.pos >= len(text.rstrip()):
            return "unexpected EOF"
        char = text[error.pos]
        if error.msg.startswith("Expecting value"):
            return f"invalid character {char!r} looking for beginning of value"
        if error.msg.startswith("Expecting property name"):
            return f"invalid character {char!r} looking for beginning of object key string"
        if error.msg.startswith("Expecting ':'"):
            return f"invalid character {char!r} after object key"
        if error.msg.startswith("Expecting ','"):
            return f"invalid character {char!r} after object key:value pair"
        if error.msg.startswith("Extra data"):
            return f"invalid character {char!r} after top-level value"
        return f"invalid character {char!r} in string literal"
    return "unexpected EOF"


def _parse_go_duration(text: str) -> float:
    """Parse a Go duration ("1h30m", "-1m", "250ms") into seconds, with Go's error messages."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    units["h"] = 3600.0
    quoted = json.dumps(text, ensure_ascii=False)
    rest = text
    negative = False
    if rest[:1] in ("+", "-"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total_s = 0.0
    while rest:
        number = re.match(r"\d*(\.\d*)?", rest)
        digits = number.group(0) if number else ""
        if digits in ("", "."):
            raise ValueError(f"time: invalid duration {quoted}")
        rest = rest[len(digits) :]
        unit_match = re.match(r"[^\d.]*", rest)
        unit = unit_match.group(0) if unit_match else ""
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in units:
            raise ValueError(f"time: unknown unit {json.dumps(unit)} in duration {quoted}")
        total_s += float(digits) * units[unit]
        rest = rest[len(unit) :]
    return -total_s if negative else total_s


def _parse_keep_alive(value: Any) -> float | None:
    """keep_alive as seconds (inf = forever, 0 = unload), None when omitted; 400 when invalid."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _HTTPError(400, "Unsupported type: 'bool'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = _parse_go_duration(value)
        except ValueError as error:
            raise _HTTPError(400, str(error)) from None
    else:
        go_type = "map[string]interface {}" if isinstance(value, dict) else "[]interface {}"
        raise _HTTPError(400, f"Unsupported type: '{go_type}'")
    return math.inf if seconds < 0 else seconds


def _parse_options(value: Any, go_struct: str) -> dict[str, Any]:
    """Validate `options` types like Ollama does (unknown keys are ignored)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _HTTPError(
            400,
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{go_struct}.options of type map[string]interface {{}}",
        )
    for key, option in value.items():
        is_number = isinstance(option, int | float) and not isinstance(option, bool)
        # Ollama reports option type errors from the scheduler, whose default branch answers 500.
        if key in _INT_OPTIONS and not is_number:
            raise _HTTPError(500, f'option "{key}" must be of type integer')
        if key in _FLOAT_OPTIONS and not is_number:
            raise _HTTPError(500, f'option "{key}" must be of type float32')
        if key == "stop" and not (
            isinstance(option, list) and all(isinstance(s, str) for s in option)
        ):
            raise _HTTPError(500, 'option "stop" must be of type array')
    return value


def _field(body: dict[str, Any], name: str, expected: type, go_struct: str, go_type: str) -> Any:
    """A body field checked against its Go type, None when absent or null."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
        raise _HTTPError(
            400,
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{go_struct}.{name} of type {go_type}",
        )
    return value


def _message_tokens(content: str) -> int:
    """Prompt tokens one message costs: its words plus the role-header overhead."""
    return len(content.split()) + _TEMPLATE_TOKENS_PER_MESSAGE


def _prompt_tokens(messages: tuple[tuple[str, str], ...]) -> int:
    """A deterministic prompt token count for the rendered prompt."""
    return _TEMPLATE_TOKENS_PER_PROMPT + sum(_message_tokens(c) for _, c in messages)


def _metrics(
    total_ns: int,
    load_ns: int,
    prompt_eval_count: int,
    prompt_eval_ns: int,
    eval_count: int,
    eval_ns: int,
) -> dict[str, int]:
    """The done line's metric fields in wire order, zero values omitted (Go omitempty)."""
    fields = {
        "total_duration": total_ns,
        "load_duration": load_ns,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": prompt_eval_ns,
        "eval_count": eval_count,
        "eval_duration": eval_ns,
    }
    return {name: value for name, value in fields.items() if value > 0}


def _details(model: FakeModel) -> dict[str, Any]:
    """The `details` object of /api/tags, /api/ps and /api/show."""
    return {
        "parent_model": "",
        "format": "gguf",
        "family": model.family,
        "families": [model.family],
        "parameter_size": model.parameter_size,
        "quantization_level": model.quantization_level,
    }


def _parameter_count(parameter_size: str) -> int:
    """Parse "3.2B" -> 3200000000, for model_info's general.parameter_count."""
    match = re.fullmatch(r"([\d.]+)\s*([KMBT]?)", parameter_size.strip().upper())
    if not match:
        return 0
    scale = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}[match.group(2)]
    return int(float(match.group(1)) * scale)


def _openai_error(status: int, message: str) -> dict[str, Any]:
    """An error body in the OpenAI shape used on /v1."""
    if status == 400:
        error_type = "invalid_request_error"
    elif status == 404:
        error_type = "not_found_error"
    else:
        error_type = "api_error"
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def _fake_embedding(text: str) -> list[float]:
    """A deterministic unit vector derived from the text."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(byte - 127.5) / 127.5 for byte in digest[:_EMBEDDING_DIMENSIONS]]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [round(v / norm, 6) for v in raw]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _sleep_until(loop: asyncio.AbstractEventLoop, target: float) -> None:
    """Sleep until an absolute loop.time(), so a stream's schedule does not drift."""
    if target <= loop.time():
        return
    future: asyncio.Future[None] = loop.create_future()
    handle = loop.call_at(target, _wake, future)
    try:
        await future
    except BaseException:
        handle.cancel()
        raise


class _HTTPError(Exception):
    """An error answered with a status and `{"error": message}` (OpenAI shape on /v1)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _BadRequest(Exception):
    """The bytes on the connection are not a usable HTTP request."""


class _Reader(asyncio.StreamReader):
    """A StreamReader that signals when the client closed or reset the connection."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.peer_gone = asyncio.Event()

    def feed_eof(self) -> None:
        self.peer_gone.set()
        super().feed_eof()

    def set_exception(self, exc: Exception) -> None:
        self.peer_gone.set()
        super().set_exception(exc)


# --------------------------------------------------------------------------------------------
# Per-request and per-model state


class _Exchange:
    """One request on a connection, and the means to answer it."""

    def __init__(
        self,
        request: RecordedRequest,
        reader: _Reader,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> None:
        self.request = request
        self.peer_gone = reader.peer_gone
        self.writer = writer
        self.transport = writer.transport
        self.keep_alive = keep_alive
        self.started_ns = time.perf_counter_ns()
        request.received_ns = self.started_ns
        self.headers_sent = False
        self.close_connection = False
        self._stream_head = b""

    def send(self, status: int, body: bytes, content_type: str | None) -> None:
        """A complete response with Content-Length (no body for HEAD)."""
        head = _response_head(status, content_type, len(body), self.keep_alive)
        self.transport.write(head if self.request.method == "HEAD" else head + body)
        self.headers_sent = True

    def send_json(self, status: int, payload: Any) -> None:
        self.send(status, _go_json(payload), _JSON)

    def begin_stream(self, content_type: str) -> None:
        """Prepare a chunked 200; headers go out with the first chunk, as with gin's c.Stream."""
        self._stream_head = _response_head(200, content_type, None, self.keep_alive)

    def write_chunk(self, data: bytes, *, last: bool = False) -> None:
        """One HTTP chunk in one transport write (plus the terminator when last)."""
        transport = self.transport
        if transport.is_closing():
            raise ConnectionResetError("the client went away")
        out = b"%x\r\n%b\r\n" % (len(data), data)
        if last:
            out += b"0\r\n\r\n"
        if not self.headers_sent:
            out = self._stream_head + out
            self.headers_sent = True
        transport.write(out)

    def end_stream(self) -> None:
        """Terminate the chunked body."""
        out = b"0\r\n\r\n"
        if not self.headers_sent:
            out = self._stream_head + out
            self.headers_sent = True
        if not self.transport.is_closing():
            self.transport.write(out)

    def abandon_stream(self) -> None:
        """Stop mid-body: headers (if not yet sent) then a closed connection."""
        if not self.headers_sent and not self.transport.is_closing():
            self.transport.write(self._stream_head)
            self.headers_sent = True
        self.close_connection = True

    async def drain(self) -> None:
        """Back-pressure: wait only when the socket did not take everything already."""
        if self.transport.get_write_buffer_size():
            await self.writer.drain()


class _ModelRuntime:
    """Scheduler state of one installed model inside the running double."""

    def __init__(self, model: FakeModel, num_parallel: int, keep_alive_s: float) -> None:
        self.model = model
        self.slots = asyncio.Semaphore(num_parallel)
        self.idle = asyncio.Event()
        self.idle.set()
        self.loaded = False
        self.num_ctx = 0
        self.refcount = 0
        self.generating = 0  # generations holding a slot now (batch_slowdown reads it)
        self.keep_alive_s = keep_alive_s
        self.expires_at_unix: float | None = None
        self.expiry_handle: asyncio.TimerHandle | None = None
        self.prompt_cache: deque[tuple[tuple[str, str], ...]] = deque(
            maxlen=max(_PROMPT_CACHE_ENTRIES, num_parallel)
        )

    def cached_prompt_tokens(self, messages: tuple[tuple[str, str], ...]) -> int:
        """Tokens of the longest message prefix shared with a recent prompt (the KV-cache hit)."""
        best = 0
        for cached in self.prompt_cache:
            shared = 0
            for mine, theirs in zip(messages, cached, strict=False):
                if mine != theirs:
                    break
                shared += 1
            best = max(best, shared)
        if best == 0:
            return 0
        return _TEMPLATE_TOKENS_PER_PROMPT + sum(_message_tokens(c) for _, c in messages[:best])


@dataclass
class _Job:
    """One planned generation: what to emit and how to account for it."""

    runtime: _ModelRuntime
    model_as_sent: str
    prompt_messages: tuple[tuple[str, str], ...]
    reply: str
    tokens: list[tuple[bool, str]]  # (is_thinking, text)
    done_reason: str
    prompt_eval_count: int
    num_ctx: int
    keep_alive_s: float | None
    fault: Fault | None
    openai: bool = False


# --------------------------------------------------------------------------------------------
# Response sinks: one per wire format, all driven by OllamaDouble._emit


class _NativeStreamSink:
    """/api/chat or /api/generate NDJSON, one HTTP chunk per line, token lines pre-encoded."""

    def __init__(self, ex: _Exchange, job: _Job, kind: str, context: list[int] | None) -> None:
        self.ex = ex
        self.job = job
        self.kind = kind
        self.context = context
        ex.begin_stream(_NDJSON)
        self.prefix = b'{"model":' + _go_json(job.model_as_sent) + b',"created_at":"'
        if kind == "chat":
            content_head = b'","message":{"role":"assistant","content":'
            thinking_head = b'","message":{"role":"assistant","content":"","thinking":'
            tail = b'},"done":false}\n'
        else:
            content_head = b'","response":'
            thinking_head = b'","response":"","thinking":'
            tail = b',"done":false}\n'
        self.tails = [
            (thinking_head if is_thinking else content_head) + _go_json(text) + tail
            for is_thinking, text in job.tokens
        ]

    def token(self, index: int) -> None:
        self.ex.write_chunk(self.prefix + _utc_timestamp().encode() + self.tails[index])

    def raw_line(self, line: bytes) -> None:
        self.ex.write_chunk(line if line.endswith(b"\n") else line + b"\n")

    def error(self, message: str) -> None:
        # After a 200, Ollama writes one more line with only `error`, then ends the stream.
        self.ex.write_chunk(_go_json({"error": message}) + b"\n", last=True)

    def cut(self, clean: bool) -> None:
        if clean:
            self.ex.end_stream()
        else:
            self.ex.abandon_stream()

    def done(self, done_reason: str, metrics: dict[str, int]) -> None:
        payload: dict[str, Any] = {"model": self.job.model_as_sent, "created_at": _utc_timestamp()}
        if self.kind == "chat":
            payload["message"] = {"role": "assistant", "content": ""}
        else:
            payload["response"] = ""
        payload["done"] = True
        payload["done_reason"] = done_reason
        if self.context is not None:
            payload["context"] = self.context
        payload.update(metrics)
        self.ex.write_chunk(_go_json(payload) + b"\n", last=True)


class _NativeCollectSink:
    """/api/chat or /api/generate with stream:false: one object with the concatenated text."""

    def __init__(self, ex: _Exchange, job: _Job, kind: str, context: list[int] | None) -> None:
        self.ex = ex
        self.job = job
        self.kind = kind
        self.context = context
        self.content: list[str] = []
        self.thinking: list[str] = []

    def token(self, index: int) -> None:
        is_thinking, text = self.job.tokens[index]
        (self.thinking if is_thinking else self.content).append(text)

    def raw_line(self, line: bytes) -> None:
        """A non-streaming response has no lines to corrupt."""

    def error(self, message: str) -> None:
        # Non-streaming: the partial output is discarded and the error gets a status of its own.
        self.ex.send_json(500, {"error": message})

    def cut(self, clean: bool) -> None:
        self.ex.close_connection = True

    def done(self, done_reason: str, metrics: dict[str, int]) -> None:
        payload: dict[str, Any] = {"model": self.job.model_as_sent, "created_at": _utc_timestamp()}
        thinking = "".join(self.thinking)
        if self.kind == "chat":
            message = {"role": "assistant", "content": "".join(self.content)}
            if thinking:
                message["thinking"] = thinking
            payload["message"] = message
        else:
            payload["response"] = "".join(self.content)
            if thinking:
                payload["thinking"] = thinking
        payload["done"] = True
        payload["done_reason"] = done_reason
        if self.context is not None:
            payload["context"] = self.context
        payload.update(metrics)
        self.ex.send_json(200, payload)


class _OpenAIStreamSink:
    """/v1/chat/completions SSE in the v0.32.6+ shape (role first, empty finish delta, [DONE])."""

    def __init__(self, ex: _Exchange, job: _Job, include_usage: bool) -> None:
        self.ex = ex
        self.job = job
        self.include_usage = include_usage
        self.chunk_id = f"chatcmpl-{random.randrange(999)}"
        self.created = int(time.time())
        ex.begin_stream(_SSE)
        self.head = _go_json(
            {
                "id": self.chunk_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": job.model_as_sent,
                "system_fingerprint": "fp_ollama",
            }
        )[:-1]
        self.prefix = b"data: " + self.head + b',"choices":[{"index":0,"delta":'
        self.tail = b',"finish_reason":null}]}\n\n'
        self.deltas = []
        for index, (is_thinking, text) in enumerate(job.tokens):
            delta: dict[str, str] = {"role": "assistant"} if index == 0 else {}
            delta["reasoning" if is_thinking else "content"] = text
            self.deltas.append(self.prefix + _go_json(delta) + self.tail)

    def token(self, index: int) -> None:
        self.ex.write_chunk(self.deltas[index])

    def raw_line(self, line: bytes) -> None:
        self.ex.write_chunk(b"data: " + line.rstrip(b"\n") + b"\n\n")

    def error(self, message: str) -> None:
        # Ollama's ChatWriter decodes the native error line as an empty response: an empty
        # content chunk, then the stream ends with no finish chunk and no [DONE].
        self.ex.write_chunk(self.prefix + b'{"content":""}' + self.tail, last=True)

    def cut(self, clean: bool) -> None:
        if clean:
            self.ex.end_stream()
        else:
            self.ex.abandon_stream()

    def done(self, done_reason: str, metrics: dict[str, int]) -> None:
        out = self.prefix + b"{}" + b',"finish_reason":' + _go_json(done_reason) + b"}]}\n\n"
        if self.include_usage:
            prompt_tokens = metrics.get("prompt_eval_count", 0)
            completion_tokens = metrics.get("eval_count", 0)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            usage_chunk = self.head + b',"choices":[],"usage":' + _go_json(usage) + b"}"
            self.ex.write_chunk(out)
            out = b"data: " + usage_chunk + b"\n\n"
        self.ex.write_chunk(out)
        self.ex.write_chunk(b"data: [DONE]\n\n", last=True)


class _OpenAICollectSink:
    """/v1/chat/completions without stream: one chat.completion object with usage."""

    def __init__(self, ex: _Exchange, job: _Job) -> None:
        self.ex = ex
        self.job = job
        self.content: list[str] = []
        self.reasoning: list[str] = []

    def token(self, index: int) -> None:
        is_thinking, text = self.job.tokens[index]
        (self.reasoning if is_thinking else self.content).append(text)

    def raw_line(self, line: bytes) -> None:
        """A non-streaming response has no lines to corrupt."""

    def error(self, message: str) -> None:
        self.ex.send_json(500, _openai_error(500, message))

    def cut(self, clean: bool) -> None:
        self.ex.close_connection = True

    def done(self, done_reason: str, metrics: dict[str, int]) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if self.reasoning:
            message["reasoning"] = "".join(self.reasoning)
        prompt_tokens = metrics.get("prompt_eval_count", 0)
        completion_tokens = metrics.get("eval_count", 0)
        self.ex.send_json(
            200,
            {
                "id": f"chatcmpl-{random.randrange(999)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.job.model_as_sent,
                "system_fingerprint": "fp_ollama",
                "choices": [{"index": 0, "message": message, "finish_reason": done_reason}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )


_Sink = _NativeStreamSink | _NativeCollectSink | _OpenAIStreamSink | _OpenAICollectSink

# path -> (handler method, allowed methods); gin answers 405 for a known path with another method.
_ROUTES: dict[str, tuple[str, frozenset[str]]] = {
    "/": ("_handle_root", frozenset({"GET", "HEAD"})),
    "/api/version": ("_handle_version", frozenset({"GET", "HEAD"})),
    "/api/tags": ("_handle_tags", frozenset({"GET", "HEAD"})),
    "/api/ps": ("_handle_ps", frozenset({"GET"})),
    "/api/show": ("_handle_show", frozenset({"POST"})),
    "/api/chat": ("_handle_chat", frozenset({"POST"})),
    "/api/generate": ("_handle_generate", frozenset({"POST"})),
    "/api/pull": ("_handle_pull", frozenset({"POST"})),
    "/api/embed": ("_handle_embed", frozenset({"POST"})),
    "/api/embeddings": ("_handle_embeddings", frozenset({"POST"})),
    "/v1/chat/completions": ("_handle_v1_chat", frozenset({"POST"})),
    "/v1/models": ("_handle_v1_models", frozenset({"GET"})),
    "/_double/timings": ("_handle_timings", frozenset({"GET"})),
}
_V1_MODEL_PREFIX = "/v1/models/"


# --------------------------------------------------------------------------------------------
# The server


class OllamaDouble:
    """A fake Ollama server on loopback, run in a background thread with its own event loop."""

    def __init__(
        self,
        models: Iterable[FakeModel] | None = None,
        *,
        num_parallel: int = 1,
        version: str = "0.12.6",
        max_queue: int = 512,
        host: str = "127.0.0.1",
        port: int = 0,
        default_num_ctx: int = 4096,
        default_keep_alive_s: float = 300.0,
    ) -> None:
        if num_parallel < 1:
            raise ValueError(f"num_parallel must be at least 1, got {num_parallel!r}")
        self.models: list[FakeModel] = (
            list(models) if models is not None else [FakeModel("llama3.2")]
        )
        self._models_by_key: dict[str, FakeModel] = {}
        for model in self.models:
            key = _canonical_name(model.name)
            if key in self._models_by_key:
                raise ValueError(f"two FakeModels resolve to the same installed name {key!r}")
            self._models_by_key[key] = model
        self.num_parallel = num_parallel
        self.version = version
        self.max_queue = max_queue
        self.host = host
        self.port = port
        self.default_num_ctx = default_num_ctx
        self.default_keep_alive_s = default_keep_alive_s
        self.requests: list[RecordedRequest] = []
        # deques are safe to append from the test thread while the loop thread pops.
        self._faults: dict[str, deque[Fault]] = {key: deque() for key in self._models_by_key}
        self._modified_unix = time.time()
        self._lifecycle_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runtimes: dict[str, _ModelRuntime] = {}
        self._connection_ids = itertools.count(1)
        self._connection_tasks: set[asyncio.Task[None]] = set()
        self._shutting_down = False
        self._pending = 0

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:54321."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> OllamaDouble:
        """Start serving (a no-op when already running); returns once the port is bound."""
        with self._lifecycle_lock:
            if self._thread is not None:
                return self
            ready = threading.Event()
            startup_errors: list[BaseException] = []
            thread = threading.Thread(
                target=self._thread_main, args=(ready, startup_errors), name="ollama-double"
            )
            thread.daemon = True
            thread.start()
            ready.wait()
            if startup_errors:
                thread.join()
                raise startup_errors[0]
            self._thread = thread
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (a no-op when not running)."""
        with self._lifecycle_lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(self._stop_event.set)
            thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> OllamaDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _thread_main(self, ready: threading.Event, startup_errors: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, startup_errors))
        except BaseException as error:
            if ready.is_set():
                logger.exception("ollama double: the server loop failed")
            else:
                startup_errors.append(error)  # start() raises it
        finally:
            ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, ready: threading.Event, startup_errors: list[BaseException]) -> None:
        self._stop_event = asyncio.Event()
        self._load_lock = asyncio.Lock()
        self._pending = 0
        self._shutting_down = False
        self._runtimes = {
            key: _ModelRuntime(model, self.num_parallel, self.default_keep_alive_s)
            for key, model in self._models_by_key.items()
        }
        try:
            loop = asyncio.get_running_loop()

            def protocol_factory() -> asyncio.StreamReaderProtocol:
                reader = _Reader(limit=2**16, loop=loop)
                return asyncio.StreamReaderProtocol(reader, self._on_connection, loop=loop)

            server = await loop.create_server(protocol_factory, self.host, self.port, backlog=2048)
        except OSError as error:
            startup_errors.append(error)
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            await self._stop_event.wait()
        finally:
            self._shutting_down = True
            server.close()
            tasks = list(self._connection_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            for runtime in self._runtimes.values():
                self._unload(runtime)

    # ---- test-facing helpers ---------------------------------------------------------------

    def add_fault(self, model_name: str, fault: Fault) -> None:
        """Queue a fault for the next generating chat/generate request to this model (FIFO)."""
        key = _canonical_name(model_name)
        if key not in self._faults:
            installed = ", ".join(sorted(self._faults))
            raise ValueError(f"add_fault: no model {model_name!r} in this double ({installed})")
        self._faults[key].append(fault)

    def loaded_models(self) -> list[str]:
        """Installed names (with tag, as /api/ps shows them) of the models currently loaded."""
        return [rt.model.installed_name for rt in list(self._runtimes.values()) if rt.loaded]

    def unload_all(self) -> None:
        """Unload every model now, as if each had expired."""
        loop = self._loop
        if self._thread is None or loop is None:
            return

        async def unload() -> None:
            for runtime in self._runtimes.values():
                self._unload(runtime)

        asyncio.run_coroutine_threadsafe(unload(), loop).result(timeout=10)

    # ---- HTTP/1.1 --------------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connection_tasks.add(task)
        connection_id = next(self._connection_ids)
        try:
            while True:
                try:
                    parsed = await self._read_request(reader, writer, connection_id)
                except _BadRequest as error:
                    writer.write(_response_head(400, _TEXT, len(str(error)), False))
                    writer.write(str(error).encode())
                    break
                if parsed is None:
                    break
                request, keep_alive = parsed
                self.requests.append(request)
                assert isinstance(reader, _Reader)
                exchange = _Exchange(request, reader, writer, keep_alive)
                await self._dispatch(exchange)
                if exchange.close_connection or not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            if not self._shutting_down:
                raise
        finally:
            self._connection_tasks.discard(task)
            if self._shutting_down:
                writer.transport.abort()
            else:
                writer.close()

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection_id: int
    ) -> tuple[RecordedRequest, bool] | None:
        """The next request on the connection and whether it may stay open, None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError:
            raise _BadRequest("request header too large") from None
        lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(f"malformed request line {lines[0]!r}")
        method, target, http_version = parts
        headers = _Headers()
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked_body(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _BadRequest("invalid Content-Length") from None
            body = await reader.readexactly(length)
        else:
            body = b""
        connection = headers.get("connection", "").lower()
        if http_version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection
        path, _, query = target.partition("?")
        parsed_json: Any = None
        json_error: str | None = None
        if body.strip():
            text = body.decode("utf-8", "replace")
            try:
                parsed_json = json.loads(text)
            except json.JSONDecodeError:
                json_error = _go_json_error(text)
        request = RecordedRequest(
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            json=parsed_json,
            connection_id=connection_id,
            json_error=json_error,
        )
        return request, keep_alive

    @staticmethod
    async def _read_chunked_body(reader: asyncio.StreamReader) -> bytes:
        """A Transfer-Encoding: chunked request body (trailers are read and dropped)."""
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def _dispatch(self, ex: _Exchange) -> None:
        request = ex.request
        route = _ROUTES.get(request.path)
        is_v1_model = len(request.path) > len(_V1_MODEL_PREFIX)
        if route is None and is_v1_model and request.path.startswith(_V1_MODEL_PREFIX):
            route = ("_handle_v1_model", frozenset({"GET"}))
        if route is None:
            ex.send(404, b"404 page not found", _TEXT)
            return
        handler_name, methods = route
        if request.method not in methods:
            ex.send(405, b"405 method not allowed", _TEXT)
            return
        try:
            await getattr(self, handler_name)(ex)
        except _HTTPError as error:
            if ex.headers_sent:
                ex.close_connection = True
            elif request.path.startswith("/v1/"):
                ex.send_json(error.status, _openai_error(error.status, error.message))
            else:
                ex.send_json(error.status, {"error": error.message})
        except ConnectionError:
            ex.close_connection = True
        except Exception:
            logger.exception("ollama double: %s %s failed", request.method, request.path)
            if not ex.headers_sent:
                ex.send_json(500, {"error": "internal error in the Ollama double"})
            ex.close_connection = True

    # ---- request parsing shared by handlers ------------------------------------------------

    @staticmethod
    def _json_object(request: RecordedRequest, go_type: str) -> dict[str, Any]:
        """The body as a JSON object; Ollama's 400s for empty, malformed or non-object bodies."""
        if not request.body.strip():
            raise _HTTPError(400, "missing request body")
        if request.json_error is not None:
            raise _HTTPError(400, request.json_error)
        if request.json is None:  # a literal `null` decodes into an empty request
            return {}
        if not isinstance(request.json, dict):
            kind = _json_kind(request.json)
            raise _HTTPError(400, f"json: cannot unmarshal {kind} into Go value of type {go_type}")
        return request.json

    def _runtime(self, name: str) -> _ModelRuntime | None:
        return self._runtimes.get(_canonical_name(name))

    def _num_ctx(self, model: FakeModel, options: dict[str, Any]) -> int:
        """The context size a request asks for (default when unset), capped at the model's."""
        requested = options.get("num_ctx")
        num_ctx = int(requested) if requested else self.default_num_ctx
        return max(1, min(num_ctx, model.context_length))

    @staticmethod
    def _resolve_think(value: Any, model: FakeModel, model_as_sent: str) -> bool:
        """Whether this request thinks; an unset `think` means on for thinking models (v0.12.4+)."""
        supports = "thinking" in model.all_capabilities
        if value is None:
            return supports
        if isinstance(value, bool):
            wants = value
        elif isinstance(value, str) and value in _THINK_LEVELS:
            wants = True
        else:
            shown = value if isinstance(value, str) else json.dumps(value)
            raise _HTTPError(
                400,
                f'invalid think value: "{shown}" '
                '(must be "high", "medium", "low", "max", true, or false)',
            )
        if wants and not supports:
            raise _HTTPError(400, f'"{model_as_sent}" does not support thinking')
        return wants

    def _plan(
        self,
        runtime: _ModelRuntime,
        model_as_sent: str,
        messages: tuple[tuple[str, str], ...],
        think: bool,
        options: dict[str, Any],
        keep_alive_s: float | None,
        *,
        openai: bool = False,
    ) -> _Job:
        """Decide the reply, its tokens, the prompt accounting, and which fault applies."""
        model = runtime.model
        user_text = next((content for role, content in reversed(messages) if role == "user"), "")
        reply = model.reply_text(user_text)
        for stop in options.get("stop") or []:
            position = reply.find(stop) if stop else -1
            if position >= 0:
                reply = reply[:position]
        tokens = [(True, t) for t in _TOKEN_RE.findall(model.thinking)] if think else []
        if model.reply_chunk_chars:
            size = model.reply_chunk_chars
            tokens += [(False, reply[at : at + size]) for at in range(0, len(reply), size)]
        else:
            tokens += [(False, t) for t in _TOKEN_RE.findall(reply)]
        done_reason = "stop"
        num_predict = options.get("num_predict")
        if num_predict is not None and 0 <= num_predict < len(tokens):
            tokens = tokens[: int(num_predict)]
            done_reason = "length"
        num_ctx = self._num_ctx(model, options)
        key = _canonical_name(model.name)
        queued = self._faults[key]
        fault = queued.popleft() if queued else None
        return _Job(
            runtime=runtime,
            model_as_sent=model_as_sent,
            prompt_messages=messages,
            reply=reply,
            tokens=tokens,
            done_reason=done_reason,
            # Over-long prompts are truncated silently, so the count plateaus at the context size.
            prompt_eval_count=min(_prompt_tokens(messages), num_ctx),
            num_ctx=num_ctx,
            keep_alive_s=keep_alive_s,
            fault=fault,
            openai=openai,
        )

    # ---- scheduler: loads, keep_alive, slots -----------------------------------------------

    async def _acquire_runner(
        self, runtime: _ModelRuntime, num_ctx: int, keep_alive_s: float | None
    ) -> None:
        """Get the model loaded (loading it if needed) and hold a reference until release."""
        if runtime.loaded and runtime.num_ctx == num_ctx:
            # A warm runner bypasses the pending queue.
            self._take_reference(runtime, keep_alive_s)
            try:
                await asyncio.sleep(_WARM_LOAD_S)
            except BaseException:
                self._release_runner(runtime)  # cancelled before the caller could own it
                raise
            return
        if self._pending >= self.max_queue:
            raise _HTTPError(503, QUEUE_FULL_MESSAGE)
        self._pending += 1
        try:
            await self._load_lock.acquire()
        finally:
            self._pending -= 1
        try:
            if runtime.loaded and runtime.num_ctx != num_ctx:
                # A different num_ctx reloads the runner once its in-flight requests finish.
                await runtime.idle.wait()
                self._unload(runtime)
            if not runtime.loaded:
                await asyncio.sleep(runtime.model.load_s)
                runtime.loaded = True
                runtime.num_ctx = num_ctx
                runtime.keep_alive_s = self.default_keep_alive_s
            self._take_reference(runtime, keep_alive_s)
        finally:
            self._load_lock.release()

    def _take_reference(self, runtime: _ModelRuntime, keep_alive_s: float | None) -> None:
        runtime.refcount += 1
        runtime.idle.clear()
        if keep_alive_s is not None:  # the last explicit keep_alive wins
            runtime.keep_alive_s = keep_alive_s
        if runtime.expiry_handle is not None:
            runtime.expiry_handle.cancel()
            runtime.expiry_handle = None
        runtime.expires_at_unix = time.time() + min(runtime.keep_alive_s, _FOREVER_S)

    def _release_runner(self, runtime: _ModelRuntime) -> None:
        runtime.refcount -= 1
        if runtime.refcount > 0:
            return
        runtime.idle.set()
        session_s = runtime.keep_alive_s
        if session_s <= 0:
            self._unload(runtime)
        elif math.isinf(session_s):
            runtime.expires_at_unix = time.time() + _FOREVER_S
        elif runtime.loaded:
            assert self._loop is not None
            runtime.expires_at_unix = time.time() + session_s
            runtime.expiry_handle = self._loop.call_later(session_s, self._expire, runtime)

    def _expire(self, runtime: _ModelRuntime) -> None:
        runtime.expiry_handle = None
        if runtime.refcount == 0:
            self._unload(runtime)

    def _unload_when_idle(self, runtime: _ModelRuntime) -> None:
        """keep_alive 0 with an empty prompt: unload now, or after the in-flight requests."""
        if runtime.refcount == 0:
            self._unload(runtime)
        else:
            runtime.keep_alive_s = 0.0

    @staticmethod
    def _unload(runtime: _ModelRuntime) -> None:
        runtime.loaded = False
        runtime.num_ctx = 0
        runtime.expires_at_unix = None
        runtime.prompt_cache.clear()
        if runtime.expiry_handle is not None:
            runtime.expiry_handle.cancel()
            runtime.expiry_handle = None

    # ---- generation ------------------------------------------------------------------------

    async def _run_job(self, ex: _Exchange, job: _Job, sink: _Sink) -> None:
        """Run the job, cancelling it if the client goes away (Ollama cancels on disconnect)."""
        work = asyncio.ensure_future(self._run_job_until_done(ex, job, sink))
        watcher = asyncio.ensure_future(ex.peer_gone.wait())
        try:
            await asyncio.wait((work, watcher), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not work.done():
                # The client left, so the slot and the load queue place are freed right away.
                work.cancel()
                ex.close_connection = True
                with contextlib.suppress(asyncio.CancelledError):
                    await work
        if not work.cancelled():
            work.result()

    async def _run_job_until_done(self, ex: _Exchange, job: _Job, sink: _Sink) -> None:
        """Schedule, load, wait for a slot, evaluate the prompt, then stream the tokens."""
        fault = job.fault
        if fault is not None and fault.kind == "delay_headers":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.kind == "http_status":
            self._send_fault_status(ex, fault, openai=job.openai)
            return
        if fault is not None and fault.kind == "not_ndjson":
            ex.send(200, str(fault.body).encode("latin-1"), fault.message)
            return
        if fault is not None and fault.kind == "redirect":
            head = _response_head(fault.status, None, 0, ex.keep_alive)
            ex.transport.write(head[:-2] + f"Location: {fault.location}\r\n\r\n".encode())
            ex.headers_sent = True
            return
        runtime = job.runtime
        load_start_ns = time.perf_counter_ns()
        await self._acquire_runner(runtime, job.num_ctx, job.keep_alive_s)
        load_ns = time.perf_counter_ns() - load_start_ns
        metrics: dict[str, int] | None = None
        try:
            # Waiting for a slot shows up only in total_duration, as in Ollama's runner semaphore.
            async with runtime.slots:
                cached = runtime.cached_prompt_tokens(job.prompt_messages)
                # llama.cpp always re-evaluates at least the last prompt token.
                uncached = max(1, job.prompt_eval_count - cached)
                prompt_start_ns = time.perf_counter_ns()
                await asyncio.sleep(uncached * runtime.model.prompt_token_s)
                prompt_ns = time.perf_counter_ns() - prompt_start_ns
                runtime.prompt_cache.append((*job.prompt_messages, ("assistant", job.reply)))
                runtime.generating += 1
                try:
                    metrics = await self._emit(ex, job, sink, load_ns, prompt_ns)
                finally:
                    runtime.generating -= 1
        finally:
            self._release_runner(runtime)
        # Written after the release, so a client that sees `done` also sees keep_alive 0 applied.
        if metrics is not None:
            if fault is not None and fault.kind == "done_fields" and isinstance(fault.body, dict):
                metrics = {**metrics, **fault.body}
            ex.request.metrics = metrics
            sink.done(job.done_reason, metrics)
            ex.request.done_ns = time.perf_counter_ns()

    async def _emit(
        self, ex: _Exchange, job: _Job, sink: _Sink, load_ns: int, prompt_ns: int
    ) -> dict[str, int] | None:
        """Write token i at t0 + ttft + i*interval: absolute times, so lateness never adds up.

        Returns the done line's metrics, or None when a fault ended the stream.
        """
        loop = asyncio.get_running_loop()
        model = job.runtime.model
        fault = job.fault if job.fault is not None and job.fault.kind in _STREAM_FAULTS else None
        token_count = len(job.tokens)
        fault_at = min(fault.after_tokens, token_count) if fault is not None else -1
        interval_s = model.token_interval_s
        first_target = loop.time() + model.ttft_s
        # With batch_slowdown each step's length depends on the generations running meanwhile,
        # so the schedule advances step by step (still from the schedule, not from the clock).
        stepped_target = first_target
        shift_s = 0.0
        first_token_ns = 0
        write_ns = ex.request.token_write_ns
        transport = ex.transport
        # Step token_count is the end-of-sequence step, so eval_count/eval_duration = 1/interval.
        for index in range(token_count + 1):
            if index == fault_at and fault is not None:
                if fault.kind == "stall":
                    shift_s += fault.seconds
                elif fault.kind == "malformed":
                    sink.raw_line(fault.line)
                elif fault.kind == "huge_line":
                    piece = b"x" * 65536
                    ex.write_chunk(b'{"pad":"')
                    for _ in range(fault.size // len(piece)):
                        ex.write_chunk(piece)
                        await ex.writer.drain()
                    ex.write_chunk(b'"}\n')
                elif fault.kind == "endless":
                    step = 0
                    while True:
                        await _sleep_until(loop, first_target + step * interval_s)
                        sink.token(step % token_count)
                        step += 1
                        await ex.drain()
                elif fault.kind == "error_line":
                    sink.error(fault.message)
                    return None
                else:
                    sink.cut(fault.clean)
                    return None
            if model.batch_slowdown and index:
                others = job.runtime.generating - 1
                stepped_target += interval_s * (1 + model.batch_slowdown * others)
                await _sleep_until(loop, stepped_target + shift_s)
            else:
                await _sleep_until(loop, first_target + index * interval_s + shift_s)
            if index == token_count:
                break
            if index == 0:
                first_token_ns = time.perf_counter_ns()
            sink.token(index)
            write_ns.append(time.perf_counter_ns())
            if transport.get_write_buffer_size():
                ex.request.buffered_writes += 1
            await ex.drain()
        end_ns = time.perf_counter_ns()
        return _metrics(
            total_ns=end_ns - ex.started_ns,
            load_ns=load_ns,
            prompt_eval_count=job.prompt_eval_count,
            prompt_eval_ns=prompt_ns,
            eval_count=token_count,
            eval_ns=end_ns - first_token_ns if token_count else 0,
        )

    @staticmethod
    def _send_fault_status(ex: _Exchange, fault: Fault, *, openai: bool) -> None:
        body = fault.body
        if isinstance(body, dict):
            message = body.get("error")
            if openai and isinstance(message, str):
                body = _openai_error(fault.status, message)
            ex.send_json(fault.status, body)
        elif isinstance(body, str):
            ex.send(fault.status, body.encode(), _TEXT)
        else:
            ex.send(fault.status, b"", None)

    async def _load_shortcut(
        self,
        ex: _Exchange,
        kind: str,
        runtime: _ModelRuntime,
        model_as_sent: str,
        keep_alive_s: float | None,
        options: dict[str, Any],
    ) -> None:
        """Empty prompt / no messages: load (or with keep_alive 0, unload) and answer once."""
        if keep_alive_s == 0:
            self._unload_when_idle(runtime)
            done_reason = "unload"
        else:
            num_ctx = self._num_ctx(runtime.model, options)
            await self._acquire_runner(runtime, num_ctx, keep_alive_s)
            self._release_runner(runtime)
            done_reason = "load"
        payload: dict[str, Any] = {"model": model_as_sent, "created_at": _utc_timestamp()}
        if kind == "chat":
            payload["message"] = {"role": "assistant", "content": ""}
        else:
            payload["response"] = ""
        payload["done"] = True
        payload["done_reason"] = done_reason
        ex.send_json(200, payload)

    # ---- route handlers --------------------------------------------------------------------

    async def _handle_root(self, ex: _Exchange) -> None:
        ex.send(200, b"Ollama is running", _TEXT)

    async def _handle_version(self, ex: _Exchange) -> None:
        ex.send_json(200, {"version": self.version})

    async def _handle_tags(self, ex: _Exchange) -> None:
        modified_at = _local_timestamp(self._modified_unix)
        entries = [
            {
                "name": model.installed_name,
                "model": model.installed_name,
                "modified_at": modified_at,
                "size": model.size_bytes,
                "digest": model.digest,
                "details": _details(model),
            }
            for model in self.models
        ]
        ex.send_json(200, {"models": entries})

    async def _handle_ps(self, ex: _Exchange) -> None:
        loaded = [rt for rt in self._runtimes.values() if rt.loaded]
        loaded.sort(key=lambda rt: rt.expires_at_unix or 0.0, reverse=True)
        entries = []
        for runtime in loaded:
            model = runtime.model
            entries.append(
                {
                    "name": model.installed_name,
                    "model": model.installed_name,
                    "size": model.size_bytes,
                    "digest": model.digest,
                    "details": _details(model),
                    "expires_at": _local_timestamp(runtime.expires_at_unix or time.time()),
                    "size_vram": model.size_bytes if model.size_vram is None else model.size_vram,
                    "context_length": runtime.num_ctx,
                }
            )
        ex.send_json(200, {"models": entries})

    async def _handle_show(self, ex: _Exchange) -> None:
        body = self._json_object(ex.request, "api.ShowRequest")
        name = _field(body, "model", str, "ShowRequest", "string") or _field(
            body, "name", str, "ShowRequest", "string"
        )
        if not name:
            raise _HTTPError(400, "model is required")
        runtime = self._runtime(name)
        if runtime is None:
            raise _HTTPError(404, f"model '{_with_tag(name)}' not found")
        model = runtime.model
        family = model.family
        stops = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        template = (
            "<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n"
        )
        parameters = "\n".join(f"{'stop':<30} {json.dumps(stop)}" for stop in stops)
        modelfile = (
            '# Modelfile generated by "ollama show"\n'
            "# To build a new Modelfile based on this, replace FROM with:\n"
            f"# FROM {model.installed_name}\n\n"
            f"FROM /root/.ollama/models/blobs/sha256-{model.digest}\n"
            f'TEMPLATE """{template}"""\n' + "".join(f"PARAMETER stop {stop}\n" for stop in stops)
        )
        model_info = {
            "general.architecture": family,
            "general.file_type": 15,
            "general.parameter_count": _parameter_count(model.parameter_size),
            "general.quantization_version": 2,
            f"{family}.attention.head_count": 24,
            f"{family}.attention.head_count_kv": 8,
            f"{family}.block_count": 28,
            f"{family}.context_length": model.context_length,
            f"{family}.embedding_length": 3072,
            f"{family}.rope.freq_base": 500000,
            f"{family}.vocab_size": 128256,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.merges": [],
            "tokenizer.ggml.token_type": [],
            "tokenizer.ggml.tokens": [],
        }
        ex.send_json(
            200,
            {
                "modelfile": modelfile,
                "parameters": parameters,
                "template": template,
                "details": _details(model),
                # Go marshals maps with sorted keys.
                "model_info": dict(sorted(model_info.items())),
                "tensors": [{"name": "token_embd.weight", "type": "Q6_K", "shape": [3072, 128256]}],
                "capabilities": model.all_capabilities,
                "modified_at": _local_timestamp(self._modified_unix),
            },
        )

    async def _handle_chat(self, ex: _Exchange) -> None:
        body = self._json_object(ex.request, "api.ChatRequest")
        model_name = _field(body, "model", str, "ChatRequest", "string")
        if not model_name:
            raise _HTTPError(400, "model is required")
        messages = self._chat_messages(body)
        stream = _field(body, "stream", bool, "ChatRequest", "bool")
        keep_alive_s = _parse_keep_alive(body.get("keep_alive"))
        options = _parse_options(body.get("options"), "ChatRequest")
        runtime = self._runtime(model_name)
        if runtime is None:
            raise _HTTPError(404, f"model '{model_name}' not found")
        capabilities = runtime.model.all_capabilities
        if "completion" not in capabilities:
            raise _HTTPError(400, f'"{model_name}" does not support chat')
        think = self._resolve_think(body.get("think"), runtime.model, model_name)
        if body.get("tools") and "tools" not in capabilities:
            full_name = f"registry.ollama.ai/library/{runtime.model.installed_name}"
            raise _HTTPError(400, f"{full_name} does not support tools")
        self._check_top_logprobs(body)
        if not messages:
            await self._load_shortcut(ex, "chat", runtime, model_name, keep_alive_s, options)
            return
        job = self._plan(runtime, model_name, messages, think, options, keep_alive_s)
        sink: _Sink
        if stream is False:
            sink = _NativeCollectSink(ex, job, "chat", None)
        else:
            sink = _NativeStreamSink(ex, job, "chat", None)
        await self._run_job(ex, job, sink)

    @staticmethod
    def _chat_messages(body: dict[str, Any]) -> tuple[tuple[str, str], ...]:
        raw = _field(body, "messages", list, "ChatRequest", "[]api.Message") or []
        messages = []
        for item in raw:
            if not isinstance(item, dict):
                raise _HTTPError(
                    400,
                    f"json: cannot unmarshal {_json_kind(item)} into Go struct field "
                    "ChatRequest.messages of type api.Message",
                )
            role = _field(item, "role", str, "ChatRequest.messages", "string") or ""
            content = _field(item, "content", str, "ChatRequest.messages", "string") or ""
            messages.append((role.lower(), content))
        return tuple(messages)

    @staticmethod
    def _check_top_logprobs(body: dict[str, Any]) -> None:
        top_logprobs = body.get("top_logprobs")
        if isinstance(top_logprobs, int) and not 0 <= top_logprobs <= 20:
            raise _HTTPError(400, "top_logprobs must be between 0 and 20")

    async def _handle_generate(self, ex: _Exchange) -> None:
        body = self._json_object(ex.request, "api.GenerateRequest")
        model_name = _field(body, "model", str, "GenerateRequest", "string") or ""
        prompt = _field(body, "prompt", str, "GenerateRequest", "string") or ""
        system = _field(body, "system", str, "GenerateRequest", "string") or ""
        raw = _field(body, "raw", bool, "GenerateRequest", "bool") or False
        stream = _field(body, "stream", bool, "GenerateRequest", "bool")
        keep_alive_s = _parse_keep_alive(body.get("keep_alive"))
        options = _parse_options(body.get("options"), "GenerateRequest")
        runtime = self._runtime(model_name)
        if runtime is None:
            # /api/generate has no "model is required" check: an empty name is just not found.
            raise _HTTPError(404, f"model '{model_name}' not found")
        if raw and (body.get("template") or system or body.get("context")):
            raise _HTTPError(400, "raw mode does not support template, system, or context")
        capabilities = runtime.model.all_capabilities
        if "completion" not in capabilities:
            raise _HTTPError(400, f'"{model_name}" does not support generate')
        if body.get("suffix") and "insert" not in capabilities:
            full_name = f"registry.ollama.ai/library/{runtime.model.installed_name}"
            raise _HTTPError(400, f"{full_name} does not support insert")
        think = self._resolve_think(body.get("think"), runtime.model, model_name)
        self._check_top_logprobs(body)
        if not prompt:
            await self._load_shortcut(ex, "generate", runtime, model_name, keep_alive_s, options)
            return
        messages = ((("system", system),) if system else ()) + (("user", prompt),)
        job = self._plan(runtime, model_name, messages, think, options, keep_alive_s)
        # `context` holds the prompt and output token ids; raw mode omits it.
        context = None if raw else list(range(1, job.prompt_eval_count + len(job.tokens) + 1))
        sink: _Sink
        if stream is False:
            sink = _NativeCollectSink(ex, job, "generate", context)
        else:
            sink = _NativeStreamSink(ex, job, "generate", context)
        await self._run_job(ex, job, sink)

    async def _handle_pull(self, ex: _Exchange) -> None:
        body = self._json_object(ex.request, "api.PullRequest")
        name = _field(body, "model", str, "PullRequest", "string") or _field(
            body, "name", str, "PullRequest", "string"
        )
        if not name:
            raise _HTTPError(400, "model is required")
        stream = _field(body, "stream", bool, "PullRequest", "bool") is not False
        model = self._models_by_key.get(_canonical_name(name))
        missing = "pull model manifest: file does not exist"
        if model is None and not stream:
            raise _HTTPError(500, missing)
        if model is None:
            ex.begin_stream(_NDJSON)
            ex.write_chunk(_go_json({"status": "pulling manifest"}) + b"\n")
            ex.write_chunk(_go_json({"error": missing}) + b"\n", last=True)
            return
        layer = {"digest": f"sha256:{model.digest}", "total": model.size_bytes}
        lines: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        for completed in (0, model.size_bytes // 2, model.size_bytes):
            lines.append(
                {"status": f"pulling {model.digest[:12]}", **layer, "completed": completed}
            )
        for status in ("verifying sha256 digest", "writing manifest", "removing unused layers"):
            lines.append({"status": status})
        lines.append({"status": "success"})
        if not stream:
            ex.send_json(200, lines[-1])
            return
        ex.begin_stream(_NDJSON)
        for index, line in enumerate(lines):
            ex.write_chunk(_go_json(line) + b"\n", last=index == len(lines) - 1)
            await ex.drain()

    async def _embed_texts(
        self, ex: _Exchange, model_name: str, texts: list[str], keep_alive_s: float | None
    ) -> tuple[list[list[float]], dict[str, int]]:
        """Load the model, hold a slot for the prompt evaluation, and return vectors and metrics."""
        runtime = self._runtime(model_name)
        if runtime is None:
            raise _HTTPError(404, f"model '{model_name}' not found")
        if not texts:
            return [], {}
        load_start_ns = time.perf_counter_ns()
        await self._acquire_runner(runtime, self._num_ctx(runtime.model, {}), keep_alive_s)
        load_ns = time.perf_counter_ns() - load_start_ns
        prompt_tokens = sum(max(1, len(text.split())) for text in texts)
        try:
            async with runtime.slots:
                await asyncio.sleep(prompt_tokens * runtime.model.prompt_token_s)
        finally:
            self._release_runner(runtime)
        total_ns = time.perf_counter_ns() - ex.started_ns
        metrics = {
            "total_duration": total_ns,
            "load_duration": load_ns,
            "prompt_eval_count": prompt_tokens,
        }
        return [_fake_embedding(text) for text in texts], metrics

    async def _handle_embed(self, ex: _Exchange) -> None:
        body = self._json_object(ex.request, "api.EmbedRequest")
        model_name = _field(body, "model", str, "EmbedRequest", "string")
        if not model_name:
            raise _HTTPError(400, "model is required")
        raw_input = body.get("input")
        texts = [raw_input] if isinstance(raw_input, str) else list(raw_input or [])
        if not all(isinstance(text, str) for text in texts):
            raise _HTTPError(400, "invalid input type")
        keep_alive_s = _parse_keep_alive(body.get("keep_alive"))
        embeddings, metrics = await self._embed_texts(ex, model_name, texts, keep_alive_s)
        ex.send_json(200, {"model": model_name, "embeddings": embeddings, **metrics})

    async def _handle_embeddings(self, ex: _Exchange) -> None:
        body = self._json_object(ex.request, "api.EmbeddingRequest")
        model_name = _field(body, "model", str, "EmbeddingRequest", "string")
        if not model_name:
            raise _HTTPError(400, "model is required")
        prompt = _field(body, "prompt", str, "EmbeddingRequest", "string") or ""
        keep_alive_s = _parse_keep_alive(body.get("keep_alive"))
        texts = [prompt] if prompt else []
        embeddings, _ = await self._embed_texts(ex, model_name, texts, keep_alive_s)
        ex.send_json(200, {"embedding": embeddings[0] if embeddings else []})

    async def _handle_v1_chat(self, ex: _Exchange) -> None:
        body = self._json_object(ex.request, "openai.ChatCompletionRequest")
        model_name = body.get("model")
        if not isinstance(model_name, str) or not model_name:
            raise _HTTPError(400, "model is required")
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise _HTTPError(400, "[] is too short - 'messages'")
        messages = tuple(
            (str(item.get("role", "")).lower(), self._openai_text(item.get("content")))
            for item in raw_messages
            if isinstance(item, dict)
        )
        stream = body.get("stream") is True
        stream_options = body.get("stream_options")
        include_usage = (
            isinstance(stream_options, dict) and stream_options.get("include_usage") is True
        )
        options: dict[str, Any] = {}
        if isinstance(body.get("max_tokens"), int):
            options["num_predict"] = body["max_tokens"]
        stop = body.get("stop")
        if isinstance(stop, str):
            options["stop"] = [stop]
        elif isinstance(stop, list):
            options["stop"] = [s for s in stop if isinstance(s, str)]
        runtime = self._runtime(model_name)
        if runtime is None:
            raise _HTTPError(404, f"model '{model_name}' not found")
        think = self._openai_think(body, runtime.model, model_name)
        job = self._plan(runtime, model_name, messages, think, options, None, openai=True)
        sink: _Sink = (
            _OpenAIStreamSink(ex, job, include_usage) if stream else _OpenAICollectSink(ex, job)
        )
        await self._run_job(ex, job, sink)

    @staticmethod
    def _openai_text(content: Any) -> str:
        """Message content as text: a string, or the text parts of a content-part array."""
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                part.get("text", "")
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        return ""

    def _openai_think(self, body: dict[str, Any], model: FakeModel, model_as_sent: str) -> bool:
        """reasoning_effort / reasoning.effort mapped to Ollama's think."""
        effort = body.get("reasoning_effort")
        reasoning = body.get("reasoning")
        if effort is None and isinstance(reasoning, dict):
            effort = reasoning.get("effort")
        if effort is None:
            return self._resolve_think(None, model, model_as_sent)
        if effort not in _REASONING_EFFORTS:
            raise _HTTPError(
                400,
                f'invalid reasoning value: \'{effort}\' (must be "none", "minimal", "low", '
                '"medium", "high", "max", "xhigh" or "ultra")',
            )
        return self._resolve_think(_REASONING_EFFORTS[effort], model, model_as_sent)

    async def _handle_timings(self, ex: _Exchange) -> None:
        """Debug route: what the double really did per generation request (perf ground truth).

        Times are time.perf_counter_ns() readings. `?clear=1` forgets the recorded requests.
        """
        entries = []
        for request in list(self.requests):
            if not request.token_write_ns:
                continue
            messages = request.json.get("messages") if isinstance(request.json, dict) else None
            user_text = ""
            if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
                user_text = str(messages[-1].get("content", ""))
            entries.append(
                {
                    "path": request.path,
                    "connection_id": request.connection_id,
                    "user_text": user_text,
                    "received_ns": request.received_ns,
                    "token_write_ns": request.token_write_ns,
                    "buffered_writes": request.buffered_writes,
                    "completed": request.metrics is not None,
                    "done_ns": request.done_ns,
                }
            )
        if "clear=1" in ex.request.query.split("&"):
            self.requests.clear()
        ex.send_json(200, {"clock": "perf_counter_ns", "requests": entries})

    async def _handle_v1_models(self, ex: _Exchange) -> None:
        created = int(self._modified_unix)
        data = [
            {
                "id": model.installed_name,
                "object": "model",
                "created": created,
                "owned_by": "library",
            }
            for model in self.models
        ]
        # Ollama serialises an empty model list as a nil slice: `"data": null`.
        ex.send_json(200, {"object": "list", "data": data or None})

    async def _handle_v1_model(self, ex: _Exchange) -> None:
        name = ex.request.path[len(_V1_MODEL_PREFIX) :]
        if self._runtime(name) is None:
            raise _HTTPError(404, f"model '{name}' not found")
        created = int(self._modified_unix)
        ex.send_json(
            200, {"id": name, "object": "model", "created": created, "owned_by": "library"}
        )


# --------------------------------------------------------------------------------------------
# Standalone demo server

# Plausible one-sentence answers and speeds, so a demo report looks like a real machine's.
_DEMO_PROFILES: dict[str, dict[str, Any]] = {
    "llama3.2": {
        "parameter_size": "3.2B",
        "size_bytes": 2_019_393_189,
        "token_interval_s": 0.012,
        "replies": [
            "The sky looks blue because air scatters short blue wavelengths of sunlight the most.",
            "A haiku is a three-line poem with five, seven and five syllables.",
            "Paris is the capital of France.",
        ],
    },
    "nemotron-mini": {
        "family": "nemotron",
        "parameter_size": "4.2B",
        "size_bytes": 2_682_027_008,
        "token_interval_s": 0.016,
        "replies": [
            "Fine, thanks.",
            "Sunlight scatters off air molecules, and blue light scatters the most.",
            "The answer is 42.",
        ],
    },
    "wizardlm2": {
        "parameter_size": "7.2B",
        "size_bytes": 4_108_928_574,
        "token_interval_s": 0.028,
        "replies": [
            "Rayleigh scattering sends more blue light toward your eyes than any other colour.",
            "Water boils at 100 degrees Celsius at sea level.",
            "I would be glad to help with that question.",
        ],
    },
}
_DEMO_FALLBACK_REPLIES = [
    "That is a good question, and the short answer is yes.",
    "Here is a concise answer in a single sentence.",
    "It depends on the context, but usually it works.",
]


def _demo_model(
    name: str,
    token_interval_ms: float | None,
    ttft_ms: float | None,
    load_ms: float,
    batch_slowdown: float = 0.0,
) -> FakeModel:
    """A FakeModel with a demo profile: replies picked per prompt, realistic-looking speeds."""
    profile = dict(_DEMO_PROFILES.get(name.split(":")[0].lower(), {}))
    replies: list[str] = profile.pop("replies", _DEMO_FALLBACK_REPLIES)

    def reply(user_text: str) -> str:
        digest = hashlib.sha256(f"{name}\0{user_text}".encode()).digest()
        return replies[digest[0] % len(replies)]

    if token_interval_ms is not None:
        profile["token_interval_s"] = token_interval_ms / 1000
    profile.setdefault("token_interval_s", 0.02)
    return FakeModel(
        name,
        reply=reply,
        load_s=load_ms / 1000,
        ttft_s=(ttft_ms if ttft_ms is not None else 10.0) / 1000,
        batch_slowdown=batch_slowdown,
        **profile,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve a fake Ollama on loopback until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.ollama_double", description="Serve a fake Ollama until Ctrl-C."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--models", default="llama3.2,nemotron-mini,wizardlm2")
    parser.add_argument("--num-parallel", type=int, default=1)
    parser.add_argument(
        "--token-interval-ms", type=float, default=None, help="default: per-model demo speed"
    )
    parser.add_argument("--ttft-ms", type=float, default=None, help="default: 10")
    parser.add_argument("--load-ms", type=float, default=500.0)
    parser.add_argument(
        "--batch-slowdown",
        type=float,
        default=0.0,
        help="per other running generation, the fraction each token interval stretches by "
        "(0: independent slots; 1: aggregate throughput does not grow)",
    )
    parser.add_argument("--version", default="0.12.6", help="what /api/version reports")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    models = [
        _demo_model(n, args.token_interval_ms, args.ttft_ms, args.load_ms, args.batch_slowdown)
        for n in names
    ]
    double = OllamaDouble(
        models,
        num_parallel=args.num_parallel,
        version=args.version,
        host=args.host,
        port=args.port,
    )
    double.start()
    print(f"Ollama double on {double.url} serving {', '.join(names)} (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
