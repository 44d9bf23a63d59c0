"""The history page's figures: per-run medians of each model over time, with what moved them.

Built from `Store.history()` rows and `compare.history_changes()` findings only. A point is one run
of one (suite, model, host, mode); it is marked where the model's digest or the host's Ollama
version differs from the series' previous point, and where a significant change was found.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from novabench.analysis.compare import LOAD_MODE, REGRESSION, Finding
from novabench.analysis.figures import derive
from novabench.analysis.statistics import median
from novabench.records import HistoryRow
from novabench.report.charts import SERIES_COLORS, base_layout, plotly_text, short_digest


@dataclass(frozen=True)
class TrendMetric:
    """A per-run median the history page draws."""

    name: str
    slug: str  # in the figure's element id
    title: str
    y_title: str
    caption: str


TREND_METRICS = (
    TrendMetric(
        "eval_tokens_per_s",
        "generation",
        "Generation speed",
        "tokens/s",
        "Median generation tokens/s per run, server clock (eval_count / eval_duration); "
        "higher is better.",
    ),
    TrendMetric(
        "ttft_ms",
        "ttft",
        "Time to first token",
        "TTFT (ms)",
        "Median time to first token per run, client clock; lower is better.",
    ),
    TrendMetric(
        "e2e_ms",
        "e2e",
        "End-to-end latency",
        "end-to-end (ms)",
        "Median time from sending a request to its last chunk, per run; lower is better.",
    ),
    TrendMetric(
        "itl_ms",
        "itl",
        "Inter-token latency",
        "ITL (ms)",
        "Median time between tokens per run, client clock; lower is better.",
    ),
)
TREND_NAMES = tuple(m.name for m in TREND_METRICS)
MODE_DASHES = ("solid", "dot", "dash", "dashdot")
CHANGE_COLOR = "#111827"
# Labels of runs where something changed closer than this share of the time axis are staggered.
LABEL_CROWDING = 0.18
LABEL_LEVELS = 3
REGRESSION_COLOR = "#dc2626"
IMPROVEMENT_COLOR = "#059669"

ChangeKey = tuple[str, str, str, str, str]  # run id, model, host, mode, metric


def history_series(rows: Iterable[HistoryRow]) -> list[dict[str, Any]]:
    """Per-run medians of every (suite, model, host, mode), oldest first, from `Store.history()`.

    Modes stay apart: parallel requests compete, so pooling them with sequential ones would move
    a line whenever a suite changed its modes. Each series has its suite, model, host, mode and
    points: run id, run start, novabench and Ollama (of the series' host) versions, digest,
    request count, the median of every TREND_METRICS figure, and `changes`: what differs from
    the previous point ("digest a → b", "Ollama x → y").
    """
    requests: dict[tuple[str, str, str, str], dict[str, list[HistoryRow]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for row in rows:
        if row.mode == LOAD_MODE:
            continue  # levels of a sweep are no per-run median of one load: see the run pages
        requests[(row.suite_name, row.model, row.host, row.mode)][row.run_id].append(row)
    series = []
    for (suite, model, host, mode), by_run in sorted(requests.items()):
        points = []
        for run_id, members in by_run.items():
            first = members[0]
            point: dict[str, Any] = {
                "run_id": run_id,
                "run_started_at": first.run_started_at,
                "novabench_version": first.novabench_version,
                "ollama_version": first.host_version or first.ollama_version,
                "digest": first.digest,
                "requests": len(members),
            }
            figures = [derive(r) for r in members]
            for name in TREND_NAMES:
                point[name] = median(getattr(f, name) for f in figures)
            points.append(point)
        points.sort(key=lambda p: (p["run_started_at"], p["run_id"]))
        for before, point in zip([None, *points], points, strict=False):
            point["changes"] = _changes(before, point)
        series.append(
            {"suite": suite, "model": model, "host": host, "mode": mode, "points": points}
        )
    return series


def _changes(before: Mapping[str, Any] | None, point: Mapping[str, Any]) -> list[str]:
    if before is None:
        return []
    changes = []
    if before["digest"] != point["digest"]:
        old, new = short_digest(before["digest"]) or "?", short_digest(point["digest"]) or "?"
        changes.append(f"digest {old} → {new}")
    if before["ollama_version"] != point["ollama_version"]:
        changes.append(
            f"Ollama {before['ollama_version'] or '?'} → {point['ollama_version'] or '?'}"
        )
    return changes


def change_index(changes: Mapping[str, Sequence[Finding]]) -> dict[ChangeKey, list[Finding]]:
    """`history_changes()` findings by the point they belong to: run, model, host, mode, metric."""
    index: dict[ChangeKey, list[Finding]] = defaultdict(list)
    for run_id, findings in changes.items():
        for finding in findings:
            index[(run_id, finding.model, finding.host, finding.mode, finding.metric)].append(
                finding
            )
    return index


def host_label(host: str) -> str:
    """A host URL without its scheme and trailing slash: '127.0.0.1:11434'."""
    return host.split("://", 1)[-1].rstrip("/")


def series_name(one: Mapping[str, Any], several_hosts: bool, several_modes: bool) -> str:
    name = str(one["model"])
    if several_hosts:
        name += f" @ {host_label(one['host'])}"
    if several_modes:
        name += f" ({one['mode']})"
    return name


def history_chart(
    series: Sequence[dict[str, Any]],
    metric: TrendMetric,
    changes: Mapping[ChangeKey, Sequence[Finding]],
) -> go.Figure | None:
    """One suite's line per (model, host, mode) of a per-run median over run start; None if empty.

    Diamonds mark points where the digest or Ollama version changed (and a dotted line the run);
    red and green rings mark significant regressions and improvements of this metric. Every
    trace's `meta` names its suite, model and host: the page's filters show and hide by it.
    """
    several_hosts = len({s["host"] for s in series}) > 1
    modes = list(
        dict.fromkeys(s["mode"] for s in sorted(series, key=lambda s: s["mode"] != "sequential"))
    )
    models = list(dict.fromkeys((s["model"], s["host"]) for s in series))
    unit = plotly_text(metric.y_title)
    fig = go.Figure()
    moved: dict[str, list[str]] = defaultdict(list)  # run start -> what changed there
    for index, one in enumerate(series):
        points = [p for p in one["points"] if p[metric.name] is not None]
        if not points:
            continue
        name = series_name(one, several_hosts, len(modes) > 1)
        # a colour per model, a dash per mode: one model's modes read as one family
        color = SERIES_COLORS[models.index((one["model"], one["host"])) % len(SERIES_COLORS)]
        dash = MODE_DASHES[modes.index(one["mode"]) % len(MODE_DASHES)]
        facets = {"suite": one["suite"], "model": one["model"], "host": one["host"]}
        x = [_iso(p["run_started_at"]) for p in points]
        y = [round(float(p[metric.name]), 3) for p in points]
        fig.add_trace(
            go.Scatter(
                name=plotly_text(name),
                legendgroup=f"series-{index}",
                meta=facets,
                mode="lines+markers",
                x=x,
                y=y,
                text=[_hover(one, p) for p in points],
                hovertemplate="%{y:.1f} " + unit + "<br>%{text}<extra></extra>",
                line={"color": color, "width": 2, "dash": dash},
                marker={"color": color, "size": 8},
            )
        )
        where = _Where(index, facets, plotly_text(name), x, y)
        _change_marks(fig, where, one, points, moved)
        for regression in (True, False):
            _verdict_marks(fig, where, one, points, metric, changes, regression)
    if not fig.data:
        return None
    fig.update_layout(base_layout(metric.y_title, hovermode="closest"))
    fig.update_xaxes(type="date", title={"text": "run started (UTC)"})
    _mark_runs(fig, moved)
    return fig


@dataclass(frozen=True)
class _Where:
    """A series' place in the chart: its legend group, facets, shown name and points."""

    index: int
    facets: Mapping[str, str]
    name: str
    x: list[str]
    y: list[float]


def _change_marks(
    fig: go.Figure,
    where: _Where,
    one: Mapping[str, Any],
    points: Sequence[Mapping[str, Any]],
    moved: dict[str, list[str]],
) -> None:
    """Diamonds where the digest or Ollama version changed; the change noted in `moved`."""
    changed = [i for i, p in enumerate(points) if p["changes"]]
    for i in changed:
        for change in points[i]["changes"]:
            text = change if change.startswith("Ollama") else f"{one['model']}: {change}"
            if text not in moved[where.x[i]]:
                moved[where.x[i]].append(text)
    if changed:
        fig.add_trace(
            _marks(
                "digest or Ollama changed",
                where.index,
                where.facets,
                [where.x[i] for i in changed],
                [where.y[i] for i in changed],
                [
                    f"<b>{where.name}</b><br>"
                    + "<br>".join(plotly_text(c) for c in points[i]["changes"])
                    for i in changed
                ],
                {
                    "symbol": "diamond-open",
                    "size": 17,
                    "color": CHANGE_COLOR,
                    "line": {"width": 2, "color": CHANGE_COLOR},
                },
            )
        )


def _verdict_marks(
    fig: go.Figure,
    where: _Where,
    one: Mapping[str, Any],
    points: Sequence[Mapping[str, Any]],
    metric: TrendMetric,
    changes: Mapping[ChangeKey, Sequence[Finding]],
    regression: bool,
) -> None:
    """Red rings on significant regressions of this metric (or green on improvements)."""
    marked = []
    for i, p in enumerate(points):
        key = (p["run_id"], one["model"], one["host"], one["mode"], metric.name)
        found = [f for f in changes.get(key, []) if (f.verdict == REGRESSION) == regression]
        if found:
            marked.append((i, found))
    if not marked:
        return
    color = REGRESSION_COLOR if regression else IMPROVEMENT_COLOR
    fig.add_trace(
        _marks(
            "regression" if regression else "improvement",
            where.index,
            where.facets,
            [where.x[i] for i, _ in marked],
            [where.y[i] for i, _ in marked],
            [f"<b>{where.name}</b><br>" + _findings_hover(f) for _, f in marked],
            {
                "symbol": "circle-open",
                "size": 19,
                "color": color,
                "line": {"width": 3, "color": color},
            },
        )
    )


def _mark_runs(fig: go.Figure, moved: Mapping[str, Sequence[str]]) -> None:
    """A dotted line at each run where something changed, labelled at the top of the plot.

    Labels of runs close together on the time axis step down, so they do not cover each other.
    """
    if not moved:
        return
    times = [datetime.fromisoformat(at) for at in sorted(moved)]
    starts = [_iso(p) for t in fig.data for p in t.x]
    first, last = min(map(datetime.fromisoformat, starts)), max(map(datetime.fromisoformat, starts))
    span = max((last - first).total_seconds(), 1.0)
    level, previous = 0, None
    for at, when in zip(sorted(moved), times, strict=True):
        texts = moved[at]
        if previous is not None and (when - previous).total_seconds() / span < LABEL_CROWDING:
            level = (level + 1) % LABEL_LEVELS
        else:
            level = 0
        previous = when
        versions = [t for t in texts if t.startswith("Ollama")]
        short = versions[0] if versions else "new digest"
        if versions and len(texts) > len(versions):
            short += " · new digest"
        fig.add_vline(x=at, line={"color": "#9ca3af", "width": 1, "dash": "dot"})
        fig.add_annotation(
            x=at,
            y=1 - 0.085 * level,
            yref="paper",
            yanchor="top",
            # right of the line, or left of it near the end of the axis, so it stays inside
            xanchor="left" if (when - first).total_seconds() / span < 0.6 else "right",
            xshift=3 if (when - first).total_seconds() / span < 0.6 else -3,
            showarrow=False,
            text=plotly_text(short),
            hovertext="<br>".join(plotly_text(t) for t in texts),
            font={"size": 11, "color": "#374151"},
            bgcolor="rgba(255,255,255,0.85)",
        )


def _marks(
    kind: str,
    index: int,
    facets: Mapping[str, str],
    x: list[str],
    y: list[float],
    hover: list[str],
    marker: dict[str, Any],
) -> go.Scatter:
    """Markers drawn over a series' points; they follow the series when its legend item is hit."""
    return go.Scatter(
        name=kind,
        legendgroup=f"series-{index}",
        showlegend=False,
        meta=dict(facets),
        mode="markers",
        x=x,
        y=y,
        text=hover,
        hovertemplate="%{text}<extra></extra>",
        marker=marker,
    )


def _findings_hover(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        change = "—" if f.change_pct is None else f"{f.change_pct:+.1f}%"
        p_value = "—" if f.p_value is None else f"{f.p_value:.2g}"
        lines.append(
            f"{f.verdict}: {plotly_text(f.label)} {change} (p = {p_value}), "
            f"prompt {plotly_text(f.prompt_id)}, vs run "
            + plotly_text(", ".join(f.baseline_run_ids) or "?")
        )
    return "<br>".join(lines)


def _hover(one: Mapping[str, Any], point: Mapping[str, Any]) -> str:
    return "<br>".join(
        [
            f"<b>{plotly_text(one['model'])}</b> · {plotly_text(one['mode'])}",
            f"run {plotly_text(point['run_id'])}",
            f"novabench {plotly_text(point['novabench_version'] or '?')}, "
            f"Ollama {plotly_text(point['ollama_version'] or '?')}",
            f"digest {plotly_text(short_digest(point['digest']) or '?')}",
            f"{point['requests']} requests",
        ]
    )


def _iso(value: datetime | str) -> str:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
