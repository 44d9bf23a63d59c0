"""What one request measured: raw timings as recorded, and the figures derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NS_PER_S = 1_000_000_000
# Server and client generation rates further apart than this (relative) are flagged.
TPS_DISAGREEMENT = 0.10


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
    is_cold: bool = False  # the first request after unloading the model
    backend: str = "ollama"  # the engine that served it
    checks: dict[str, bool] | None = None  # quality check name -> passed
    load_level: int | None = None  # load mode: the index of the level it was sent at

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


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """Figures derived from one stored result row (a dict with RequestResult's field names).

    The definitions are the README's "What it measures" table; keep the two in step.
    """
    offsets = row.get("token_offsets_s") or []
    tokens = output_tokens(row)
    ttft_s, e2e_s = row.get("ttft_s"), row.get("e2e_s")
    stream_s = offsets[-1] - offsets[0] if len(offsets) >= 2 else None
    itl_s = stream_s / (tokens - 1) if stream_s is not None and tokens > 1 else None
    tpot_s = (
        (e2e_s - ttft_s) / (tokens - 1)
        if e2e_s is not None and ttft_s is not None and tokens > 1
        else None
    )
    client_tps = tokens / stream_s if stream_s else None
    server_tps = _rate(row.get("eval_count"), row.get("eval_duration_ns"))
    gaps_ms = [(b - a) * 1000.0 for a, b in zip(offsets, offsets[1:], strict=False)]
    return {
        "ttft_ms": _ms(ttft_s),
        "e2e_ms": _ms(e2e_s),
        "itl_ms": _ms(itl_s),
        "tpot_ms": _ms(tpot_s),
        "gap_p50_ms": quantile(gaps_ms, 0.50),
        "gap_p95_ms": quantile(gaps_ms, 0.95),
        "gap_p99_ms": quantile(gaps_ms, 0.99),
        "gap_max_ms": max(gaps_ms) if gaps_ms else None,
        "eval_tokens_per_s": server_tps,
        "prompt_tokens_per_s": _rate(
            row.get("prompt_eval_count"), row.get("prompt_eval_duration_ns")
        ),
        "client_tokens_per_s": client_tps,
        # Judged on the inter-token rate (tokens - 1 gaps): client_tps counts n tokens over
        # n - 1 gaps, n/(n-1) above the server's rate for short answers (+14% at 8 tokens).
        "tps_disagreement": (
            abs(1 / itl_s - server_tps) / server_tps > TPS_DISAGREEMENT
            if itl_s and server_tps
            else None
        ),
        "load_ms": _ns_to_ms(row.get("load_duration_ns")),
        "total_ms": _ns_to_ms(row.get("total_duration_ns")),
        "queue_ms": _ns_to_ms(queue_ns(row)),
        "output_tokens": float(tokens),
    }


def queue_ns(row: dict[str, Any]) -> int | None:
    """Server time not spent loading, reading the prompt or generating: waiting for a slot."""
    total = row.get("total_duration_ns")
    if total is None:
        return None
    parts = sum(
        row.get(k) or 0 for k in ("load_duration_ns", "prompt_eval_duration_ns", "eval_duration_ns")
    )
    return max(0, total - parts)


def quantile(values: list[float], q: float) -> float | None:
    """Linear-interpolated quantile of a short list (the numpy definition), without numpy."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _ns_to_ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e6
