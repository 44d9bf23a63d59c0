"""History lines that stay readable at any length: the rule (storage/long_series.py thins the
lines in DuckDB by it) as the page states it, and time axes that read well for one run or ten
thousand."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import plotly.io as pio

from novabench.storage.long_series import DAILY_DAYS, RECENT_RUNS, WEEKLY_DAYS

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
