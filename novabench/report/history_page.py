"""What the history page shows: per suite, each model's figures run by run, and what changed.

It reads the per-run aggregates only (summaries, changes, load levels; analysis/history.py
makes any that are missing first), thinned in DuckDB to a bounded number of points per line,
and the small facts of the runs it lists: its cost follows the number of lines, not of runs or
stored requests. Suites whose stored state has not changed since the page was last written are
not drawn again (report/history_cache.py): after a run, only its suite is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from novabench.analysis.compare import Finding, stored_changes
from novabench.analysis.history import bring_up_to_date
from novabench.analysis.significance import REGRESSION
from novabench.records import LevelSummary, RunCounts
from novabench.report import history_cache, sweep_trends, trends
from novabench.report.figures import SharedArrays, figure, figure_json, script_json
from novabench.report.history_cache import SuiteCharts
from novabench.report.long_series import SERIES_RULE
from novabench.storage.store import Store

# The runs table lists each suite's most recent runs (the index lists every run)...
RUNS_LISTED_PER_SUITE = 10
# ...and the changes table the most recent runs that changed (the charts ring every one).
CHANGED_RUNS_LISTED = 50


def history_context(store: Store) -> dict[str, Any]:
    """The history page's template context; the charts of suites unchanged since the page was
    last written are taken from where they were kept (history_cache)."""
    cache = history_cache.folder_of(store.path)
    with store.holding():
        bring_up_to_date(store)
        keys = {
            suite: history_cache.state_key(state) for suite, state in store.history_states().items()
        }
        kept = {
            suite: charts
            for suite, key in keys.items()
            if (charts := history_cache.load(cache, suite, key))
        }
        drawing = _Drawing.read(store, sorted(set(keys) - set(kept)))
        overview = store.history_overview()
        listed = store.run_counts(newest_per_suite=RUNS_LISTED_PER_SUITE)
        changed = store.run_counts(overview.changed_run_ids[:CHANGED_RUNS_LISTED])
        changes = stored_changes(store, [run.run_id for run in changed])
    for charts in drawing.draw():
        kept[charts.name] = charts
        history_cache.save(cache, keys[charts.name], charts)
    history_cache.forget_others(cache, list(keys))
    suites = [kept[name] for name in sorted(kept) if kept[name].runs]
    shared = ",".join(charts.shared for charts in suites if charts.shared)
    facets = {
        run.run_id: {
            "suite": run.suite_name,
            "model": list(run.models),
            "host": list(run.hosts or [run.host]),
        }
        for run in listed
    }
    return {
        "title": "History",
        "charted": any(charts.figures for charts in suites),
        "suites": [_suite(number, charts) for number, charts in enumerate(suites, start=1)],
        "series_rule": SERIES_RULE,
        "shared_arrays": script_json("{" + shared + "}") if shared else None,
        "filters": {
            "suite": list(overview.suites),
            "model": list(overview.models),
            "host": [(host, trends.host_label(host)) for host in overview.hosts],
        },
        # plain JSON text: autoescape makes it a safe attribute value, the browser gives it back
        "facets": {run_id: json.dumps(of_run) for run_id, of_run in facets.items()},
        "changes": _changed(changes, changed),
        "changed_runs": len(overview.changed_run_ids),
        "several_hosts": len(overview.hosts) > 1,
        "runs": listed,
        "runs_total": overview.runs,
        "runs_per_suite": RUNS_LISTED_PER_SUITE,
    }


class _Drawing:
    """What the charts of some suites are drawn from: their lines' points, their sweeps' peaks
    (with the levels of the sweeps drawn one point each) and their significant changes."""

    def __init__(
        self,
        suites: Sequence[str],
        series: list[dict[str, Any]],
        swept: list[dict[str, Any]],
        changes: dict[str, list[Finding]],
        runs: dict[str, int],
    ) -> None:
        self.suites, self.series, self.swept, self.changes = suites, series, swept, changes
        self.runs = runs  # per suite, how many runs its charts draw

    @classmethod
    def read(cls, store: Store, suites: Sequence[str]) -> _Drawing:
        if not suites:
            return cls(suites, [], [], {}, {})
        peaks = store.peak_points(suites)
        levels: dict[str, list[LevelSummary]] = store.level_summaries(
            [p["run_id"] for p in peaks if p["run_id"] is not None]
        )
        return cls(
            suites,
            trends.history_series(store.history_points(trends.TREND_NAMES, suites)),
            sweep_trends.sweep_series(peaks, levels),
            stored_changes(store, suites=suites),
            store.charted_runs(suites),
        )

    def draw(self) -> list[SuiteCharts]:
        """Each suite's charts (their repeated arrays shared under keys unique to the suite)."""
        marks = trends.change_index(self.changes)
        drawn = []
        for suite in self.suites:
            of_suite = [s for s in self.series if s["suite"] == suite]
            swept = [s for s in self.swept if s["suite"] == suite]
            charts = [
                trends.history_chart(of_suite, metric, marks) for metric in trends.TREND_METRICS
            ]
            shared = SharedArrays(prefix=f"{history_cache.suite_token(suite)}.")
            shared.share(charts)
            made = [
                (metric.slug, metric.title, metric.caption, chart)
                for metric, chart in zip(trends.TREND_METRICS, charts, strict=True)
            ]
            made.append(
                (
                    "load-peak",
                    sweep_trends.PEAK_TITLE,
                    sweep_trends.PEAK_CAPTION,
                    sweep_trends.peak_chart(swept),
                )
            )
            both = of_suite + swept
            drawn.append(
                SuiteCharts(
                    name=suite,
                    figures=[
                        (slug, title, caption, text)
                        for slug, title, caption, chart in made
                        if chart is not None and (text := figure_json(chart))
                    ],
                    runs=self.runs.get(suite, 0),
                    models=sorted({s["model"] for s in both}),
                    shared=shared.inside(),
                )
            )
        return drawn


def _suite(number: int, charts: SuiteCharts) -> dict[str, Any]:
    """A suite's part of the page context, its figures numbered by its place in the page."""
    return {
        "name": charts.name,
        "figures": [
            figure(f"history-{number}-{slug}", title, caption, None, text=text)
            for slug, title, caption, text in charts.figures
        ],
        "runs": charts.runs,
        "models": charts.models,
    }


def _changed(changes: dict[str, list[Finding]], runs: Sequence[RunCounts]) -> list[dict[str, Any]]:
    """Of `runs` (newest first, each with significant changes): their changes, regressions first
    within a run."""
    return [
        {
            "run": run,
            "findings": sorted(findings, key=lambda f: f.verdict != REGRESSION),
            "regressions": sum(f.verdict == REGRESSION for f in findings),
            "since": list(dict.fromkeys(r for f in findings for r in f.baseline_run_ids)),
        }
        for run in runs
        if (findings := changes.get(run.run_id))
    ]
