"""What one request measured: raw timings as recorded, and the figures derived from them."""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000
# Server and client generation rates further apart than this (relative) are flagged.
TPS_DISAGREEMENT = 0.10


def _rate(count: int | None, duration_ns: int | None) -> float | None:
    if not count or not duration_ns or duration_ns <= 0:
        return None
    return count * NS_PER_S / duration_ns


def output_tokens(row: dict[str, Any]) -> int:
    """Generated tokens: the server's eval_count, else the number of content chunks seen."""
    return row.get("eval_count") or len(row.get("token_offsets_s") or [])


def derive(row: dict[str, Any]) -> dict[str, Any]:
    """Figures derived from one stored result row (a dict with RequestResult's field names).

    The definitions are suites/README.md's "What a run measures" table (FIGURES in
    config/reference_prose.py); keep the two in step.
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
