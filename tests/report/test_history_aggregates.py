"""The history page from per-run aggregates: the same charts as before for a short history, long
lines thinned by the stated rule, readable time axes, and a size that follows the lines."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from novabench.analysis.compare import REGRESSION, Finding
from novabench.analysis.history import bring_up_to_date
from novabench.analysis.statistics import median
from novabench.report import long_series as rule
from novabench.report import render_history, trends
from novabench.storage.long_series import thinned_sql
from novabench.storage.store import Store
from tests.fixtures import make_schema5_db
from tests.report.pages import CHART_JSON, with_shared
from tests.scale.history import HistoryShape, build_history

FIGURE = re.compile(r'<script type="application/json" id="figure-([^"]+)">(.*?)</script>', re.S)
T0 = datetime(2026, 1, 1)


def _figures(page: str) -> dict[str, dict[str, Any]]:
    return {name: with_shared(page, json.loads(text)) for name, text in FIGURE.findall(page)}


def _lines(figure: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in figure["data"] if t["mode"] == "lines+markers"]


# ---- a short history draws what it drew before ---------------------------------------------


def test_the_schema_5_history_keeps_its_points_and_marks(tmp_path: Path) -> None:
    """What changed from the page novabench rendered before issue 13: the x axis (tick formats by
    zoom, a range of at least two hours), each point's hover text (the line's model and mode
    moved to its hover template; the same run, versions, digest and count) and the paragraph
    stating the long-series rule. Every point, mark, table and filter is the same."""
    golden = make_schema5_db.golden_pages()["history.html"]
    db = make_schema5_db.unpack(tmp_path / "novabench.duckdb")
    page = make_schema5_db.normalise(render_history(Store(db), tmp_path / "out").read_text())
    old, new = _figures(golden), _figures(page)
    assert list(old) == list(new)
    for name in old:
        assert len(old[name]["data"]) == len(new[name]["data"])
        for before, after in zip(old[name]["data"], new[name]["data"], strict=True):
            kept = set(before) - {"text", "hovertemplate"}
            assert {k: after[k] for k in kept} == {k: before[k] for k in kept}, name
            for was, now in zip(before.get("text", []), after.get("text", []), strict=True):
                facts = re.findall(r"(?:run|Ollama|digest) [^\s<]+|\d+ requests", was)
                assert all(fact in now for fact in facts), (was, now)
        layout_before = {k: v for k, v in old[name]["layout"].items() if k != "xaxis"}
        assert {k: v for k, v in new[name]["layout"].items() if k != "xaxis"} == layout_before
        axis = new[name]["layout"]["xaxis"]
        assert axis["tickformatstops"] == [dict(stop) for stop in rule.TICK_FORMATS]
        first, last = (datetime.fromisoformat(x) for x in axis["range"])
        assert last - first == rule.MIN_SPAN  # the runs were seconds apart
    rule_line = f'  <p class="lede" id="series-rule">{_escaped(rule.SERIES_RULE)}</p>\n'
    assert rule_line in page
    assert CHART_JSON.sub("", page.replace(rule_line, "")) == CHART_JSON.sub("", golden)


def _escaped(text: str) -> str:
    return text.replace("'", "&#39;")


# ---- the long-series rule, as DuckDB applies it (storage/long_series.py) ---------------------


def _thinned(
    points: list[dict[str, Any]], values: tuple[str, ...], same: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The points of one line of `points` (a row per run, as _points makes) by thinned_sql."""
    with duckdb.connect() as con:
        con.execute(
            "CREATE TABLE line_runs (line VARCHAR, run_id VARCHAR, run_started_at TIMESTAMP, "
            "digest VARCHAR, ollama_version VARCHAR, requests BIGINT, ttft_ms DOUBLE)"
        )
        con.executemany(
            "INSERT INTO line_runs VALUES ('one', ?, ?, ?, ?, ?, ?)",
            [
                [p["run_id"], p["run_started_at"], p["digest"], p["ollama_version"]]
                + [p["requests"], p["ttft_ms"]]
                for p in points
            ],
        )
        last = tuple(c for c in ("digest", "ollama_version") if c not in same)
        cursor = con.execute(thinned_sql("SELECT * FROM line_runs", ("line",), values, same, last))
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _own(point: dict[str, Any]) -> tuple[Any, ...]:
    """What a run's own point holds of it."""
    return (point["run_id"], point["run_started_at"], point["requests"], point["ttft_ms"])


