"""The history page's figures: per-run medians of each model over time, with what moved them.

Built from the runs' stored summaries and significant changes only (`Store.history_points()`,
`compare.stored_changes()`). A point is one run of one (suite, model, host, mode), or the median
of a day's, week's or month's runs for a long line (long_series.SERIES_RULE); it is marked where the
model's digest or the host's Ollama version differs from the series' previous point, and where
a significant change was found.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from novabench.analysis.compare import REGRESSION, Finding
from novabench.report.charts import SERIES_COLORS, base_layout, plotly_text, short_digest
from novabench.report.long_series import (
    period_text,
    plain_figure,
    template_text,
    time_axis,
    vline,
)


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
# A ring's hover lists at most this many findings (a month's point may hold hundreds).
HOVER_FINDINGS = 6
REGRESSION_COLOR = "#dc2626"
IMPROVEMENT_COLOR = "#059669"

ChangeKey = tuple[str, str, str, str, str]  # run id, model, host, mode, metric


def history_series(points: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The lines of every (suite, model, host, mode) from their points, thinned in DuckDB by
    long_series.SERIES_RULE (`Store.history_points(TREND_NAMES)`), oldest point first.

    Modes stay apart: parallel requests compete, so pooling them with sequential ones would move
    a line whenever a suite changed its modes. Each series has its suite, model, host, mode and
    points: run id (None for a pooled point), `last_run_id`, `runs` and `run_ids` (those with
    significant changes), run start, novabench and Ollama (of
    the series' host) versions, digest, request count, the median of every TREND_METRICS figure,
    and `changes`: what differs from the previous point ("digest a → b", "Ollama x → y").
    """
    lines: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        lines[(point["suite"], point["model"], point["host"], point["mode"])].append(dict(point))
    series = []
    for (suite, model, host, mode), of_line in sorted(lines.items()):
        for before, point in zip([None, *of_line], of_line, strict=False):
            point["changes"] = _changes(before, point)
            point["hover"] = _hover(point)  # the same in every metric's chart: made once
        series.append(
            {"suite": suite, "model": model, "host": host, "mode": mode, "points": of_line}
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
) -> dict[str, Any] | None:
    """One suite's line per (model, host, mode) of a per-run median over run start, as a Plotly
    figure (a plain dict: building thousands of points through plotly's objects is slow); None
    if empty.

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
    data: list[dict[str, Any]] = []
    moved: dict[str, list[str]] = defaultdict(list)  # run start -> what changed there
    changed_runs: dict[tuple[str, str, str], set[str]] = defaultdict(set)  # of this metric
    for run_id, model, host, mode, name in changes:
        if name == metric.name:
            changed_runs[(model, host, mode)].add(run_id)
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
        # what every point of the line shares is said once, in the template
        line_text = template_text(
            f"<b>{plotly_text(one['model'])}</b> · {plotly_text(one['mode'])}"
        )
        data.append(
            {
                "type": "scatter",
                "name": plotly_text(name),
                "legendgroup": f"series-{index}",
                "meta": facets,
                "mode": "lines+markers",
                "x": x,
                "y": y,
                "text": [p.get("hover") or _hover(p) for p in points],
                "hovertemplate": f"%{{y:.1f}} {unit}<br>{line_text}<br>%{{text}}<extra></extra>",
                "line": {"color": color, "width": 2, "dash": dash},
                "marker": {"color": color, "size": 8},
            }
        )
        where = _Where(index, facets, plotly_text(name), x, y)
        _change_marks(data, where, one, points, moved)
        flagged = changed_runs.get((one["model"], one["host"], one["mode"]), set())
        at_point = {
            run_id: (i, k)
            for i, p in enumerate(points)
            if not flagged.isdisjoint(p["run_ids"])  # most points: no change in any of its runs
            for k, run_id in enumerate(p["run_ids"])
            if run_id in flagged
        }
        for regression in (True, False):
            _verdict_marks(data, where, one, metric, changes, at_point, regression)
    if not data:
        return None
    fig = plain_figure(data, base_layout(metric.y_title, hovermode="closest"))
    time_axis(fig, "run started (UTC)")
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
    data: list[dict[str, Any]],
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
        data.append(
            _marks(
                "digest or Ollama changed",
                where,
                changed,
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
    data: list[dict[str, Any]],
    where: _Where,
    one: Mapping[str, Any],
    metric: TrendMetric,
    changes: Mapping[ChangeKey, Sequence[Finding]],
    at_point: Mapping[str, tuple[int, int]],
    regression: bool,
) -> None:
    """Red rings on significant regressions of this metric (or green on improvements); a pooled
    point is ringed when any of its runs is, its findings in the order of its runs.
    `at_point`: each run with a change of this metric -> (its point, its place in the point)."""
    by_point: dict[int, list[tuple[int, Finding]]] = defaultdict(list)
    for run_id, (i, k) in at_point.items():
        for f in changes.get((run_id, one["model"], one["host"], one["mode"], metric.name), ()):
            if (f.verdict == REGRESSION) == regression:
                by_point[i].append((k, f))
    marked = [
        (i, [f for _, f in sorted(found, key=lambda placed: placed[0])])
        for i, found in sorted(by_point.items())
    ]
    if not marked:
        return
    color = REGRESSION_COLOR if regression else IMPROVEMENT_COLOR
    data.append(
        _marks(
            "regression" if regression else "improvement",
            where,
            [i for i, _ in marked],
            [f"<b>{where.name}</b><br>" + _findings_hover(f) for _, f in marked],
            {
                "symbol": "circle-open",
                "size": 19,
                "color": color,
                "line": {"width": 3, "color": color},
            },
        )
    )


def _mark_runs(fig: dict[str, Any], moved: Mapping[str, Sequence[str]]) -> None:
    """A dotted line at each run where something changed, labelled at the top of the plot.

    Labels of runs close together on the time axis step down, so they do not cover each other.
    """
    if not moved:
        return
    times = [datetime.fromisoformat(at) for at in sorted(moved)]
    starts = [datetime.fromisoformat(_iso(p)) for t in fig["data"] for p in t["x"]]
    first, last = min(starts), max(starts)
    span = max((last - first).total_seconds(), 1.0)
    level, previous = 0, None
    shapes, annotations = fig["layout"].setdefault("shapes", []), []
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
        shapes.append(vline(at))
        early = (when - first).total_seconds() / span < 0.6
        annotations.append(
            {
                "x": at,
                "y": 1 - 0.085 * level,
                "yref": "paper",
                "yanchor": "top",
                # right of the line, or left of it near the end of the axis, so it stays inside
                "xanchor": "left" if early else "right",
                "xshift": 3 if early else -3,
                "showarrow": False,
                "text": plotly_text(short),
                "hovertext": "<br>".join(plotly_text(t) for t in texts),
                "font": {"size": 11, "color": "#374151"},
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        )
    fig["layout"]["annotations"] = annotations


def _marks(
    kind: str, where: _Where, indexes: Sequence[int], hover: list[str], marker: dict[str, Any]
) -> dict[str, Any]:
    """Markers drawn over a series' points; they follow the series when its legend item is hit."""
    return {
        "type": "scatter",
        "name": kind,
        "legendgroup": f"series-{where.index}",
        "showlegend": False,
        "meta": dict(where.facets),
        "mode": "markers",
        "x": [where.x[i] for i in indexes],
        "y": [where.y[i] for i in indexes],
        "text": hover,
        "hovertemplate": "%{text}<extra></extra>",
        "marker": marker,
    }


