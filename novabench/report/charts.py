"""Plotly figures for the reports, built only from rows the store returns."""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from novabench.analysis.figures import is_measured
from novabench.analysis.statistics import median, median_ci
from novabench.records import PhaseRecord, Request, ResourceSample
from novabench.report.tables import Label

FONT_STACK = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", '
    '"Liberation Sans", Arial, sans-serif'
)
MODE_COLORS = {"sequential": "#4f46e5", "parallel": "#f59e0b"}
MODE_SYMBOLS = {"sequential": "circle", "parallel": "diamond"}
SERIES_COLORS = (
    "#4f46e5",
    "#0891b2",
    "#f59e0b",
    "#10b981",
    "#e11d48",
    "#7c3aed",
    "#0d9488",
    "#db2777",
    "#65a30d",
    "#ea580c",
)
DIGEST_CHARS = 12
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
GAP_QUANTILES = (("p50", "#4f46e5"), ("p95", "#f59e0b"), ("p99", "#e11d48"))
UNMEASURED_COLOR = "#9ca3af"


def plotly_text(value: object) -> str:
    """Text that Plotly shows literally: it reads a few HTML tags in labels, so escape them."""
    return html.escape(str(value), quote=False)


def short_digest(digest: str | None) -> str:
    """The first 12 hex digits of a model digest, without its 'sha256:' prefix."""
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:DIGEST_CHARS]


def measured(rows: Iterable[Request]) -> list[Request]:
    """The successful measured requests (no warm-up, no cold start), with their derived figures."""
    return [r for r in rows if is_measured(r) and r.ok]


def base_layout(y_title: str, **extra: Any) -> dict[str, Any]:
    """The reports' common look: font, white plot, light grid, legend above the plot."""
    axis = {
        "gridcolor": "#e5e7eb",
        "zerolinecolor": "#d1d5db",
        "linecolor": "#d1d5db",
        "automargin": True,
    }
    layout: dict[str, Any] = {
        "template": "none",
        "font": {"family": FONT_STACK, "size": 13, "color": "#1f2937"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 64, "r": 24, "t": 24, "b": 56},
        "height": 400,
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "hoverlabel": {"font": {"family": FONT_STACK}},
        "xaxis": dict(axis),
        "yaxis": {**axis, "title": {"text": plotly_text(y_title)}, "rangemode": "tozero"},
    }
    layout.update(extra)
    return layout


def _ordered_modes(rows: Sequence[Request], modes: Sequence[str]) -> list[str]:
    present = {r.mode for r in rows}
    return [m for m in modes if m in present] + sorted(present - set(modes))


def distribution_by_model(
    rows: Iterable[Request],
    figure: str,
    y_title: str,
    label: Label,
    modes: Sequence[str],
    kind: str = "box",
) -> go.Figure | None:
    """One box (or violin) per model and mode of one per-request figure; None without data."""
    points = [r for r in measured(rows) if getattr(r, figure) is not None]
    if not points:
        return None
    fig = go.Figure()
    for mode in _ordered_modes(points, modes):
        of_mode = [r for r in points if r.mode == mode]
        common: dict[str, Any] = {
            "name": plotly_text(mode),
            "x": [plotly_text(label(r)) for r in of_mode],
            "y": [round(float(r[figure]), 3) for r in of_mode],
            "customdata": [[plotly_text(r.prompt_id), r.repetition + 1] for r in of_mode],
            "marker": {"color": MODE_COLORS.get(mode), "size": 5, "opacity": 0.7},
            "line": {"color": MODE_COLORS.get(mode)},
            "hovertemplate": (
                "%{x}<br>%{y:.1f} " + plotly_text(y_title) + "<br>prompt %{customdata[0]}, "
                "rep %{customdata[1]}<extra>" + plotly_text(mode) + "</extra>"
            ),
        }
        if kind == "violin":
            fig.add_trace(
                go.Violin(
                    **common,
                    box={"visible": True},
                    meanline={"visible": False},
                    points="all",
                    pointpos=0,
                    jitter=0.3,
                    spanmode="hard",
                    scalemode="width",
                )
            )
        else:
            fig.add_trace(go.Box(**common, boxpoints="all", jitter=0.3, pointpos=0))
    group = {"violinmode": "group"} if kind == "violin" else {"boxmode": "group"}
    fig.update_layout(base_layout(y_title, **group))
    return fig