def _points(starts: list[datetime], digest: str = "d") -> list[dict[str, Any]]:
    return [
        {
            "run_id": f"R{n:05d}",
            "run_started_at": at,
            "digest": digest,
            "ollama_version": "0.12.6",
            "requests": 4,
            "ttft_ms": 100.0 + n,
        }
        for n, at in enumerate(starts)
    ]


def test_a_short_line_keeps_one_point_per_run() -> None:
    points = _points([T0 + timedelta(days=n) for n in range(rule.RECENT_RUNS)])
    thinned = _thinned(points, ("ttft_ms",), ("digest",))
    assert [p["run_ids"] for p in thinned] == [[p["run_id"]] for p in points]
    assert [_own(p) for p in thinned] == [_own(p) for p in points]
    assert all(p["period"] is None and p["runs"] == 1 for p in thinned)


def test_a_long_line_pools_older_runs_by_day_week_and_month() -> None:
    latest = datetime(2026, 12, 31, 23, 0)
    starts = sorted(latest - timedelta(hours=7 * n) for n in range(2000))  # ~19 months
    points = _points(starts)
    thinned = _thinned(points, ("ttft_ms",), ("digest",))
    recent = thinned[-rule.RECENT_RUNS :]
    assert [_own(p) for p in recent] == [_own(p) for p in points[-rule.RECENT_RUNS :]]
    assert all(p["run_ids"] == [p["run_id"]] and p["period"] is None for p in recent)
    pooled = thinned[: -rule.RECENT_RUNS]
    assert [p["run_id"] for p in pooled] == [None] * len(pooled)
    assert sum(p["runs"] for p in pooled) + rule.RECENT_RUNS == len(points)
    by_id = {p["run_id"]: p for p in points}
    for point in pooled:
        members = [by_id[r] for r in point["run_ids"]]
        age = latest - max(m["run_started_at"] for m in members)
        period = "day" if age <= timedelta(days=rule.DAILY_DAYS) else None
        if period is None:
            period = "week" if age <= timedelta(days=rule.WEEKLY_DAYS) else "month"
        assert point["period"] == period
        assert point["ttft_ms"] == pytest.approx(median(m["ttft_ms"] for m in members))
        assert point["requests"] == 4 * len(members)
        first, last = members[0]["run_started_at"], members[-1]["run_started_at"]
        assert point["run_started_at"] == (first + (last - first) / 2).replace(microsecond=0)
        start = datetime(first.year, first.month, 1 if period == "month" else first.day)
        if period == "week":
            start -= timedelta(days=start.weekday())
        assert point["period_start"] == start
        assert all(m["run_started_at"] - start < timedelta(days=31) for m in members)
    assert {p["period"] for p in pooled} == {"day", "week", "month"}
    # however many runs, a line stays around RECENT_RUNS + days + weeks + months points
    assert len(thinned) < rule.RECENT_RUNS + rule.DAILY_DAYS + rule.WEEKLY_DAYS // 7 + 20
    assert [p["run_started_at"] for p in thinned] == sorted(p["run_started_at"] for p in thinned)


def test_a_day_never_pools_two_digests() -> None:
    day = [T0 + timedelta(hours=h) for h in range(12)]
    points = _points(day[:6]) + _points(day[6:], digest="e")
    for n, point in enumerate(points):
        point["run_id"] = f"R{n:05d}"
    recent = _points([T0 + timedelta(days=2, hours=n) for n in range(rule.RECENT_RUNS)])
    thinned = _thinned(points + recent, ("ttft_ms",), ("digest",))
    pooled = [p for p in thinned if p["period"] is not None]
    assert [(p["digest"], p["runs"]) for p in pooled] == [("d", 6), ("e", 6)]


