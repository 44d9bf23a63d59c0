"""What one request measured: the figures derived from its raw timings, by one definition each.

The rules are suites/README.md's "What a run measures" table (the report says the same); the
export computes the same figures in SQL (storage/export.py, held in step by a test).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from novabench.analysis.arrivals import Arrivals, arrivals_of_many
from novabench.records import Figures, Request, StoredResult, from_fields

NS_PER_S = 1_000_000_000
# Server and client generation rates further apart than this (relative) are flagged.
TPS_DISAGREEMENT = 0.10
# A prompt counts as served from the KV cache when its prompt tokens/s is this many times the
# slowest (uncached) rate seen for the same host, model and prompt in the run.
PROMPT_CACHE_FACTOR = 5.0


class Timed(Protocol):
    """The raw facts the figures come from: a RequestResult, a StoredResult, a HistoryRow."""

    @property
    def ttft_s(self) -> float | None: ...
    @property
    def e2e_s(self) -> float | None: ...
    @property
    def token_offsets_s(self) -> Sequence[float]: ...
    @property
    def eval_count(self) -> int | None: ...
    @property
    def eval_duration_ns(self) -> int | None: ...
    @property
    def prompt_eval_count(self) -> int | None: ...
    @property
    def prompt_eval_duration_ns(self) -> int | None: ...
    @property
    def load_duration_ns(self) -> int | None: ...
    @property
    def total_duration_ns(self) -> int | None: ...


class Counted(Protocol):
    @property
    def is_warmup(self) -> bool: ...
    @property
    def is_cold(self) -> bool: ...


def is_measured(request: Counted) -> bool:
    """A warm, counted request: neither a warm-up nor a cold start (storage's MEASURED_SQL)."""
    return not request.is_warmup and not request.is_cold


def _rate(count: int | None, duration_ns: int | None) -> float | None:
    if not count or not duration_ns or duration_ns <= 0:
        return None
    return count * NS_PER_S / duration_ns


def output_tokens(request: Timed) -> int:
    """Generated tokens: the server's eval_count, else the number of content chunks seen."""
    return request.eval_count or len(request.token_offsets_s or ())


def arrivals(offsets: Sequence[float]) -> Arrivals:
    """The arrivals of one request (analysis/arrivals.py gives the same for many at once)."""
    gaps_ms = [(b - a) * 1000.0 for a, b in zip(offsets, offsets[1:], strict=False)]
    return Arrivals(
        chunks=len(offsets),
        first_s=offsets[0] if len(offsets) else None,
        last_s=offsets[-1] if len(offsets) else None,
        gap_p50_ms=quantile(gaps_ms, 0.50),
        gap_p95_ms=quantile(gaps_ms, 0.95),
        gap_p99_ms=quantile(gaps_ms, 0.99),
        gap_max_ms=max(gaps_ms) if gaps_ms else None,
    )


def derive(request: Timed, found: Arrivals | None = None) -> Figures:
    """The figures of one request: suites/README.md's "What a run measures" table (FIGURES in
    config/reference_prose.py); keep the two in step. `found`: its arrivals, when computed
    already (for many requests at once)."""
    if found is None:
        found = arrivals(request.token_offsets_s or ())
    tokens = request.eval_count or found.chunks
    ttft_s, e2e_s = request.ttft_s, request.e2e_s
    stream_s = (
        found.last_s - found.first_s
        if found.chunks >= 2 and found.last_s is not None and found.first_s is not None
        else None
    )
    itl_s = stream_s / (tokens - 1) if stream_s is not None and tokens > 1 else None
    tpot_s = (
        (e2e_s - ttft_s) / (tokens - 1)
        if e2e_s is not None and ttft_s is not None and tokens > 1
        else None
    )
    server_tps = _rate(request.eval_count, request.eval_duration_ns)
    return Figures(
        ttft_ms=_ms(ttft_s),
        e2e_ms=_ms(e2e_s),
        itl_ms=_ms(itl_s),
        tpot_ms=_ms(tpot_s),
        gap_p50_ms=found.gap_p50_ms,
        gap_p95_ms=found.gap_p95_ms,
        gap_p99_ms=found.gap_p99_ms,
        gap_max_ms=found.gap_max_ms,
        eval_tokens_per_s=server_tps,
        prompt_tokens_per_s=_rate(request.prompt_eval_count, request.prompt_eval_duration_ns),
        client_tokens_per_s=tokens / stream_s if stream_s else None,
        # Judged on the inter-token rate (tokens - 1 gaps): the client rate counts n tokens over
        # n - 1 gaps, n/(n-1) above the server's rate for short answers (+14% at 8 tokens).
        tps_disagreement=(
            abs(1 / itl_s - server_tps) / server_tps > TPS_DISAGREEMENT
            if itl_s and server_tps
            else None
        ),
        load_ms=_ns_to_ms(request.load_duration_ns),
        total_ms=_ns_to_ms(request.total_duration_ns),
        queue_ms=_ns_to_ms(queue_ns(request)),
        output_tokens=float(tokens),
    )


def with_figures(results: Iterable[StoredResult]) -> list[Request]:
    """Each stored result with its figures, and whether its prompt was read from the KV cache."""
    listed = list(results)
    each = arrivals_of_many([r.token_offsets_s or () for r in listed])
    found = [(result, derive(result, a)) for result, a in zip(listed, each, strict=True)]
    slowest: dict[tuple[str, str, str], float] = {}
    for result, figures in found:
        rate = figures.prompt_tokens_per_s
        key = (result.host, result.model, result.prompt_id)
        if rate is not None:
            slowest[key] = min(rate, slowest.get(key, rate))
    requests = []
    for result, figures in found:
        rate = figures.prompt_tokens_per_s
        reference = slowest.get((result.host, result.model, result.prompt_id))
        cached = bool(
            result.prompt_eval_count
            and (rate is None or (reference and rate > PROMPT_CACHE_FACTOR * reference))
        )
        requests.append(_request(result, figures, cached))
    return requests


def _request(result: StoredResult, figures: Figures, prompt_cached: bool) -> Request:
    # a run of 100,000 requests makes 100,000 of them: the fields merged in C, no __init__
    return from_fields(Request, {**vars(result), **vars(figures), "prompt_cached": prompt_cached})


def queue_ns(request: Timed) -> int | None:
    """Server time not spent loading, reading the prompt or generating: waiting for a slot."""
    total = request.total_duration_ns
    if total is None:
        return None
    parts = (
        (request.load_duration_ns or 0)
        + (request.prompt_eval_duration_ns or 0)
        + (request.eval_duration_ns or 0)
    )
    return max(0, total - parts)


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0-1) by linear interpolation between closest ranks (numpy's default):
    the one definition of a percentile everywhere in novabench."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    a, b, t = ordered[low], ordered[high], position - low
    # numpy's own lerp, so that the result is numpy.percentile's to the last bit
    return a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def _ns_to_ms(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e6
