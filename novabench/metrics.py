"""What one request measured: raw timings as recorded, and the figures derived from them."""

from __future__ import annotations

import math
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


# What the results table's columns hold (INTEGER is 32-bit, BIGINT 64-bit, in DuckDB).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Server-reported fields: (field, what it is, the largest value the column holds).
_SERVER_INTEGERS = (
    ("prompt_eval_count", "a token count", INT32_MAX),
    ("eval_count", "a token count", INT32_MAX),
    ("prompt_eval_duration_ns", "a duration in ns", INT64_MAX),
    ("eval_duration_ns", "a duration in ns", INT64_MAX),
    ("load_duration_ns", "a duration in ns", INT64_MAX),
    ("total_duration_ns", "a duration in ns", INT64_MAX),
)
_CLIENT_INTEGERS = (("chunk_count", INT32_MAX), ("response_bytes", INT64_MAX))
_TEXTS = ("response_text", "thinking_text", "done_reason", "error")


def make_storable(result: RequestResult) -> None:
    """Make a result fit the results table, whatever the engine recorded.

    A server value that is no count or duration the table can hold (out of range, negative,
    not finite, not an integer) is dropped (stored as NULL) and the request becomes an error row
    naming the field and the value as sent; text with invalid Unicode (a lone surrogate from a
    JSON escape) is kept with U+FFFD in place of the bad characters, and also makes it an error
    row. Called where a result leaves its engine, and again before it is stored.
    """
    problems: list[str] = []
    for name, what, largest in _SERVER_INTEGERS:
        value = getattr(result, name)
        if value is None:
            continue
        fixed = _whole_number(value, largest)
        setattr(result, name, fixed)
        if fixed is None:
            problems.append(f"{name}={_shown(value)} (not {what} from 0 to {largest})")
    for name, largest in _CLIENT_INTEGERS:
        value = getattr(result, name)
        if _whole_number(value, largest) is None:
            setattr(result, name, 0)
            problems.append(f"{name}={_shown(value)} (out of range)")
    if not _finite_offset(result.ttft_s):
        problems.append(f"ttft_s={_shown(result.ttft_s)} (not a time)")
        result.ttft_s = None
    if not _finite_offset(result.e2e_s):
        problems.append(f"e2e_s={_shown(result.e2e_s)} (not a time)")
        result.e2e_s = None
    if not all(_finite_offset(t) for t in result.token_offsets_s):
        problems.append("token arrival times (not finite)")
        result.token_offsets_s = [t for t in result.token_offsets_s if _finite_offset(t)]
    if result.http_status is not None and _whole_number(result.http_status, 999) is None:
        result.http_status = None
    for name in _TEXTS:
        text = getattr(result, name)
        if text is not None and not _valid_unicode(text):
            setattr(result, name, _replace_invalid(text))
            if name != "error":
                problems.append(f"{name} has invalid Unicode (a lone surrogate, shown as U+FFFD)")
    if problems:
        found = "server sent values that cannot be stored: " + "; ".join(problems)
        result.error = found if result.error is None else f"{result.error}; {found}"


def _whole_number(value: object, largest: int) -> int | None:
    """`value` as an int in 0..largest, or None (floats only when whole and finite)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= largest:
        return value
    return None


def _finite_offset(value: float | None) -> bool:
    return value is None or (
        isinstance(value, int | float) and math.isfinite(value) and -1e9 < value < 1e9
    )


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _valid_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _replace_invalid(text: str) -> str:
    # Through UTF-16: a surrogate pair written as two escapes becomes its character, a lone one
    # U+FFFD.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


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
