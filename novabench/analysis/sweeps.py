"""What one level of a load sweep achieved, and where the sweep saturated.

Pure arithmetic over stored records and resource samples: the runner uses it to decide when to
stop, the report and the terminal to show the curves, so they all agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from novabench.analysis.figures import derive, is_measured, output_tokens
from novabench.analysis.resources import window_stats
from novabench.analysis.statistics import percentile
from novabench.records import (
    LOAD_MODE,
    Figures,
    LevelRecord,
    LevelSummary,
    RequestResult,
    ResourceSample,
    StoredResult,
)

if TYPE_CHECKING:
    from novabench.storage.store import Store

# Saturation: a level gains less than this share of the throughput a perfectly parallel server
# would add (doubling the streams would double it) over the best level before it...
SATURATION_GAIN_SHARE = 0.25
# ...while its median end-to-end latency is at least this much (relative) above that level's.
SATURATION_LATENCY_CLIMB = 0.20
# A level where at least this share of requests failed ends the sweep: the server is failing.
FAILING_ERROR_RATE = 0.5
# The queue wait share of e2e above which requests are said to wait for a slot in the server.
QUEUEING_SHARE = 0.2

SLO_FIGURES = ("ttft_ms", "itl_ms", "e2e_ms")


def meets_slo(figures: Figures, limits: Mapping[str, float]) -> bool:
    """True when a successful request's figures are within every limit given.

    A limit on a figure the request does not have (ITL of a one-token answer) is not failed.
    """
    for name, limit in limits.items():
        value = getattr(figures, name)
        if value is not None and value > limit:
            return False
    return True


def summarize_level(
    level: LevelRecord,
    results: Sequence[StoredResult | RequestResult],
    limits: Mapping[str, float] | None = None,
    samples: Sequence[ResourceSample] = (),
) -> LevelSummary:
    """The figures of one level: throughput, latency percentiles, errors, goodput, resources.

    `results` are the requests sent at that level, failed ones included. Rates are over the
    level's wall time, from its first request sent to its last one ended.
    """
    limits = limits or {}
    wall_s = level.wall_s or 0.0
    ok = [r for r in results if r.error is None]
    # a Request carries its figures already: deriving them again costs seconds at 100,000
    figures = [r if isinstance(r, Figures) else derive(r) for r in ok]
    failed = len(results) - len(ok)
    tokens = sum(output_tokens(r) for r in ok)
    good = sum(1 for f in figures if meets_slo(f, limits))

    ordered: dict[str, list[float]] = {}  # each figure's values sorted once for its percentiles

    def pct(name: str, q: float) -> float | None:
        if name not in ordered:
            ordered[name] = sorted(v for v in (getattr(f, name) for f in figures) if _finite(v))
        return percentile(ordered[name], q)

    def per_s(count: float) -> float | None:
        return count / wall_s if wall_s > 0 else None

    start = level.started_offset_s or 0.0
    used = window_stats(samples, start, start + wall_s)
    return LevelSummary(
        model=level.model,
        host=level.host,
        level_index=level.level_index,
        kind=level.kind,
        level=level.level,
        started_offset_s=level.started_offset_s,
        wall_s=level.wall_s,
        requests=len(results),
        delayed_arrivals=level.delayed_arrivals,
        stop_reason=level.stop_reason,
        started_at=level.started_at,
        ok=len(figures),
        errors=failed,
        error_rate=failed / len(results) if results else None,
        output_tokens=tokens,
        output_tokens_per_s=per_s(tokens),
        requests_per_s=per_s(len(figures)),
        goodput_rps=per_s(good) if limits else None,
        slo_met=good if limits else None,
        slo_attainment=good / len(results) if limits and results else None,
        stream_tokens_per_s_p50=pct("client_tokens_per_s", 50),
        queue_ms_p50=pct("queue_ms", 50),
        queue_ms_p95=pct("queue_ms", 95),
        ttft_ms_p50=pct("ttft_ms", 50),
        ttft_ms_p95=pct("ttft_ms", 95),
        ttft_ms_p99=pct("ttft_ms", 99),
        itl_ms_p50=pct("itl_ms", 50),
        itl_ms_p95=pct("itl_ms", 95),
        itl_ms_p99=pct("itl_ms", 99),
        e2e_ms_p50=pct("e2e_ms", 50),
        e2e_ms_p95=pct("e2e_ms", 95),
        e2e_ms_p99=pct("e2e_ms", 99),
        samples=used.samples,
        cpu_percent_mean=used.mean["cpu_percent"],
        cpu_percent_peak=used.peak["cpu_percent"],
        server_cpu_percent_mean=used.mean["server_cpu_percent"],
        server_cpu_percent_peak=used.peak["server_cpu_percent"],
        server_rss_bytes_peak=used.peak["server_rss_bytes"],
        ram_used_bytes_peak=used.peak["ram_used_bytes"],
        gpu_util_percent_mean=used.mean["gpu_util_percent"],
        gpu_mem_used_bytes_peak=used.peak["gpu_mem_used_bytes"],
        gpu_power_w_mean=used.mean["gpu_power_w"],
    )


def _finite(value: float | None) -> bool:
    """What statistics.percentile counts: a value, not NaN or infinite."""
    return value is not None and math.isfinite(value)


@dataclass(frozen=True)
class Saturation:
    """Where throughput stopped growing: the best level, and the level that showed it."""

    knee_index: int  # the level with the most throughput before the sweep saturated
    seen_index: int  # the first level that gained too little while latency climbed
    gain: float  # throughput gain of the seen level over the knee (relative)
    latency_climb: float  # median e2e rise of the seen level over the knee (relative)


def saturated_at(levels: Sequence[LevelSummary]) -> Saturation | None:
    """The first level where throughput stops growing while latency climbs, or None.

    Each level is compared with the best one before it: a perfectly parallel server gains in
    proportion to the level (2× the streams, 2× the tokens/s); gaining less than
    SATURATION_GAIN_SHARE of that while the median e2e latency rises by SATURATION_LATENCY_CLIMB
    or more is saturation.
    """
    best: LevelSummary | None = None
    best_index = 0
    for index, level in enumerate(levels):
        throughput, latency = level.output_tokens_per_s, level.e2e_ms_p50
        if throughput is None or latency is None:
            continue
        if best is not None:
            assert best.output_tokens_per_s is not None and best.e2e_ms_p50 is not None
            ideal_gain = level.level / best.level - 1
            gain = throughput / best.output_tokens_per_s - 1
            climb = latency / best.e2e_ms_p50 - 1
            if gain < SATURATION_GAIN_SHARE * ideal_gain and climb >= SATURATION_LATENCY_CLIMB:
                return Saturation(best_index, index, gain, climb)
        if best is None or throughput > (best.output_tokens_per_s or 0.0):
            best, best_index = level, index
    return None


def knee_level(levels: Sequence[LevelSummary]) -> LevelSummary | None:
    """The level a sweep saturated at (its knee), or None when it did not saturate."""
    measured = [lv for lv in levels if lv.output_tokens_per_s is not None]
    found = saturated_at(measured)
    return None if found is None else measured[found.knee_index]


def peak_throughput(levels: Sequence[LevelSummary]) -> float | None:
    """The most output tokens/s any level of a sweep reached."""
    rates = [lv.output_tokens_per_s for lv in levels if lv.output_tokens_per_s]
    return max(rates) if rates else None


def failing(level: LevelSummary) -> bool:
    """True when so many of a level's requests failed that going further tells nothing."""
    return level.error_rate is not None and level.error_rate >= FAILING_ERROR_RATE


