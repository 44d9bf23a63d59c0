"""What one level of a load sweep achieved, and where the sweep saturated.

Pure arithmetic over stored result rows (RequestResult field names) and resource samples: the
runner uses it to decide when to stop, the report to draw the curves, so both agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from novabench.analysis.figures import derive, output_tokens
from novabench.analysis.statistics import percentile

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


def meets_slo(figures: dict[str, Any], limits: dict[str, float]) -> bool:
    """True when a successful request's figures are within every limit given.

    A limit on a figure the request does not have (ITL of a one-token answer) is not failed.
    """
    for name, limit in limits.items():
        value = figures.get(name)
        if value is not None and value > limit:
            return False
    return True


def _resources(samples: Iterable[dict[str, Any]], start_s: float, end_s: float) -> dict[str, Any]:
    inside = [s for s in samples if start_s <= s["offset_s"] <= end_s]

    def mean(key: str) -> float | None:
        values = [s[key] for s in inside if s.get(key) is not None]
        return sum(values) / len(values) if values else None

    def peak(key: str) -> float | None:
        values = [s[key] for s in inside if s.get(key) is not None]
        return max(values) if values else None

    return {
        "samples": len(inside),
        "cpu_percent_mean": mean("cpu_percent"),
        "cpu_percent_peak": peak("cpu_percent"),
        "server_cpu_percent_mean": mean("server_cpu_percent"),
        "server_cpu_percent_peak": peak("server_cpu_percent"),
        "server_rss_bytes_peak": peak("server_rss_bytes"),
        "ram_used_bytes_peak": peak("ram_used_bytes"),
        "gpu_util_percent_mean": mean("gpu_util_percent"),
        "gpu_mem_used_bytes_peak": peak("gpu_mem_used_bytes"),
        "gpu_power_w_mean": mean("gpu_power_w"),
    }


def summarize_level(
    level: dict[str, Any],
    rows: Sequence[dict[str, Any]],
    limits: dict[str, float] | None = None,
    samples: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The figures of one level: throughput, latency percentiles, errors, goodput, resources.

    `level` is its load_levels row (kind, level, wall_s, started_offset_s, ...); `rows` are the
    results sent at that level, failed ones included. Rates are over the level's wall time, from
    its first request sent to its last one ended.
    """
    limits = limits or {}
    wall_s = level.get("wall_s") or 0.0
    figures = [derive(r) for r in rows if r.get("error") is None]
    failed = sum(1 for r in rows if r.get("error") is not None)
    tokens = sum(output_tokens(r) for r in rows if r.get("error") is None)
    good = sum(1 for f in figures if meets_slo(f, limits))

    def pct(name: str, q: float) -> float | None:
        return percentile((f[name] for f in figures), q)

    def per_s(count: float) -> float | None:
        return count / wall_s if wall_s > 0 else None

    start = level.get("started_offset_s") or 0.0
    summary = {
        **level,
        "requests": len(rows),
        "ok": len(figures),
        "errors": failed,
        "error_rate": failed / len(rows) if rows else None,
        "output_tokens": tokens,
        "output_tokens_per_s": per_s(tokens),
        "requests_per_s": per_s(len(figures)),
        "goodput_rps": per_s(good) if limits else None,
        "slo_met": good if limits else None,
        "slo_attainment": good / len(rows) if limits and rows else None,
        "stream_tokens_per_s_p50": pct("client_tokens_per_s", 50),
        "queue_ms_p50": pct("queue_ms", 50),
        "queue_ms_p95": pct("queue_ms", 95),
        **_resources(samples, start, start + wall_s),
    }
    for name in SLO_FIGURES:
        for q in (50, 95, 99):
            summary[f"{name}_p{q}"] = pct(name, q)
    return summary


@dataclass(frozen=True)
class Saturation:
    """Where throughput stopped growing: the best level, and the level that showed it."""

    knee_index: int  # the level with the most throughput before the sweep saturated
    seen_index: int  # the first level that gained too little while latency climbed
    gain: float  # throughput gain of the seen level over the knee (relative)
    latency_climb: float  # median e2e rise of the seen level over the knee (relative)