def median_with_ci(
    rows: Iterable[Request],
    figure: str,
    y_title: str,
    label: Label,
    modes: Sequence[str],
) -> go.Figure | None:
    """Per model (and mode): every measured request as a faint dot, and the median as a marker
    with its 95% bootstrap confidence interval (`stats.median_ci`) as asymmetric error bars.

    The same medians and intervals as the summary table; None without data.
    """
    points = [r for r in measured(rows) if getattr(r, figure) is not None]
    if not points:
        return None
    present = _ordered_modes(points, modes)
    several_modes = len(present) > 1
    models = list(dict.fromkeys(label(r) for r in points))

    def group(name: str, mode: str) -> str:
        return f"{plotly_text(name)}<br>{plotly_text(mode)}" if several_modes else plotly_text(name)

    unit = plotly_text(y_title)
    fig = go.Figure()
    for mode in present:
        of_mode = [r for r in points if r.mode == mode]
        color = MODE_COLORS.get(mode, SERIES_COLORS[0])
        fig.add_trace(
            go.Box(
                name=plotly_text(mode),
                legendgroup=plotly_text(mode),
                showlegend=False,
                x=[group(label(r), mode) for r in of_mode],
                y=[round(float(r[figure]), 3) for r in of_mode],
                customdata=[[plotly_text(r.prompt_id), r.repetition + 1] for r in of_mode],
                boxpoints="all",
                jitter=0.5,
                pointpos=0,
                fillcolor="rgba(0,0,0,0)",
                line={"width": 0},
                marker={"color": color, "size": 5, "opacity": 0.35},
                hoveron="points",
                hovertemplate=(
                    "%{x}<br>%{y:.1f} " + unit + "<br>prompt %{customdata[0]}, "
                    "rep %{customdata[1]}<extra></extra>"
                ),
            )
        )
        names, medians, lows, highs = [], [], [], []
        for name in models:
            values = [float(r[figure]) for r in of_mode if label(r) == name]
            middle = median(values)
            if middle is None:
                continue
            interval = median_ci(values) or (middle, middle)
            names.append(group(name, mode))
            medians.append(round(middle, 3))
            lows.append(round(interval[0], 3))
            highs.append(round(interval[1], 3))
        fig.add_trace(
            go.Scatter(
                name=plotly_text(mode),
                legendgroup=plotly_text(mode),
                showlegend=several_modes,
                mode="markers",
                x=names,
                y=medians,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [round(h - m, 3) for h, m in zip(highs, medians, strict=True)],
                    "arrayminus": [round(m - lo, 3) for lo, m in zip(lows, medians, strict=True)],
                    "color": color,
                    "thickness": 2,
                    "width": 10,
                },
                customdata=[[lo, h] for lo, h in zip(lows, highs, strict=True)],
                marker={
                    "color": color,
                    "size": 11,
                    "symbol": MODE_SYMBOLS.get(mode, "circle"),
                    "line": {"color": "#ffffff", "width": 1.5},
                },
                hovertemplate=(
                    "%{x}<br>median %{y:.1f} " + unit + "<br>95% CI %{customdata[0]:.1f}–"
                    "%{customdata[1]:.1f}<extra></extra>"
                ),
            )
        )
    order = [group(name, mode) for name in models for mode in present]
    fig.update_layout(base_layout(y_title, hovermode="closest", showlegend=several_modes))
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    return fig


def tokens_vs_length(
    rows: Iterable[Request], label: Label, modes: Sequence[str]
) -> go.Figure | None:
    """Server generation tokens/s against output tokens, a trace per model (and mode).

    A rate that falls with length points at a growing KV cache or context; None without data.
    """
    points = [r for r in measured(rows) if r.eval_tokens_per_s is not None and r.output_tokens]
    if not points:
        return None
    present = _ordered_modes(points, modes)
    several_modes = len(present) > 1
    models = list(dict.fromkeys(label(r) for r in points))
    fig = go.Figure()
    for index, name in enumerate(models):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        for mode in present:
            members = [r for r in points if label(r) == name and r.mode == mode]
            if not members:
                continue
            shown = f"{name} · {mode}" if several_modes else name
            fig.add_trace(
                go.Scatter(
                    name=plotly_text(shown),
                    mode="markers",
                    x=[int(r.output_tokens) for r in members],
                    y=[round(float(r.eval_tokens_per_s or 0.0), 3) for r in members],
                    customdata=[[plotly_text(r.prompt_id), r.repetition + 1] for r in members],
                    marker={
                        "color": color,
                        "size": 7,
                        "opacity": 0.75,
                        "symbol": MODE_SYMBOLS.get(mode, "circle"),
                    },
                    hovertemplate=(
                        "%{x} tokens at %{y:.1f} tokens/s<br>prompt %{customdata[0]}, "
                        "rep %{customdata[1]}<extra>" + plotly_text(shown) + "</extra>"
                    ),
                )
            )
    fig.update_layout(base_layout("generation tokens/s", hovermode="closest"))
    fig.update_xaxes(title={"text": "output tokens"}, rangemode="tozero")
    return fig