def level_name(kind: str, value: float) -> str:
    """'4 concurrent requests', '1 concurrent request', '2.5 requests/s'."""
    if kind == "concurrency":
        count = int(value)
        return f"{count} concurrent request{'' if count == 1 else 's'}"
    return f"{value:g} requests/s"


def verdict(levels: Sequence[LevelSummary], backend: str = "ollama") -> str:
    """The sweep's outcome in a sentence or two, for the report and the terminal."""
    measured = [lv for lv in levels if lv.output_tokens_per_s is not None]
    if not measured:
        return "No level finished: nothing to say about throughput yet."
    kind, last = measured[0].kind, levels[-1]
    if last.stop_reason in ("interrupted", "aborted"):
        how = "interrupted" if last.stop_reason == "interrupted" else "stopped (killed or crashed)"
        partial = f" The run was {how} during {level_name(kind, last.level)}"
        return verdict(levels[:-1], backend) + partial + ": that level is partial and not judged."
    if last.stop_reason == "failing":
        return (
            f"The sweep stopped at {level_name(kind, last.level)}: "
            f"{last.error_rate or 0:.0%} of its requests failed."
        )
    found = saturated_at(measured)
    if found is None:
        top = measured[-1]
        return (
            f"Throughput still grows at the highest level, {level_name(kind, top.level)} "
            f"({top.output_tokens_per_s or 0:.0f} tokens/s): the server did not saturate; "
            "add higher levels to find its limit."
        )
    knee, seen = measured[found.knee_index], measured[found.seen_index]
    text = (
        f"Throughput stops growing at {level_name(kind, knee.level)} "
        f"({knee.output_tokens_per_s or 0:.0f} tokens/s): at {level_name(kind, seen.level)} "
        f"it changed {found.gain:+.0%} while median latency rose {found.latency_climb:+.0%}."
    )
    return text + _cause(knee, seen, kind, backend)


