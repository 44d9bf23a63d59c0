"""The history page's load chart: each run's peak throughput per (model, host), with its knee.

Built from the runs' stored load levels only (`level_summaries`, thinned in DuckDB), in the style of
`trends.history_chart`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from novabench.analysis.sweeps import knee_level, level_name, peak_throughput
from novabench.records import LevelSummary
from novabench.report.charts import SERIES_COLORS, base_layout, plotly_text
from novabench.report.long_series import period_text, plain_figure, time_axis
from novabench.report.trends import host_label

PEAK_TITLE = "Peak load throughput"
PEAK_CAPTION = (
    "Per load run, the most output tokens/s any level of its sweep reached; higher is better. "
    "Hover a point for the level it was reached at and where the sweep saturated (its knee)."
)


def sweep_series(
    points: Iterable[Mapping[str, Any]], levels: Mapping[str, Sequence[LevelSummary]]
) -> list[dict[str, Any]]:
    """Every (suite, model, host) that was swept, oldest point first: its points of peak
    throughput thinned in DuckDB by long_series.SERIES_RULE (`Store.peak_points()`), and of
    each run's own point the level of its peak and its knee, from that run's stored load levels
    (`levels`: `Store.level_summaries()` of those runs)."""
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for stored in points:
        point = dict(stored)
        if point["run_id"] is not None:
            of_sweep = [
                lv
                for lv in levels.get(point["run_id"], ())
                if (lv.model, lv.host) == (point["model"], point["host"])
            ]
            at = next(lv for lv in of_sweep if lv.output_tokens_per_s == peak_throughput(of_sweep))
            knee = knee_level(of_sweep)
            point["peak_level"] = level_name(at.kind, at.level)
            point["knee"] = None if knee is None else level_name(knee.kind, knee.level)
        series.setdefault((point["suite"], point["model"], point["host"]), []).append(point)
    return [
        {"suite": suite, "model": model, "host": host, "points": of_line}
        for (suite, model, host), of_line in sorted(series.items())
    ]


def peak_chart(series: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """One suite's line per (model, host) of peak tokens/s over run start, as a Plotly figure
    (a plain dict); None if empty."""
    several_hosts = len({s["host"] for s in series}) > 1
    data = []
    for index, one in enumerate(series):
        name = str(one["model"])
        if several_hosts:
            name += f" @ {host_label(one['host'])}"
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        points = one["points"]
        data.append(
            {
                "type": "scatter",
                "name": plotly_text(name),
                # the page's filters show and hide traces by these
                "meta": {"suite": one["suite"], "model": one["model"], "host": one["host"]},
                "mode": "lines+markers",
                "x": [_iso(p["run_started_at"]) for p in points],
                "y": [round(float(p["peak_tokens_per_s"]), 3) for p in points],
                "text": [_hover(one, p) for p in points],
                "hovertemplate": "%{y:.1f} tokens/s<br>%{text}<extra></extra>",
                "line": {"color": color, "width": 2},
                "marker": {"color": color, "size": 8},
            }
        )
    if not data:
        return None
    fig = plain_figure(data, base_layout("peak output tokens/s", hovermode="closest"))
    time_axis(fig, "run started (UTC)")
    return fig


def _hover(one: Mapping[str, Any], point: Mapping[str, Any]) -> str:
    if point["period"] is not None:
        return "<br>".join(
            [
                f"<b>{plotly_text(one['model'])}</b> · {period_text(point)}",
                f"last run {plotly_text(point['last_run_id'])}",
                f"Ollama {plotly_text(point['ollama_version'] or '?')}",
            ]
        )
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
