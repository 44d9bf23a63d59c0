"""Plotly figures of load sweeps, from the level summaries `analysis.sweeps.sweeps` computes.

Every figure has a trace per swept model (model @ host), levels in sweep order on x; nothing here
computes a statistic, it only places what analysis.sweeps derived.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from novabench.report.charts import SERIES_COLORS, base_layout, plotly_text

# A level is on a log axis when each one doubles the last (1, 2, 4, 8...): evenly spaced, and the
# low levels, where throughput grows fastest, are not squeezed into a corner.
DOUBLING = (1.9, 2.1)
QUANTILE_DASHES = (("p50", "solid"), ("p95", "dash"), ("p99", "dot"))
KNEE_COLOR = "#e11d48"


def axis_title(kind: str) -> str:
    """The level axis: 'concurrent requests' (closed loop) or 'offered requests/s' (open loop)."""
    return "concurrent requests" if kind == "concurrency" else "offered requests/s"


def short_level(kind: str, value: float) -> str:
    """A point's label on the curve: '4' concurrent, '2.5/s' offered."""
    return f"{int(value)}" if kind == "concurrency" else f"{value:g}/s"


def doubles(values: Sequence[float]) -> bool:
    """True when every level is about twice the one before it, from a positive start."""
    if len(values) < 3 or values[0] <= 0:
        return False
    low, high = DOUBLING
    return all(low <= b / a <= high for a, b in zip(values, values[1:], strict=False))


def _color(index: int) -> str:
    return SERIES_COLORS[index % len(SERIES_COLORS)]


def level_text(value: float) -> str:
    """A level as its axis names it: '4', '2.5'."""
    return f"{value:g}"


def _levels(sweeps: Sequence[dict[str, Any]]) -> list[float]:
    return sorted({float(lv.level) for s in sweeps for lv in s["levels"]})


def _level_axis(sweeps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Levels are discrete: a log axis ticked at each level when they double, else one category
    per level in order; never a linear axis, whose ticks would fall between levels (1.2, 1.4)."""
    values = _levels(sweeps)
    axis: dict[str, Any] = {"title": {"text": axis_title(sweeps[0]["kind"])}}
    texts = [level_text(v) for v in values]
    if doubles(values):
        axis.update(type="log", tickvals=values, ticktext=texts)
    else:
        axis.update(type="category", categoryorder="array", categoryarray=texts)
    return axis


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _line(
    sweep: dict[str, Any], key: str, name: str, color: str, dash: str, unit: str
) -> go.Scatter | None:
    """One figure of a sweep over its levels; None when no level has it."""
    y = [_rounded(getattr(lv.summary, key)) for lv in sweep["levels"]]
    if all(v is None for v in y):
        return None
    return go.Scatter(
        name=plotly_text(name),
        mode="lines+markers",
        x=[float(lv.level) for lv in sweep["levels"]],
        y=y,
        customdata=[lv.name for lv in sweep["levels"]],
        line={"color": color, "dash": dash, "width": 2},
        marker={"color": color, "size": 7},
        hovertemplate=f"%{{customdata}}: %{{y:,.1f}} {unit}<extra>{plotly_text(name)}</extra>",
    )


def _figure(
    traces: list[go.Scatter | None], sweeps: Sequence[dict[str, Any]], y_title: str
) -> go.Figure | None:
    drawn = [t for t in traces if t is not None]
    if not drawn:
        return None
    if not doubles(_levels(sweeps)):  # a category axis places each point by its level's name
        for trace in drawn:
            trace.x = [level_text(v) for v in trace.x]
    fig = go.Figure(drawn)
    fig.update_layout(base_layout(y_title, hovermode="closest"))
    fig.update_xaxes(**_level_axis(sweeps))
    return fig


def throughput(sweeps: Sequence[dict[str, Any]]) -> go.Figure | None:
    """Aggregate output tokens/s of every level, a line per swept model."""
    traces = [
        _line(s, "output_tokens_per_s", s["label"], _color(i), "solid", "tokens/s")
        for i, s in enumerate(sweeps)
    ]
    return _figure(traces, sweeps, "output tokens/s (all streams)")


def request_rates(sweeps: Sequence[dict[str, Any]]) -> go.Figure | None:
    """Completed requests/s of every level (solid) and, with SLOs, goodput (dashed)."""
    traces = []
    for i, s in enumerate(sweeps):
        traces.append(
            _line(s, "requests_per_s", f"{s['label']} · requests/s", _color(i), "solid", "req/s")
        )
        traces.append(
            _line(s, "goodput_rps", f"{s['label']} · goodput", _color(i), "dash", "req/s")
        )
    return _figure(traces, sweeps, "requests/s")


def percentiles(sweeps: Sequence[dict[str, Any]], figure: str, y_title: str) -> go.Figure | None:
    """p50, p95 and p99 of one latency figure per level: a colour per model, a dash per quantile."""
    several = len(sweeps) > 1
    traces = [
        _line(
            s,
            f"{figure}_{quantile}",
            f"{s['label']} · {quantile}" if several else quantile,
            _color(i),
            dash,
            "ms",
        )
        for i, s in enumerate(sweeps)
        for quantile, dash in QUANTILE_DASHES
    ]
    return _figure(traces, sweeps, y_title)


def operating_curve(sweeps: Sequence[dict[str, Any]]) -> go.Figure | None:
    """Throughput against p95 end-to-end latency, levels joined in sweep order, knees marked.

    Up and to the left is better: the point to run at is the highest one whose latency is still
    acceptable; past the knee latency climbs for no throughput.
    """
    traces: list[go.Scatter] = []
    knees_x: list[float] = []
    knees_y: list[float] = []
    knees_text: list[str] = []
    for i, s in enumerate(sweeps):
        points = [
            lv
            for lv in s["levels"]
            if lv.e2e_ms_p95 is not None and lv.output_tokens_per_s is not None
        ]
        if not points:
            continue
        traces.append(
            go.Scatter(
                name=plotly_text(s["label"]),
                mode="lines+markers+text",
                x=[_rounded(lv.e2e_ms_p95) for lv in points],
                y=[_rounded(lv.output_tokens_per_s) for lv in points],
                text=[short_level(s["kind"], lv.level) for lv in points],
                textposition="top center",
                customdata=[lv.name for lv in points],
                line={"color": _color(i), "width": 2},
                marker={"color": _color(i), "size": 8},
                hovertemplate=(
                    "%{customdata}<br>%{y:,.1f} tokens/s at p95 %{x:,.0f} ms"
                    f"<extra>{plotly_text(s['label'])}</extra>"
                ),
            )
        )
        knee = s.get("knee")
        if knee is not None and knee in points:
            knees_x.append(_rounded(knee.e2e_ms_p95) or 0.0)
            knees_y.append(_rounded(knee.output_tokens_per_s) or 0.0)
            knees_text.append(f"{plotly_text(s['label'])}: {knee.name}")
    if not traces:
        return None
    if knees_x:
        traces.append(
            go.Scatter(
                name="saturation knee",
                mode="markers",
                x=knees_x,
                y=knees_y,
                customdata=knees_text,
                marker={
                    "symbol": "circle-open",
                    "size": 20,
                    "color": KNEE_COLOR,
                    "line": {"width": 2.5, "color": KNEE_COLOR},
                },
                hovertemplate="knee · %{customdata}<extra></extra>",
            )
        )
    fig = go.Figure(traces)
    fig.update_layout(base_layout("output tokens/s (all streams)", hovermode="closest"))
    fig.update_xaxes(title={"text": "end-to-end latency p95 (ms)"}, rangemode="tozero")
    return fig