def saturated_at(levels: Sequence[dict[str, Any]]) -> Saturation | None:
    """The first level where throughput stops growing while latency climbs, or None.

    Each level is compared with the best one before it: a perfectly parallel server gains in
    proportion to the level (2× the streams, 2× the tokens/s); gaining less than
    SATURATION_GAIN_SHARE of that while the median e2e latency rises by SATURATION_LATENCY_CLIMB
    or more is saturation.
    """
    best: int | None = None
    for index, level in enumerate(levels):
        throughput = level.get("output_tokens_per_s")
        latency = level.get("e2e_ms_p50")
        if throughput is None or latency is None:
            continue
        if best is not None:
            knee = levels[best]
            ideal_gain = level["level"] / knee["level"] - 1
            gain = throughput / knee["output_tokens_per_s"] - 1
            climb = latency / knee["e2e_ms_p50"] - 1
            if gain < SATURATION_GAIN_SHARE * ideal_gain and climb >= SATURATION_LATENCY_CLIMB:
                return Saturation(best, index, gain, climb)
        if best is None or throughput > levels[best]["output_tokens_per_s"]:
            best = index
    return None


def failing(level: dict[str, Any]) -> bool:
    """True when so many of a level's requests failed that going further tells nothing."""
    rate = level.get("error_rate")
    return rate is not None and rate >= FAILING_ERROR_RATE


def level_name(kind: str, value: float) -> str:
    """'4 concurrent requests', '1 concurrent request', '2.5 requests/s'."""
    if kind == "concurrency":
        count = int(value)
        return f"{count} concurrent request{'' if count == 1 else 's'}"
    return f"{value:g} requests/s"


def verdict(levels: Sequence[dict[str, Any]], backend: str = "ollama") -> str:
    """The sweep's outcome in a sentence or two, for the report and the terminal."""
    measured = [lv for lv in levels if lv.get("output_tokens_per_s") is not None]
    if not measured:
        return "No level finished: nothing to say about throughput yet."
    kind = measured[0]["kind"]
    stop = levels[-1].get("stop_reason")
    if stop in ("interrupted", "aborted"):
        how = "interrupted" if stop == "interrupted" else "stopped (killed or crashed)"
        partial = f" The run was {how} during {level_name(kind, levels[-1]['level'])}"
        return verdict(levels[:-1], backend) + partial + ": that level is partial and not judged."

    if stop == "failing":
        last = levels[-1]
        return (
            f"The sweep stopped at {level_name(kind, last['level'])}: "
            f"{last['error_rate']:.0%} of its requests failed."
        )
    found = saturated_at(measured)
    if found is None:
        top = measured[-1]
        return (
            f"Throughput still grows at the highest level, {level_name(kind, top['level'])} "
            f"({top['output_tokens_per_s']:.0f} tokens/s): the server did not saturate; "
            "add higher levels to find its limit."
        )
    knee, seen = measured[found.knee_index], measured[found.seen_index]
    text = (
        f"Throughput stops growing at {level_name(kind, knee['level'])} "
        f"({knee['output_tokens_per_s']:.0f} tokens/s): at {level_name(kind, seen['level'])} "
        f"it changed {found.gain:+.0%} while median latency rose {found.latency_climb:+.0%}."
    )
    return text + _cause(knee, seen, kind, backend)


def _cause(knee: dict[str, Any], seen: dict[str, Any], kind: str, backend: str) -> str:
    """Why, where the figures say: requests queueing for a slot, or every stream slowing down."""
    queue, e2e = seen.get("queue_ms_p50"), seen.get("e2e_ms_p50")
    if queue is not None and e2e and queue / e2e >= QUEUEING_SHARE:
        text = f" Requests wait in the server's queue (median {queue:.0f} ms at {seen['level']:g})"
        if backend == "ollama" and kind == "concurrency":
            slots = int(knee["level"])
            return text + f": OLLAMA_NUM_PARALLEL is probably {slots}."
        return text + "."
    before, after = knee.get("itl_ms_p50"), seen.get("itl_ms_p50")
    if before and after and after / before - 1 >= SATURATION_LATENCY_CLIMB:
        return (
            f" Every stream slows down instead (ITL p50 {before:.1f} → {after:.1f} ms): "
            "the hardware, not the number of slots, is the limit."
        )
    return ""


