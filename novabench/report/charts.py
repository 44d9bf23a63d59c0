"""Plotly figures for the reports, built only from rows the store returns."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

import plotly.graph_objects as go

from novabench.analysis.figures import is_measured
from novabench.analysis.statistics import median, median_ci
from novabench.records import PhaseRecord, Request
from novabench.report.tables import Label
from novabench.report.thinning import Tally, boxes, per_trace, thin, thin_by

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
GAP_QUANTILES = (("p50", "#4f46e5"), ("p95", "#f59e0b"), ("p99", "#e11d48"))


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
    tally: Tally | None = None,
) -> go.Figure | None:
    """One box (or violin) per model and mode of one per-request figure; None without data.

    A mode with more requests than it may draw (`thinning`) gets a box of every request's
    quartiles, computed here, and a thinned cloud of dots: a violin or a box Plotly computed
    from the drawn dots alone would describe the sample, not the run.
    """
    points = [r for r in measured(rows) if getattr(r, figure) is not None]
    if not points:
        return None
    fig = go.Figure()
    present = _ordered_modes(points, modes)
    limit = per_trace(len(present))
    for mode in present:
        of_mode = [r for r in points if r.mode == mode]
        drawn = thin_by(of_mode, label, lambda r: r[figure], limit, tally)
        common: dict[str, Any] = {
            "name": plotly_text(mode),
            "x": [plotly_text(label(r)) for r in drawn],
            "y": [round(float(r[figure]), 3) for r in drawn],
            "customdata": [[plotly_text(r.prompt_id), r.repetition + 1] for r in drawn],
            "marker": {"color": MODE_COLORS.get(mode), "size": 5, "opacity": 0.7},
            "line": {"color": MODE_COLORS.get(mode)},
            "hovertemplate": (
                "%{x}<br>%{y:.1f} " + plotly_text(y_title) + "<br>prompt %{customdata[0]}, "
                "rep %{customdata[1]}<extra>" + plotly_text(mode) + "</extra>"
            ),
        }
        if len(drawn) < len(of_mode):
            fig.add_traces(_exact_box(of_mode, figure, label, mode, common))
        elif kind == "violin":
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
    thinned = tally is not None and tally.thinned
    group = {"violinmode": "group"} if kind == "violin" and not thinned else {"boxmode": "group"}
    fig.update_layout(base_layout(y_title, **group))
    return fig


def _exact_box(
    rows: Sequence[Request], figure: str, label: Label, mode: str, dots: dict[str, Any]
) -> list[go.Box]:
    """A box per model of every request of one mode, and the drawn ones as dots over it."""
    names = list(dict.fromkeys(plotly_text(label(r)) for r in rows))
    values: dict[str, list[float]] = {name: [] for name in names}
    for r in rows:
        values[plotly_text(label(r))].append(float(r[figure]))
    color = MODE_COLORS.get(mode)
    box = go.Box(
        name=plotly_text(mode),
        offsetgroup=plotly_text(mode),
        boxpoints=False,
        line={"color": color},
        hoverinfo="skip",
        **boxes(names, [values[n] for n in names]),
    )
    cloud = go.Box(
        **{**dots, "marker": {**dots["marker"], "opacity": 0.35}, "line": {"width": 0}},
        offsetgroup=plotly_text(mode),
        showlegend=False,
        boxpoints="all",
        jitter=0.3,
        pointpos=0,
        fillcolor="rgba(0,0,0,0)",
        hoveron="points",
    )
    return [box, cloud]


def median_with_ci(
    rows: Iterable[Request],
    figure: str,
    y_title: str,
    label: Label,
    modes: Sequence[str],
    tally: Tally | None = None,
) -> go.Figure | None:
    """Per model (and mode): every measured request as a faint dot, and the median as a marker
    with its 95% bootstrap confidence interval (`stats.median_ci`) as asymmetric error bars.

    The same medians and intervals as the summary table; None without data. The dots of a big
    run are thinned (`thinning`); the medians and intervals count every request.
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
    limit = per_trace(len(present))
    for mode in present:
        of_mode = [r for r in points if r.mode == mode]
        color = MODE_COLORS.get(mode, SERIES_COLORS[0])
        drawn = thin_by(of_mode, label, lambda r: r[figure], limit, tally)
        x = [group(label(r), mode) for r in drawn]
        fig.add_trace(_request_dots(drawn, figure, mode, x, color, unit))
        medians = []
        for name in models:
            values = [float(r[figure]) for r in of_mode if label(r) == name]
            middle = median(values)
            if middle is not None:
                low, high = median_ci(values) or (middle, middle)
                medians.append((group(name, mode), middle, low, high))
        fig.add_trace(_median_markers(medians, mode, color, unit, several_modes))
    order = [group(name, mode) for name in models for mode in present]
    fig.update_layout(base_layout(y_title, hovermode="closest", showlegend=several_modes))
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    return fig


