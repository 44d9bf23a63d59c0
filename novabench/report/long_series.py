"""History lines that stay readable at any length: recent runs one point each, older ones as
daily and weekly medians; and time axes that read well for one run or ten thousand."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import plotly.io as pio

from novabench.analysis.statistics import median

# Per line: its most recent runs are drawn one point each...
RECENT_RUNS = 60
# ...older runs as one point per day within this many days of the line's latest run, one per
# week (from Monday) within this many, and one per calendar month before that. A line then has
# at most about RECENT_RUNS + DAILY_DAYS + WEEKLY_DAYS / 7 + its months points, however many
# runs it has: the page's size follows the number of lines, not of runs.
DAILY_DAYS = 30
WEEKLY_DAYS = 182
SERIES_RULE = (
    f"Each line draws its {RECENT_RUNS} most recent runs one point per run. Older runs are "
    "drawn as one point per day (the median of that day's run medians) for the "
    f"{DAILY_DAYS} days before the line's latest run, one point per week up to "
    f"{WEEKLY_DAYS // 7} weeks before it, and one point per month before that; such a point "
    "never pools runs of different model digests or Ollama versions. Hover a point for what it "
    "holds."
)
# A time axis spans at least this much, so that one run does not get ticks in milliseconds.
MIN_SPAN = timedelta(hours=2)
_MS = {"second": 1_000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
# Tick labels by the distance between ticks (d3 time formats; Plotly picks by dtick).
TICK_FORMATS = (
    {"dtickrange": [None, _MS["second"]], "value": "%H:%M:%S.%L"},
    {"dtickrange": [_MS["second"], _MS["minute"]], "value": "%H:%M:%S<br>%b %-d, %Y"},
    {"dtickrange": [_MS["minute"], _MS["day"]], "value": "%H:%M<br>%b %-d, %Y"},
    {"dtickrange": [_MS["day"], "M1"], "value": "%b %-d<br>%Y"},
    {"dtickrange": ["M1", "M12"], "value": "%b %Y"},
    {"dtickrange": ["M12", None], "value": "%Y"},
)


def thinned(
    points: Sequence[dict[str, Any]], values: Sequence[str], same: Sequence[str]
) -> list[dict[str, Any]]:
    """A line's points (oldest first, one per run: run_id, run_started_at, `values`, `same`)
    by SERIES_RULE.

    Every point gets `run_ids` (the runs it stands for), `runs` and `period` (None for one run,
    else 'day' or 'week', with `period_start`). A day's or week's point is placed at the middle
    of its runs, holds the median of each of `values` over them (and the sum of `requests`),
    and pools only runs alike in every field of `same` (digest, Ollama version).
    """
    single = [{**p, "run_ids": [p["run_id"]], "runs": 1, "period": None} for p in points]
    if len(points) <= RECENT_RUNS:
        return single
    older, recent = points[:-RECENT_RUNS], single[-RECENT_RUNS:]
    latest = points[-1]["run_started_at"]
    buckets: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for point in older:
        period, start = _period(point["run_started_at"], latest)
        key = (period, start, *(point[name] for name in same))
        buckets.setdefault(key, []).append(point)
    pooled = [
        _pooled(members, period, start, values) for (period, start, *_), members in buckets.items()
    ]
    pooled.sort(key=lambda p: p["run_started_at"])
    return pooled + recent


def _period(at: datetime, latest: datetime) -> tuple[str, datetime]:
    day = datetime(at.year, at.month, at.day)
    if latest - at <= timedelta(days=DAILY_DAYS):
        return "day", day
    if latest - at <= timedelta(days=WEEKLY_DAYS):
        return "week", day - timedelta(days=day.weekday())
    return "month", datetime(at.year, at.month, 1)


def _pooled(
    members: Sequence[dict[str, Any]], period: str, start: datetime, values: Sequence[str]
) -> dict[str, Any]:
    first, last = members[0]["run_started_at"], members[-1]["run_started_at"]
    pooled = {
        **members[-1],
        "run_id": None,
        "run_ids": [m["run_id"] for m in members],
        "runs": len(members),
        "period": period,
        "period_start": start,
        "run_started_at": (first + (last - first) / 2).replace(microsecond=0),
    }
    for name in values:
        pooled[name] = median(m[name] for m in members)
    if "requests" in pooled:
        pooled["requests"] = sum(m["requests"] for m in members)
    return pooled


def period_text(point: Mapping[str, Any]) -> str:
    """'median of 24 runs on 2026-03-02 (UTC)' for a pooled point, '' for a run's own."""
    start: datetime | None = point.get("period_start")
    if point["period"] is None or start is None:
        return ""
    when = {
        "day": f"on {start:%Y-%m-%d}",
        "week": f"in the week of {start:%Y-%m-%d}",
        "month": f"in {start:%B %Y}",
    }[point["period"]]
    return f"median of {point['runs']} runs {when} (UTC)"


def plain_figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> dict[str, Any]:
    """A figure as the JSON Plotly.js reads, without plotly's objects (slow for many points):
    the named template resolved as plotly.graph_objects would."""
    layout = dict(layout)
    if isinstance(layout.get("template"), str):
        layout["template"] = _template(layout["template"])
    return {"data": data, "layout": layout}


@functools.cache
def _template(name: str) -> dict[str, Any]:
    return dict(pio.templates[name].to_plotly_json())


def template_text(text: str) -> str:
    """Text put in a hover template: '%{' would start a placeholder there."""
    return text.replace("%{", "%\u200b{")


def vline(at: str) -> dict[str, Any]:
    """A dotted vertical line across the plot at `at`, as Figure.add_vline draws it."""
    return {
        "type": "line",
        "xref": "x",
        "yref": "y domain",
        "x0": at,
        "x1": at,
        "y0": 0,
        "y1": 1,
        "line": {"color": "#9ca3af", "width": 1, "dash": "dot"},
    }


def time_axis(fig: dict[str, Any], title: str) -> None:
    """A date axis with tick labels for its zoom, spanning at least MIN_SPAN."""
    times = [_time(x) for trace in fig["data"] for x in (trace.get("x") or ())]
    axis: dict[str, Any] = {
        "type": "date",
        "title": {"text": title},
        "tickformatstops": list(TICK_FORMATS),
    }
    if times and max(times) - min(times) < MIN_SPAN:
        middle = (min(times) + (max(times) - min(times)) / 2).replace(microsecond=0)
        axis["range"] = [_iso(middle - MIN_SPAN / 2), _iso(middle + MIN_SPAN / 2)]
    fig["layout"]["xaxis"] = {**fig["layout"].get("xaxis", {}), **axis}


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _iso(value: datetime) -> str:
    return value.isoformat(sep=" ")