def _cause(knee: LevelSummary, seen: LevelSummary, kind: str, backend: str) -> str:
    """Why, where the figures say: requests queueing for a slot, or every stream slowing down."""
    queue, e2e = seen.queue_ms_p50, seen.e2e_ms_p50
    if queue is not None and e2e and queue / e2e >= QUEUEING_SHARE:
        text = f" Requests wait in the server's queue (median {queue:.0f} ms at {seen.level:g})"
        if backend == "ollama" and kind == "concurrency":
            return text + f": OLLAMA_NUM_PARALLEL is probably {int(knee.level)}."
        return text + "."
    before, after = knee.itl_ms_p50, seen.itl_ms_p50
    if before and after and after / before - 1 >= SATURATION_LATENCY_CLIMB:
        return (
            f" Every stream slows down instead (ITL p50 {before:.1f} → {after:.1f} ms): "
            "the hardware, not the number of slots, is the limit."
        )
    return ""


def sweeps(
    levels: Iterable[LevelRecord],
    results: Iterable[StoredResult],
    limits: Mapping[str, float] | None = None,
    samples: Sequence[ResourceSample] = (),
    load: Mapping[str, Any] | None = None,
) -> dict[tuple[str, str], list[LevelSummary]]:
    """Every model's sweep from stored records: {(model, host): level summaries in sweep order}.

    `levels` are the run's load levels, `results` its results (only measured load requests are
    used), `samples` its resource samples. Requests of a level that has no record (the run was
    killed during it) still count: the level is rebuilt from them and `load`, the sweep's facts
    stored with the run (its kind and levels), with stop_reason 'aborted'.
    """
    sent: dict[tuple[str, str, int], list[StoredResult]] = {}
    for result in results:
        if result.mode == LOAD_MODE and result.load_level is not None and is_measured(result):
            key = (result.model, result.host, result.load_level)
            sent.setdefault(key, []).append(result)
    found_levels = list(levels)
    recorded = {(lv.model, lv.host, lv.level_index) for lv in found_levels}
    for key, rows in sent.items():
        if key not in recorded and (rebuilt := _rebuilt_level(key, rows, load)) is not None:
            found_levels.append(rebuilt)
    found: dict[tuple[str, str], list[LevelSummary]] = {}
    for level in sorted(found_levels, key=lambda lv: lv.level_index):
        rows = sent.get((level.model, level.host, level.level_index), [])
        summary = summarize_level(level, rows, limits, samples)
        found.setdefault((level.model, level.host), []).append(summary)
    return found


class Spanned(Protocol):
    @property
    def start_offset_s(self) -> float: ...
    @property
    def e2e_s(self) -> float | None: ...


def request_span(requests: Sequence[Spanned], default_s: float = 0.0) -> tuple[float, float]:
    """(first request sent, last request ended), seconds after the run started: a level's wall
    time. `default_s` for both when there are no requests."""
    if not requests:
        return default_s, default_s
    first = min(r.start_offset_s for r in requests)
    last = max(r.start_offset_s + (r.e2e_s or 0.0) for r in requests)
    return first, last


def level_record(
    model: str,
    host: str,
    level_index: int,
    kind: str,
    value: float,
    requests: Sequence[Spanned],
    started_offset_s: float = 0.0,
    **facts: Any,
) -> LevelRecord:
    """The record of a level from its requests: the one definition of a level's span and size,
    for a level the sweep finished and for one a killed run left without its record."""
    first, last = request_span(requests, started_offset_s)
    return LevelRecord(
        model=model,
        host=host,
        level_index=level_index,
        kind=kind,
        level=float(value),
        started_offset_s=first,
        wall_s=max(0.0, last - first),
        requests=len(requests),
        delayed_arrivals=facts.pop("delayed_arrivals", 0),
        stop_reason=facts.pop("stop_reason", None),
        **facts,
    )


def _rebuilt_level(
    key: tuple[str, str, int], requests: list[StoredResult], load: Mapping[str, Any] | None
) -> LevelRecord | None:
    """A level record from its requests alone, for a run that ended before writing it."""
    kind = (load or {}).get("kind")
    values = (load or {}).get("levels")
    model, host, index = key
    if kind is None or not values or index >= len(values):
        return None
    return level_record(model, host, index, kind, values[index], requests, stop_reason="aborted")


def limits_of(load: Mapping[str, Any] | None) -> dict[str, float]:
    """The SLO limits a sweep was given, from its facts (empty when it had none)."""
    slo = (load or {}).get("slo") or {}
    return {name: float(slo[name]) for name in SLO_FIGURES if slo.get(name) is not None}


def load_sweeps(
    store: Store, run_id: str, results: Sequence[StoredResult] | None = None
) -> dict[tuple[str, str], list[LevelSummary]]:
    """A stored run's sweeps, read from `store`: {(model, host): level summaries}, with its SLOs
    and resource samples applied. `results`: the run's results when already read."""
    load = (store.get_run(run_id).facts or {}).get("load")
    return sweeps(
        store.load_levels(run_id),
        store.results(run_id) if results is None else results,
        limits_of(load),
        store.samples(run_id),
        load=load,
    )


def with_stop_reason(level: LevelSummary, stop_reason: str | None) -> LevelSummary:
    """The same level, saying why the sweep stopped there."""
    return replace(level, stop_reason=stop_reason)
