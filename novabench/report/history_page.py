"""What the history page shows: per suite, each model's figures run by run, and what changed.

It reads the per-run aggregates only (summaries, changes, load levels; analysis/history.py
makes any that are missing first) and the runs' small facts, never the requests: its cost
grows with the number of runs, not with the number of stored requests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from novabench.analysis.compare import Finding, stored_changes
from novabench.analysis.history import bring_up_to_date
from novabench.analysis.significance import REGRESSION
from novabench.records import RunCounts
from novabench.report import sweep_trends, trends
from novabench.report.figures import SharedArrays, figure
from novabench.report.long_series import SERIES_RULE
from novabench.storage.store import Store

# The runs table lists each suite's most recent runs (the index lists every run)...
RUNS_LISTED_PER_SUITE = 10
# ...and the changes table the most recent runs that changed (the charts ring every one).
CHANGED_RUNS_LISTED = 50


def history_context(store: Store) -> dict[str, Any]:
    """The history page's template context."""
    with store.holding():
        bring_up_to_date(store)
        series = trends.history_series(store.run_summaries())
        changes = stored_changes(store)
        levels = store.level_summaries()
        runs = store.run_counts()
    by_run = {run.run_id: run for run in runs}
    swept = sweep_trends.sweep_series(levels, by_run)
    shared = SharedArrays()
    suites = _suites(series, swept, changes, shared)
    facets = {
        run.run_id: {
            "suite": run.suite_name,
            "model": list(run.models),
            "host": list(run.hosts or [run.host]),
        }
        for run in runs
    }
    listed = _listed(runs)
    found = _changed(changes, by_run)
    all_hosts = sorted({h for of_run in facets.values() for h in of_run["host"]})
    return {
        "title": "History",
        "charted": any(s["figures"] for s in suites),
        "suites": suites,
        "series_rule": SERIES_RULE,
        "shared_arrays": shared.json(),
        "filters": {
            "suite": sorted({run.suite_name for run in runs}),
            "model": sorted({m for run in runs for m in run.models}),
            "host": [(host, trends.host_label(host)) for host in all_hosts],
        },
        # plain JSON text: autoescape makes it a safe attribute value, the browser gives it back
        "facets": {run.run_id: json.dumps(facets[run.run_id]) for run in listed},
        "changes": found[:CHANGED_RUNS_LISTED],
        "changed_runs": len(found),
        "several_hosts": len(all_hosts) > 1,
        "runs": listed,
        "runs_total": len(runs),
        "runs_per_suite": RUNS_LISTED_PER_SUITE,
    }


def _suites(
    series: list[dict[str, Any]],
    swept: list[dict[str, Any]],
    changes: dict[str, list[Finding]],
    shared: SharedArrays,
) -> list[dict[str, Any]]:
    """Per suite, by name: its charts (their repeated arrays in `shared`), its number of runs
    charted and its models."""
    marks = trends.change_index(changes)
    suites = []
    names = sorted({s["suite"] for s in series} | {s["suite"] for s in swept})
    for number, suite in enumerate(names, start=1):
        of_suite = [s for s in series if s["suite"] == suite]
        swept_of_suite = [s for s in swept if s["suite"] == suite]
        charts = [trends.history_chart(of_suite, metric, marks) for metric in trends.TREND_METRICS]
        shared.share(charts)
        figures = [
            figure(f"history-{number}-{metric.slug}", metric.title, metric.caption, chart)
            for metric, chart in zip(trends.TREND_METRICS, charts, strict=True)
        ]
        figures.append(
            figure(
                f"history-{number}-load-peak",
                sweep_trends.PEAK_TITLE,
                sweep_trends.PEAK_CAPTION,
                sweep_trends.peak_chart(swept_of_suite),
            )
        )
        both = of_suite + swept_of_suite
        suites.append(
            {
                "name": suite,
                "figures": [f for f in figures if f["json"] is not None],
                "runs": len({r for s in both for p in s["points"] for r in p["run_ids"]}),
                "models": sorted({s["model"] for s in both}),
            }
        )
    return suites


def _listed(runs: Sequence[RunCounts]) -> list[RunCounts]:
    """The runs table's rows: each suite's RUNS_LISTED_PER_SUITE most recent runs, newest first."""
    seen: dict[str, int] = {}
    listed = []
    for run in runs:  # newest first
        seen[run.suite_name] = seen.get(run.suite_name, 0) + 1
        if seen[run.suite_name] <= RUNS_LISTED_PER_SUITE:
            listed.append(run)
    return listed


def _changed(
    changes: dict[str, list[Finding]], by_run: dict[str, RunCounts]
) -> list[dict[str, Any]]:
    """The runs with significant changes, newest first, regressions first within a run."""
    found: list[dict[str, Any]] = [
        {
            "run": by_run[run_id],
            "findings": sorted(findings, key=lambda f: f.verdict != REGRESSION),
            "regressions": sum(f.verdict == REGRESSION for f in findings),
            "since": list(dict.fromkeys(r for f in findings for r in f.baseline_run_ids)),
        }
        for run_id, findings in changes.items()
        if run_id in by_run and findings
    ]
    found.sort(key=lambda c: (c["run"].started_at, c["run"].run_id), reverse=True)
    return found