def sweeps(
    level_rows: Iterable[dict[str, Any]],
    results: Iterable[dict[str, Any]],
    limits: dict[str, float] | None = None,
    samples: Sequence[dict[str, Any]] = (),
    manifest: dict[str, Any] | None = None,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every model's sweep from stored rows: {(model, host): level summaries in sweep order}.

    `level_rows` are the run's load_levels rows, `results` its result rows (only measured load
    requests are used), `samples` its resource samples. Requests of a level that has no row (the
    run was killed during it) still count: the level is rebuilt from them and the run manifest's
    list of levels, with stop_reason 'aborted'.
    """
    sent: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in results:
        measured = not row.get("is_warmup") and not row.get("is_cold")
        if row.get("mode") == "load" and row.get("load_level") is not None and measured:
            key = (row["model"], row["host"], row["load_level"])
            sent.setdefault(key, []).append(row)
    levels = list(level_rows)
    recorded = {(lv["model"], lv["host"], lv["level_index"]) for lv in levels}
    for key, rows in sent.items():
        if key not in recorded and (rebuilt := _rebuilt_level(key, rows, manifest)) is not None:
            levels.append(rebuilt)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for level in sorted(levels, key=lambda lv: lv["level_index"]):
        rows = sent.get((level["model"], level["host"], level["level_index"]), [])
        summary = summarize_level(level, rows, limits, samples)
        found.setdefault((level["model"], level["host"]), []).append(summary)
    return found


def request_span(rows: Sequence[dict[str, Any]], default_s: float = 0.0) -> tuple[float, float]:
    """(first request sent, last request ended), seconds after the run started: a level's wall
    time. `default_s` for both when there are no rows."""
    if not rows:
        return default_s, default_s
    first = min(r["start_offset_s"] for r in rows)
    last = max(r["start_offset_s"] + (r.get("e2e_s") or 0.0) for r in rows)
    return first, last


def _rebuilt_level(
    key: tuple[str, str, int], rows: list[dict[str, Any]], manifest: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A level row from its requests alone, for a run that ended before writing it."""
    load = (manifest or {}).get("load") or {}
    kind = "concurrency" if load.get("concurrency") else "rate" if load.get("rate") else None
    values = load.get(kind) if kind else None
    model, host, index = key
    if kind is None or not values or index >= len(values):
        return None
    first, last = request_span(rows)
    return {
        "model": model,
        "host": host,
        "level_index": index,
        "kind": kind,
        "level": float(values[index]),
        "started_offset_s": first,
        "wall_s": last - first,
        "requests": len(rows),
        "delayed_arrivals": 0,
        "stop_reason": "aborted",
    }


def limits_of(manifest: dict[str, Any] | None) -> dict[str, float]:
    """The SLO limits a run was given, from its manifest (empty when it had none)."""
    load = (manifest or {}).get("load") or {}
    slo = load.get("slo") or {}
    return {name: float(slo[name]) for name in SLO_FIGURES if slo.get(name) is not None}


def load_sweeps(
    store: Store, run_id: str, results: Sequence[dict[str, Any]] | None = None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """A stored run's sweeps, read from `store`: {(model, host): level summaries}, with its SLOs
    and resource samples applied. `results`: the run's result rows when already read."""
    manifest = store.get_run(run_id).get("manifest")
    return sweeps(
        store.load_levels(run_id),
        store.results(run_id) if results is None else results,
        limits_of(manifest),
        store.samples(run_id),
        manifest=manifest,
    )