def test_a_pooled_point_is_ringed_when_one_of_its_runs_regressed() -> None:
    starts = [T0 + timedelta(hours=n) for n in range(rule.RECENT_RUNS + 30)]
    series = [
        {
            "suite": "s",
            "model": "m",
            "host": "h",
            "mode": "sequential",
            "points": [
                {**p, "novabench_version": "0.1.0", "changes": []}
                for p in _thinned(_points(starts), ("ttft_ms",), ("digest",))
            ],
        }
    ]
    pooled = series[0]["points"][0]
    assert pooled["period"] == "day" and pooled["runs"] > 1
    finding = Finding(
        "sequential", "m", "h", "p1", "ttft_ms", pooled["run_ids"][1], ("R00000",),
        8, 8, 100.0, 200.0, 1.0, 0.0001, REGRESSION,
    )  # fmt: skip
    metric = next(m for m in trends.TREND_METRICS if m.name == "ttft_ms")
    figure = trends.history_chart(series, metric, trends.change_index({finding.run_id: [finding]}))
    assert figure is not None
    (ring,) = [t for t in figure["data"] if t["name"] == "regression"]
    line = _lines(figure)[0]
    assert ring["x"] == [line["x"][0]] and ring["y"] == [line["y"][0]]
    assert line["text"][0].startswith(f"median of {pooled['runs']} runs on 2026-01-01 (UTC)")
    assert line["text"][-1].startswith(f"run R{len(starts) - 1:05d} · 4 requests")
    # a pooled point's hover lists its most recent findings, not hundreds
    many = {
        run_id: [dataclasses.replace(finding, run_id=run_id, prompt_id=f"p-{run_id}")]
        for run_id in pooled["run_ids"]
    }
    figure = trends.history_chart(series, metric, trends.change_index(many))
    assert figure is not None
    (ring,) = [t for t in figure["data"] if t["name"] == "regression"]
    hover = ring["text"][0]
    assert hover.count("prompt p-") == trends.HOVER_FINDINGS < pooled["runs"]
    assert f"… and {pooled['runs'] - trends.HOVER_FINDINGS} earlier in this period" in hover
    assert f"prompt p-{pooled['run_ids'][-1]}" in hover


# ---- time axes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "forced"),
    [(timedelta(0), True), (timedelta(minutes=5), True), (timedelta(days=400), False)],
)
def test_a_time_axis_spans_at_least_two_hours(span: timedelta, forced: bool) -> None:
    figure = rule.plain_figure(
        [{"type": "scatter", "x": [str(T0), str(T0 + span)], "y": [1, 2]}], {"xaxis": {}}
    )
    rule.time_axis(figure, "run started (UTC)")
    axis = figure["layout"]["xaxis"]
    assert axis["type"] == "date" and axis["tickformatstops"][0]["value"] == "%H:%M:%S.%L"
    assert ("range" in axis) is forced
    if forced:
        first, last = (datetime.fromisoformat(x) for x in axis["range"])
        assert last - first == rule.MIN_SPAN and first <= T0 and T0 + span <= last


# ---- a long history ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Path]:
    """900 runs of three suites every 6 hours (225 days), with load sweeps, summarized."""
    folder = tmp_path_factory.mktemp("long")
    shape = HistoryShape(
        runs=900, requests_per_run=10, models_per_run=1, prompts=2, interval=timedelta(hours=6)
    )
    store = build_history(folder / "db.duckdb", shape)
    bring_up_to_date(store)
    return store, render_history(store, folder / "out")


