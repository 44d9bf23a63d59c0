"""The run page's Load section: each sweep's verdict, its SLOs, a row per level, and its charts.

Every figure comes from `analysis.sweeps` over stored rows, the same arithmetic the terminal prints,
so the page and `novabench run`'s output agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from novabench.analysis.run_view import RunView
from novabench.analysis.sweeps import level_name, limits_of, saturated_at, verdict
from novabench.records import LOAD_MODE, LevelSummary, ModelRecord
from novabench.report import sweep_charts
from novabench.report.figures import figure
from novabench.report.tables import Label

SLO_NAMES = {"ttft_ms": "TTFT", "itl_ms": "ITL", "e2e_ms": "end-to-end"}


def without_load(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the per-mode tables and charts may pool: a sweep's levels are not repetitions."""
    return [r for r in rows if r.get("mode") != LOAD_MODE]


def slo_text(limits: dict[str, float]) -> str | None:
    """'TTFT ≤ 200 ms · end-to-end ≤ 2000 ms'; None without SLOs."""
    if not limits:
        return None
    return " · ".join(f"{SLO_NAMES.get(k, k)} ≤ {v:g} ms" for k, v in limits.items())


def spec_text(load: dict[str, Any] | None) -> str | None:
    """How the sweep was asked to step: '12 requests per level · early stop on saturation'."""
    if not load:
        return None
    parts = [str(load["level_size"])]
    if load["kind"] == "rate":
        parts.append("Poisson arrivals (open loop)")
        parts.append(f"at most {load['max_in_flight']} in flight")
    else:
        parts.append("each stream sends its next request when the last ends (closed loop)")
    parts.append("early stop at saturation" if load["early_stop"] else "no early stop")
    return " · ".join(parts)


@dataclass(frozen=True)
class LevelRow:
    """A level as the section shows it: its figures, its name, whether it is the knee."""

    summary: LevelSummary
    name: str  # '4 concurrent requests'
    is_knee: bool = False  # the level the sweep saturated at
    is_seen: bool = False  # the level that showed the saturation

    def __getattr__(self, name: str) -> Any:  # the template reads the summary's figures
        return getattr(self.summary, name)


def section(view: RunView, models: Sequence[ModelRecord], label: Label) -> dict[str, Any] | None:
    """The section's context from one read of the run; None for a run without load levels.

    A level the run never wrote (killed during it) is rebuilt from its requests by `sweeps`.
    """
    load = view.load_facts
    limits = limits_of(load)
    backends = {(m.model, m.host): m.backend or "ollama" for m in models}
    order = {key: i for i, key in enumerate(backends)}
    found = sorted(view.sweeps.items(), key=lambda kv: order.get(kv[0], len(order)))
    if not found:
        return None
    entries = [
        _sweep(model, host, levels, backends.get((model, host), "ollama"), label)
        for (model, host), levels in found
    ]
    every = [lv.summary for s in entries for lv in s["levels"]]
    has = {
        key: any(getattr(lv, key) is not None for lv in every)
        for key in ("cpu_percent_mean", "server_cpu_percent_mean", "gpu_util_percent_mean")
    }
    kind = entries[0]["kind"] if entries else "concurrency"
    return {
        "sweeps": entries,
        "kind": kind,
        "level_title": "Concurrency" if kind == "concurrency" else "Offered rate",
        "slo": slo_text(limits),
        "has_slo": bool(limits),
        "spec": spec_text(load),
        "has_cpu": has["cpu_percent_mean"],
        "has_server_cpu": has["server_cpu_percent_mean"],
        "has_gpu": has["gpu_util_percent_mean"],
        "figures": _figures(entries, bool(limits)),
    }


def _sweep(
    model: str, host: str, levels: list[LevelSummary], backend: str, label: Label
) -> dict[str, Any]:
    """One model's sweep: its verdict, its levels (each with its name), and its knee if any."""
    measured = [lv for lv in levels if lv.output_tokens_per_s is not None]
    # verdict() judges saturation on the levels that finished a request: so does the knee here
    found = saturated_at(measured)
    knee = measured[found.knee_index] if found is not None else None
    seen = measured[found.seen_index] if found is not None else None
    rows = [LevelRow(lv, level_name(lv.kind, lv.level), lv is knee, lv is seen) for lv in levels]
    return {
        "model": model,
        "host": host,
        "label": label(levels[0]),
        "kind": levels[0].kind,
        "levels": rows,
        "knee": next((row for row in rows if row.is_knee), None),
        "verdict": verdict(levels, backend),
    }


def _figures(entries: list[dict[str, Any]], has_slo: bool) -> list[dict[str, Any]]:
    if not entries:
        return []
    axis = sweep_charts.axis_title(entries[0]["kind"])
    rates = "Completed requests per second" + (
        "; dashed, goodput: those that met every SLO" if has_slo else ""
    )
    made = [
        figure(
            "load-throughput",
            "Throughput by level",
            f"Output tokens per second of all streams together, by {axis}: it grows while the "
            "server has room and flattens where it saturates.",
            sweep_charts.throughput(entries),
        ),
        figure(
            "load-requests",
            "Requests per second by level",
            f"{rates}, over each level's wall time.",
            sweep_charts.request_rates(entries),
        ),
        figure(
            "load-ttft",
            "Time to first token by level",
            "p50 (solid), p95 (dashed) and p99 (dotted) of TTFT: it climbs once requests wait "
            "for a slot.",
            sweep_charts.percentiles(entries, "ttft_ms", "TTFT (ms)"),
        ),
        figure(
            "load-itl",
            "Inter-token latency by level",
            "p50, p95 and p99 of the time between tokens: it climbs when every stream slows "
            "down because the hardware is shared.",
            sweep_charts.percentiles(entries, "itl_ms", "ITL (ms)"),
        ),
        figure(
            "load-curve",
            "Throughput against latency",
            "Each level as a point (labelled with its level), joined in sweep order: pick the "
            "highest point whose p95 end-to-end latency you can accept. The ringed point is the "
            "saturation knee: beyond it latency climbs for little more throughput.",
            sweep_charts.operating_curve(entries),
        ),
    ]
    return [f for f in made if f["json"] is not None]