def phase_walls(phases: Sequence[PhaseRecord]) -> go.Figure | None:
    """Wall time of each mode's measured phase as bars; None without phases."""
    if not phases:
        return None
    ordered = sorted(phases, key=lambda p: (p.mode != "sequential", p.mode))
    walls = [round(float(p.wall_s), 3) for p in ordered]
    fig = go.Figure(
        go.Bar(
            x=[plotly_text(p.mode) for p in ordered],
            y=walls,
            text=[f"{w:.2f} s" for w in walls],
            textposition="outside",
            marker={"color": [MODE_COLORS.get(p.mode, SERIES_COLORS[0]) for p in ordered]},
            hovertemplate="%{x}: %{y:.2f} s<extra></extra>",
            width=0.5,
        )
    )
    fig.update_layout(base_layout("wall time (s)", height=320, showlegend=False))
    return fig


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
    bars = _request_bars(rows, label)
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


def _request_bars(rows: Iterable[Request], label: Label) -> list[go.Bar]:
    """One bar per request from its send to its last chunk: a trace per model, one for the rest."""
    timed = [
        r for r in rows if r.error is None and r.e2e_s is not None and r.start_offset_s is not None
    ]
    by_model: dict[str, list[Request]] = defaultdict(list)
    unmeasured: list[Request] = []
    for row in timed:
        (by_model[label(row)] if is_measured(row) else unmeasured).append(row)
    # Unmeasured first, so measured requests are drawn over them; the y axis names the models.
    bars = [_bar("warm-up / cold start", unmeasured, label, UNMEASURED_COLOR)] if unmeasured else []
    for index, (name, members) in enumerate(by_model.items()):
        bars.append(_bar(plotly_text(name), members, label, SERIES_COLORS[index % 10]))
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


def token_gaps(rows: Iterable[Request], label: Label, modes: Sequence[str]) -> go.Figure | None:
    """Per-request p50, p95 and p99 of the gaps between chunks, a box each per model (and mode).

    A steady stream keeps the three together; a stall lifts p99 far above p50. None without data.
    """
    points = [r for r in measured(rows) if r.gap_p50_ms is not None]
    if not points:
        return None
    present = _ordered_modes(points, modes)
    several_modes = len(present) > 1
    order = {name: i for i, name in enumerate(dict.fromkeys(label(r) for r in points))}
    points.sort(key=lambda r: (order[label(r)], present.index(r.mode)))

    def group(row: Request) -> str:
        name = plotly_text(label(row))
        return f"{name}<br>{plotly_text(row['mode'])}" if several_modes else name

    fig = go.Figure()
    values: list[float] = []
    for quantile, color in GAP_QUANTILES:
        y = [round(float(r[f"gap_{quantile}_ms"]), 3) for r in points]
        values += y
        fig.add_trace(
            go.Box(
                name=quantile,
                x=[group(r) for r in points],
                y=y,
                customdata=[[plotly_text(r.prompt_id), r.repetition + 1] for r in points],
                marker={"color": color, "size": 4, "opacity": 0.7},
                line={"color": color},
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                hovertemplate=(
                    "%{x}<br>" + quantile + " gap %{y:.1f} ms<br>prompt %{customdata[0]}, "
                    "rep %{customdata[1]}<extra></extra>"
                ),
            )
        )
    fig.update_layout(base_layout("gap between chunks (ms)", boxmode="group"))
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:  # a stall would flatten everything else
        fig.update_yaxes(type="log", rangemode="normal")
    return fig