def _request_dots(
    rows: Sequence[Request], figure: str, mode: str, x: list[str], color: str, unit: str
) -> go.Box:
    """Every request of one mode as a faint dot (a box with its box hidden, for the jitter)."""
    return go.Box(
        name=plotly_text(mode),
        legendgroup=plotly_text(mode),
        showlegend=False,
        x=x,
        y=[round(float(r[figure]), 3) for r in rows],
        customdata=[[plotly_text(r.prompt_id), r.repetition + 1] for r in rows],
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


def _median_markers(
    medians: list[tuple[str, float, float, float]],
    mode: str,
    color: str,
    unit: str,
    several_modes: bool,
) -> go.Scatter:
    """One marker per (group, median, low, high), its confidence interval as error bars."""
    names = [m[0] for m in medians]
    middles = [round(m[1], 3) for m in medians]
    lows = [round(m[2], 3) for m in medians]
    highs = [round(m[3], 3) for m in medians]
    return go.Scatter(
        name=plotly_text(mode),
        legendgroup=plotly_text(mode),
        showlegend=several_modes,
        mode="markers",
        x=names,
        y=middles,
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [round(h - m, 3) for h, m in zip(highs, middles, strict=True)],
            "arrayminus": [round(m - lo, 3) for lo, m in zip(lows, middles, strict=True)],
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


def tokens_vs_length(
    rows: Iterable[Request], label: Label, modes: Sequence[str], tally: Tally | None = None
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
    limit = per_trace(len({(label(r), r.mode) for r in points}))
    fig = go.Figure()
    for index, name in enumerate(models):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        for mode in present:
            members = [r for r in points if label(r) == name and r.mode == mode]
            if not members:
                continue
            members = thin(members, lambda r: r.eval_tokens_per_s, limit, tally)
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


def token_gaps(
    rows: Iterable[Request], label: Label, modes: Sequence[str], tally: Tally | None = None
) -> go.Figure | None:
    """Per-request p50, p95 and p99 of the gaps between chunks, a box each per model (and mode).

    A steady stream keeps the three together; a stall lifts p99 far above p50. None without data.
    In a big run each quantile's box counts every request and its dots are thinned.
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
    limit = per_trace(len(GAP_QUANTILES))
    for index, (quantile, color) in enumerate(GAP_QUANTILES):
        key = f"gap_{quantile}_ms"
        every = [round(float(r[key]), 3) for r in points]
        values += every
        drawn = thin_by(points, group, itemgetter(key), limit, tally if index == 0 else None)
        dots: dict[str, Any] = {
            "name": quantile,
            "x": [group(r) for r in drawn],
            "y": [round(float(r[key]), 3) for r in drawn],
            "customdata": [[plotly_text(r.prompt_id), r.repetition + 1] for r in drawn],
            "marker": {"color": color, "size": 4, "opacity": 0.7},
            "line": {"color": color},
            "boxpoints": "all",
            "jitter": 0.3,
            "pointpos": 0,
            "hovertemplate": (
                "%{x}<br>" + quantile + " gap %{y:.1f} ms<br>prompt %{customdata[0]}, "
                "rep %{customdata[1]}<extra></extra>"
            ),
        }
        if len(drawn) == len(points):
            fig.add_trace(go.Box(**dots))
            continue
        names = list(dict.fromkeys(group(r) for r in points))
        of_group: dict[str, list[float]] = {name: [] for name in names}
        for r, v in zip(points, every, strict=True):
            of_group[group(r)].append(v)
        exact = boxes(names, [of_group[n] for n in names])
        fig.add_trace(
            go.Box(
                name=quantile,
                offsetgroup=quantile,
                boxpoints=False,
                line={"color": color},
                hoverinfo="skip",
                **exact,
            )
        )
        fig.add_trace(
            go.Box(
                **{**dots, "line": {"width": 0}},
                offsetgroup=quantile,
                showlegend=False,
                fillcolor="rgba(0,0,0,0)",
                hoveron="points",
            )
        )
    fig.update_layout(base_layout("gap between chunks (ms)", boxmode="group"))
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:  # a stall would flatten everything else
        fig.update_yaxes(type="log", rangemode="normal")
    return fig
