"""The history page's load chart: each run's peak throughput per (model, host), with its knee.

Built from stored rows only (`load_sweeps` per run), in the style of `trends.history_chart`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from novabench.analysis.sweeps import knee_level, level_name, load_sweeps, peak_throughput
from novabench.records import LOAD_MODE
from novabench.report.charts import SERIES_COLORS, base_layout, plotly_text
from novabench.report.trends import host_label
from novabench.storage.store import Store

PEAK_TITLE = "Peak load throughput"
PEAK_CAPTION = (
    "Per load run, the most output tokens/s any level of its sweep reached; higher is better. "
    "Hover a point for the level it was reached at and where the sweep saturated (its knee)."
)


def sweep_series(store: Store) -> list[dict[str, Any]]:
    """Every (suite, model, host) that was swept, with a point per run, oldest first."""
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    runs = sorted(store.list_runs(), key=lambda r: (r.started_at, r.run_id))
    for run in runs:
        if LOAD_MODE not in (run.modes or ()):
            continue  # only runs whose suite asked for a sweep can have one
        versions = store.get_run(run.run_id).host_versions or {}
        for (model, host), levels in load_sweeps(store, run.run_id).items():
            peak = peak_throughput(levels)
            if peak is None:
                continue  # no level finished
            at = next(lv for lv in levels if lv.output_tokens_per_s == peak)
            knee = knee_level(levels)
            series.setdefault((run.suite_name, model, host), []).append(
                {
                    "run_id": run.run_id,
                    "run_started_at": run.started_at,
                    "status": run.status,
                    "ollama_version": versions.get(host),
                    "peak_tokens_per_s": peak,
                    "peak_level": level_name(at.kind, at.level),
                    "knee": None if knee is None else level_name(knee.kind, knee.level),
                }
            )
    return [
        {"suite": suite, "model": model, "host": host, "points": points}
        for (suite, model, host), points in sorted(series.items())
    ]


def peak_chart(series: Sequence[Mapping[str, Any]]) -> go.Figure | None:
    """One suite's line per (model, host) of peak tokens/s over run start; None if empty."""
    several_hosts = len({s["host"] for s in series}) > 1
    fig = go.Figure()
    for index, one in enumerate(series):
        name = str(one["model"])
        if several_hosts:
            name += f" @ {host_label(one['host'])}"
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        points = one["points"]
        fig.add_trace(
            go.Scatter(
                name=plotly_text(name),
                # the page's filters show and hide traces by these
                meta={"suite": one["suite"], "model": one["model"], "host": one["host"]},
                mode="lines+markers",
                x=[_iso(p["run_started_at"]) for p in points],
                y=[round(float(p["peak_tokens_per_s"]), 3) for p in points],
                text=[_hover(one, p) for p in points],
                hovertemplate="%{y:.1f} tokens/s<br>%{text}<extra></extra>",
                line={"color": color, "width": 2},
                marker={"color": color, "size": 8},
            )
        )
    if not fig.data:
        return None
    fig.update_layout(base_layout("peak output tokens/s", hovermode="closest"))
    fig.update_xaxes(type="date", title={"text": "run started (UTC)"})
    return fig


def _hover(one: Mapping[str, Any], point: Mapping[str, Any]) -> str:
    knee = (
        f"knee at {point['knee']}" if point["knee"] else "did not saturate (no knee in the sweep)"
    )
    return "<br>".join(
        [
            f"<b>{plotly_text(one['model'])}</b> · run {plotly_text(point['run_id'])}",
            f"peak at {plotly_text(point['peak_level'])}",
            plotly_text(knee),
            f"Ollama {plotly_text(point['ollama_version'] or '?')}",
        ]
    )


def _iso(value: Any) -> str:
    return value.isoformat(sep=" ") if hasattr(value, "isoformat") else str(value)
