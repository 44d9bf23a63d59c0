"""Plotly figures for the reports, built only from rows the store returns."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from novabench.stats import median, with_figures

FONT_STACK = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", '
    '"Liberation Sans", Arial, sans-serif'
)
MODE_COLORS = {"sequential": "#4f46e5", "parallel": "#f59e0b"}
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

Label = Callable[[dict[str, Any]], str]


def plotly_text(value: object) -> str:
    """Text that Plotly shows literally: it reads a few HTML tags in labels, so escape them."""
    return html.escape(str(value), quote=False)


def short_digest(digest: str | None) -> str:
    """The first 12 hex digits of a model digest, without its 'sha256:' prefix."""
    if not digest:
        return ""
    return digest.split(":", 1)[-1][:DIGEST_CHARS]


def measured(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The successful, non-warm-up requests among stored rows, with their derived figures."""
    return with_figures(r for r in rows if not r.get("is_warmup") and r.get("error") is None)


def _layout(y_title: str, **extra: Any) -> dict[str, Any]:
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


def _ordered_modes(rows: Sequence[dict[str, Any]], modes: Sequence[str]) -> list[str]:
    present = {r["mode"] for r in rows}
    return [m for m in modes if m in present] + sorted(present - set(modes))


def distribution_by_model(
    rows: Iterable[dict[str, Any]],
    figure: str,
    y_title: str,
    label: Label,
    modes: Sequence[str],
    kind: str = "box",
) -> go.Figure | None:
    """One box (or violin) per model and mode of one per-request figure; None without data."""
    points = [r for r in measured(rows) if r.get(figure) is not None]
    if not points:
        return None
    fig = go.Figure()
    for mode in _ordered_modes(points, modes):
        of_mode = [r for r in points if r["mode"] == mode]
        common: dict[str, Any] = {
            "name": plotly_text(mode),
            "x": [plotly_text(label(r)) for r in of_mode],
            "y": [round(float(r[figure]), 3) for r in of_mode],
            "customdata": [[plotly_text(r["prompt_id"]), r["repetition"] + 1] for r in of_mode],
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
    fig.update_layout(_layout(y_title, **group))
    return fig


def phase_walls(phases: Sequence[dict[str, Any]]) -> go.Figure | None:
    """Wall time of each mode's measured phase as bars; None without phases."""
    if not phases:
        return None
    ordered = sorted(phases, key=lambda p: (p["mode"] != "sequential", p["mode"]))
    walls = [round(float(p["wall_s"]), 3) for p in ordered]
    fig = go.Figure(
        go.Bar(
            x=[plotly_text(p["mode"]) for p in ordered],
            y=walls,
            text=[f"{w:.2f} s" for w in walls],
            textposition="outside",
            marker={"color": [MODE_COLORS.get(p["mode"], SERIES_COLORS[0]) for p in ordered]},
            hovertemplate="%{x}: %{y:.2f} s<extra></extra>",
            width=0.5,
        )
    )
    fig.update_layout(_layout("wall time (s)", height=320, showlegend=False))
    return fig


def history_series(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-run medians of every (suite, model, host, mode), oldest first, from `Store.history()`.

    Modes stay apart: parallel requests compete, so pooling them with sequential ones would move
    a line whenever a suite changed its modes. Each series has its suite, model, host, mode and
    a list of points: run id, run start, versions,
    digest, request count, and the run's median TTFT (ms) and generation tokens/s.
    """
    requests: dict[tuple[str, str, str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in with_figures(rows):
        key = (row["suite_name"], row["model"], row["host"], row["mode"])
        requests[key][row["run_id"]].append(row)
    series = []
    for (suite, model, host, mode), by_run in sorted(requests.items()):
        points = []
        for run_id, members in by_run.items():
            first = members[0]
            points.append(
                {
                    "run_id": run_id,
                    "run_started_at": first["run_started_at"],
                    "novabench_version": first["novabench_version"],
                    "ollama_version": first["ollama_version"],
                    "digest": first["digest"],
                    "requests": len(members),
                    "ttft_ms": median(r["ttft_ms"] for r in members),
                    "eval_tokens_per_s": median(r["eval_tokens_per_s"] for r in members),
                }
            )
        points.sort(key=lambda p: (p["run_started_at"], p["run_id"]))
        series.append(
            {"suite": suite, "model": model, "host": host, "mode": mode, "points": points}
        )
    return series


def _host_label(host: str) -> str:
    return host.split("://", 1)[-1].rstrip("/")


def history_chart(series: Sequence[dict[str, Any]], figure: str, y_title: str) -> go.Figure | None:
    """One line per (suite, model, host, mode) of a per-run median over run start; None if empty."""
    several_hosts = len({s["host"] for s in series}) > 1
    several_modes = len({s["mode"] for s in series}) > 1
    several_suites = len({s["suite"] for s in series}) > 1
    fig = go.Figure()
    for index, one in enumerate(series):
        points = [p for p in one["points"] if p[figure] is not None]
        if not points:
            continue
        name = one["model"]
        if several_hosts:
            name += f" @ {_host_label(one['host'])}"
        if several_modes:
            name += f" ({one['mode']})"
        if several_suites:
            name += f" · {one['suite']}"
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        fig.add_trace(
            go.Scatter(
                name=plotly_text(name),
                mode="lines+markers",
                x=[_iso(p["run_started_at"]) for p in points],
                y=[round(float(p[figure]), 3) for p in points],
                text=[_history_hover(one, p) for p in points],
                hovertemplate="%{y:.1f} " + plotly_text(y_title) + "<br>%{text}<extra></extra>",
                line={"color": color, "width": 2},
                marker={"color": color, "size": 8},
            )
        )
    if not fig.data:
        return None
    fig.update_layout(_layout(y_title, hovermode="closest"))
    fig.update_xaxes(type="date", title={"text": "run started (UTC)"})
    return fig


def _history_hover(one: dict[str, Any], point: dict[str, Any]) -> str:
    lines = [
        f"<b>{plotly_text(one['model'])}</b> · {plotly_text(one['suite'])}",
        f"run {plotly_text(point['run_id'])}",
        f"novabench {plotly_text(point['novabench_version'] or '?')}, "
        f"Ollama {plotly_text(point['ollama_version'] or '?')}",
        f"digest {plotly_text(short_digest(point['digest']) or '?')}",
        f"{point['requests']} requests",
    ]
    return "<br>".join(lines)


def _iso(value: datetime | str) -> str:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