def _findings_hover(findings: Sequence[Finding]) -> str:
    """The findings of a point (oldest first); of a pooled point's many, the most recent ones."""
    lines = (
        []
        if len(findings) <= HOVER_FINDINGS
        else [f"… and {len(findings) - HOVER_FINDINGS} earlier in this period"]
    )
    for f in findings[-HOVER_FINDINGS:]:
        change = "—" if f.change_pct is None else f"{f.change_pct:+.1f}%"
        p_value = "—" if f.p_value is None else f"{f.p_value:.2g}"
        lines.append(
            f"{f.verdict}: {plotly_text(f.label)} {change} (p = {p_value}), "
            f"prompt {plotly_text(f.prompt_id)}, vs run "
            + plotly_text(", ".join(f.baseline_run_ids) or "?")
        )
    return "<br>".join(lines)


def _hover(point: Mapping[str, Any]) -> str:
    """A point's own facts (the line's model and mode are in its hover template)."""
    versions = (
        f"novabench {plotly_text(point['novabench_version'] or '?')} · "
        f"Ollama {plotly_text(point['ollama_version'] or '?')} · "
        f"digest {plotly_text(short_digest(point['digest']) or '?')}"
    )
    if point["period"] is None:
        return f"run {plotly_text(point['run_id'])} · {point['requests']} requests<br>{versions}"
    return (
        f"{period_text(point)} · {point['requests']} requests<br>"
        f"last run {plotly_text(point['last_run_id'])}<br>{versions}"
    )


def _iso(value: datetime | str) -> str:
    return value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
