"""What one request measured: raw timings as recorded, and the figures derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NS_PER_S = 1_000_000_000


@dataclass
class RequestResult:
    """One request's raw facts: client clock readings, server fields, the text, or the error.

    Client times are seconds on `time.perf_counter`, relative to the moment the request was sent.
    `token_offsets_s` holds the arrival time of every chunk that carried content or thinking.
    """

    mode: str
    model: str
    host: str
    prompt_id: str
    repetition: int
    is_warmup: bool
    started_at: datetime
    start_offset_s: float = 0.0  # request sent, seconds after the run started
    ttft_s: float | None = None
    e2e_s: float | None = None
    chunk_count: int = 0
    response_bytes: int = 0
    token_offsets_s: list[float] = field(default_factory=list)
    prompt_eval_count: int | None = None
    prompt_eval_duration_ns: int | None = None
    eval_count: int | None = None
    eval_duration_ns: int | None = None
    load_duration_ns: int | None = None
    total_duration_ns: int | None = None
    done_reason: str | None = None
    response_text: str = ""
    thinking_text: str = ""
    error: str | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _rate(count: int | None, duration_ns: int | None) -> float | None:
    if not count or not duration_ns or duration_ns <= 0:
        return None
    return count * NS_PER_S / duration_ns


def output_tokens(row: dict[str, Any]) -> int:
    """Generated tokens: the server's eval_count, else the number of content chunks seen."""
    return row.get("eval_count") or len(row.get("token_offsets_s") or [])


def derive(row: dict[str, Any]) -> dict[str, float | None]:
    """Figures derived from one stored result row (a dict with RequestResult's field names)."""
    offsets = row.get("token_offsets_s") or []
    tokens = output_tokens(row)
    stream_s = offsets[-1] - offsets[0] if len(offsets) >= 2 else None
    itl_s = stream_s / (tokens - 1) if stream_s is not None and tokens > 1 else None
    client_tps = tokens / stream_s if stream_s else None
    return {
        "ttft_ms": _ms(row.get("ttft_s")),
        "e2e_ms": _ms(row.get("e2e_s")),
        "itl_ms": _ms(itl_s),
        "eval_tokens_per_s": _rate(row.get("eval_count"), row.get("eval_duration_ns")),
        "prompt_tokens_per_s": _rate(
            row.get("prompt_eval_count"), row.get("prompt_eval_duration_ns")
        ),
        "client_tokens_per_s": client_tps,
        "load_ms": _ns_to_ms(row.get("load_duration_ns")),
        "total_ms": _ns_to_ms(row.get("total_duration_ns")),
        "output_tokens": float(tokens),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _ns_to_ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e6
