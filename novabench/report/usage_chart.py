"""The resource chart of a run page: CPU and memory over the run (averaged in buckets beyond
MAX_SAMPLE_POINTS samples) above every request as a bar on the same time axis."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from novabench.analysis.figures import is_measured
from novabench.records import Request, ResourceSample
from novabench.report.charts import SERIES_COLORS, base_layout, plotly_text
from novabench.report.tables import Label
from novabench.report.thinning import Tally, per_trace, thin

GIB = 2**30


# Resource samples beyond this many are averaged in buckets: a long run must not make a heavy page.
MAX_SAMPLE_POINTS = 2000


# (sample column, trace name, subplot, scale) of the resource chart; "cores" divides by the
# logical core count, so the server's share sits on the machine's 0-100% scale.
RESOURCE_SERIES: tuple[tuple[str, str, str, float | str, str], ...] = (
    ("cpu_percent", "CPU (system)", "cpu", 1.0, "#4f46e5"),
    ("server_cpu_percent", "Ollama server CPU", "cpu", "cores", "#0891b2"),
    ("gpu_util_percent", "GPU utilisation", "cpu", 1.0, "#10b981"),
    ("ram_used_bytes", "RAM used", "memory", 1 / GIB, "#7c3aed"),
    ("server_rss_bytes", "Ollama server RSS", "memory", 1 / GIB, "#db2777"),
    ("gpu_mem_used_bytes", "GPU memory used", "memory", 1 / GIB, "#65a30d"),
    ("swap_used_bytes", "Swap used", "memory", 1 / GIB, "#e11d48"),
)


UNMEASURED_COLOR = "#9ca3af"


def downsample(
    samples: Sequence[ResourceSample], max_points: int = MAX_SAMPLE_POINTS
) -> tuple[list[dict[str, Any]], int]:
    """At most `max_points` samples, consecutive ones averaged in equal buckets; and the bucket.

    Averages, not picks: every sample still counts. Per-request peaks come from the raw samples.
    """
    size = bucket_size(len(samples), max_points)
    if size == 1:
        return [dict(s) for s in samples], 1
    points = []
    for start in range(0, len(samples), size):
        bucket = samples[start : start + size]
        point: dict[str, Any] = {}
        for name in ("offset_s", *(series[0] for series in RESOURCE_SERIES)):
            values = [v for s in bucket if (v := getattr(s, name)) is not None]
            point[name] = sum(values) / len(values) if values else None
        points.append(point)
    return points, size


def bucket_size(count: int, max_points: int = MAX_SAMPLE_POINTS) -> int:
    """How many consecutive samples `downsample` averages into one point."""
    return max(1, math.ceil(count / max_points))


def resource_usage(
    samples: Sequence[ResourceSample],
    rows: Iterable[Request],
    label: Label,
    cores_logical: int | None,
    tally: Tally | None = None,
) -> go.Figure | None:
    """CPU and memory over the run, and every request as a bar on the same time axis.

    None without samples. x is seconds since the run started, for samples and requests alike.
    """
    points, _bucket = downsample(samples)
    if not points:
        return None
    traces: dict[str, list[go.Scatter]] = {"cpu": [], "memory": []}
    x = [round(float(p["offset_s"]), 3) for p in points]
    for column, name, subplot, scale, color in RESOURCE_SERIES:
        values = [p.get(column) for p in points]
        if all(v is None for v in values) or (column == "swap_used_bytes" and not any(values)):
            continue
        if scale == "cores":
            factor = 1 / cores_logical if cores_logical else 1.0
            name = name if cores_logical else f"{name} (% of one core)"
        else:
            factor = float(scale)
        unit = "%" if subplot == "cpu" else " GiB"
        traces[subplot].append(
            go.Scatter(
                name=plotly_text(name),
                mode="lines",
                x=x,
                y=[None if v is None else round(float(v) * factor, 3) for v in values],
                line={"color": color, "width": 1.5},
                hovertemplate=f"%{{x:.1f}} s: %{{y:.1f}}{unit}<extra>{plotly_text(name)}</extra>",
            )
        )
    bars = _request_bars(rows, label, tally)
    panels = [(k, v) for k, v in (*traces.items(), ("requests", bars)) if v]
    y_titles = {"cpu": "CPU (%)", "memory": "memory (GiB)", "requests": ""}
    heights = {"cpu": 240, "memory": 200, "requests": 60 + 36 * len({t.y[0] for t in bars})}
    total = sum(heights[k] for k, _ in panels)
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=[heights[k] / total for k, _ in panels],
    )
    for row, (kind, members) in enumerate(panels, start=1):
        for trace in members:
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title={"text": y_titles[kind]}, row=row, col=1)
        if kind == "requests":
            fig.update_yaxes(autorange="reversed", row=row, col=1)  # first model on top
        else:
            fig.update_yaxes(rangemode="tozero", row=row, col=1)
    fig.update_layout(
        base_layout("", height=total + 120, barmode="overlay", hovermode="closest", bargap=0.35)
    )
    axis = {"gridcolor": "#e5e7eb", "zerolinecolor": "#d1d5db", "linecolor": "#d1d5db"}
    fig.update_xaxes(**axis, automargin=True)
    fig.update_yaxes(**axis, automargin=True)
    fig.update_yaxes(title={"text": y_titles[panels[0][0]]}, row=1, col=1)
    fig.update_xaxes(title={"text": "seconds since the run started"}, row=len(panels), col=1)
    return fig


def _request_bars(rows: Iterable[Request], label: Label, tally: Tally | None) -> list[go.Bar]:
    """One bar per request from its send to its last chunk: a trace per model, one for the rest
    (in a big run, a thinned share of each: `thinning`)."""
    timed = [
        r for r in rows if r.error is None and r.e2e_s is not None and r.start_offset_s is not None
    ]
    by_model: dict[str, list[Request]] = defaultdict(list)
    unmeasured: list[Request] = []
    for row in timed:
        (by_model[label(row)] if is_measured(row) else unmeasured).append(row)
    limit = per_trace(len(by_model) + bool(unmeasured))

    def drawn(members: Sequence[Request]) -> list[Request]:
        return thin(members, lambda r: r.e2e_s, limit, tally)

    # Unmeasured first, so measured requests are drawn over them; the y axis names the models.
    bars = (
        [_bar("warm-up / cold start", drawn(unmeasured), label, UNMEASURED_COLOR)]
        if unmeasured
        else []
    )
    for index, (name, members) in enumerate(by_model.items()):
        bars.append(_bar(plotly_text(name), drawn(members), label, SERIES_COLORS[index % 10]))
    return bars


def _bar(name: str, rows: Sequence[Request], label: Label, color: str) -> go.Bar:
    starts = [round(float(r.start_offset_s), 3) for r in rows]
    durations = [round(float(r.e2e_s or 0.0), 3) for r in rows]
    return go.Bar(
        name=name,
        orientation="h",
        y=[plotly_text(label(r)) for r in rows],
        base=starts,
        x=durations,
        width=0.6,
        showlegend=False,
        marker={"color": color, "line": {"width": 0}},
        opacity=0.85,
        customdata=[
            [
                plotly_text(r.prompt_id),
                _request_kind(r),
                plotly_text(r.mode),
                start,
                round(start + duration, 3),
            ]
            for r, start, duration in zip(rows, starts, durations, strict=True)
        ],
        hovertemplate=(
            "%{y} · prompt %{customdata[0]}, %{customdata[1]} (%{customdata[2]})<br>"
            "%{customdata[3]:.2f}–%{customdata[4]:.2f} s<extra></extra>"
        ),
    )


def _request_kind(row: Request) -> str:
    if row.is_cold:
        return "cold start"
    if row.is_warmup:
        return f"warm-up {row['repetition'] + 1}"
    return f"rep {row['repetition'] + 1}"