def test_a_long_history_draws_each_line_by_the_rule(long_history: tuple[Store, Path]) -> None:
    store, path = long_history
    page = path.read_text(encoding="utf-8")
    assert _escaped(rule.SERIES_RULE) in page
    medians = {(s.run_id, s.host, s.mode): s.ttft_ms_p50 for s in store.run_summaries()}
    lines = [t for name, f in _figures(page).items() if name.endswith("-ttft") for t in _lines(f)]
    assert len(lines) == 3 * 2 * 2  # suites x hosts x modes
    for line in lines:
        runs = len([k for k in medians if k[1:] == (line["meta"]["host"], "sequential")])
        assert len(line["x"]) < runs / 3  # far fewer points than runs
        recent = line["text"][-rule.RECENT_RUNS :]
        assert all(text.startswith("run ") for text in recent)
        assert not any(text.startswith("run ") for text in line["text"][: -rule.RECENT_RUNS])
        # 60 runs of a line span ~90 days here: older runs pool by week, then by month (the
        # days are covered by test_a_long_line_pools_older_runs_by_day_week_and_month)
        periods = " ".join(line["text"])
        assert "runs in the week of " in periods and re.search(r"runs in \w+ 2026 \(UTC\)", periods)
    peak = [f for name, f in _figures(page).items() if name.endswith("load-peak")]
    assert peak and all(len(_lines(f)[0]["x"]) <= 36 for f in peak)  # 36 sweeps: all shown


def test_a_long_lines_points_name_only_their_runs_with_changes(
    long_history: tuple[Store, Path], tmp_path: Path
) -> None:
    """A pooled point of a long line stands for many runs; Python gets how many, the last one,
    and only those with significant changes (for its rings), never the whole list."""
    store = Store(Path(shutil.copy(long_history[0].path, tmp_path / "db.duckdb")))
    with store.connect() as con:  # a regression in every 37th run's first group
        con.execute(
            """
            INSERT INTO run_changes
            SELECT run_id, 0, mode, model, host, prompt_id, 'ttft_ms', [], 8, 8, 100, 150, 0.5,
                   0.001, 'regression', []
            FROM (SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY model) AS nth,
                         dense_rank() OVER (ORDER BY run_id) AS run_number
                  FROM run_summaries WHERE prompt_id IS NOT NULL AND mode <> 'load' AND n > 0)
            WHERE nth = 1 AND run_number % 37 = 0
            """
        )
    points = store.history_points(trends.TREND_NAMES)
    changed = {f.run_id for f in store.run_changes()}
    summaries = [s for s in store.run_summaries() if s.mode != "load" and s.n]
    per_line: dict[tuple[str, ...], list[Any]] = {}
    for summary in summaries:
        key = (summary.suite_name, summary.model, summary.host, summary.mode)
        per_line.setdefault(key, []).append(summary)
    assert changed and any(p["run_ids"] for p in points if p["period"])
    for key, of_line in per_line.items():
        line = [p for p in points if (p["suite"], p["model"], p["host"], p["mode"]) == key]
        assert sum(p["runs"] for p in line) == len(of_line)
        assert line[-1]["last_run_id"] == line[-1]["run_id"] == of_line[-1].run_id
        for point in line:
            assert set(point["run_ids"]) <= changed
    listed = {r for p in points for r in p["run_ids"]}
    assert listed == changed & {s.run_id for s in summaries}


def test_a_long_history_lists_recent_runs_and_stays_small(long_history: tuple[Store, Path]) -> None:
    store, path = long_history
    page = path.read_text(encoding="utf-8")
    rows = re.findall(r'<tr data-run-id="([^"]+)" data-facets=', page)
    assert len(rows) == 4 * 10  # three suites and the load suite, ten runs each
    assert "The 10 most recent runs of each suite (40 of 900)" in page
    newest = store.run_counts()[0]
    assert rows[0] == newest.run_id
    own = FIGURE.sub("", page)
    figures = sum(len(text) for _, text in FIGURE.findall(page))
    plotly_js = page.index("</script>", page.index("plotly.js v")) - page.index("plotly.js v")
    print(f"900-run history page: {figures / 1e6:.2f} MB of figures, {len(own) / 1e6:.2f} MB else")
    assert figures + len(own) - plotly_js < 2_000_000
