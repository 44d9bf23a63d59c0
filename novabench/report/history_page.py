"""What the history page shows: per suite, each model's figures run by run, and what changed."""

from __future__ import annotations

import json
from typing import Any

from novabench.analysis.compare import history_changes
from novabench.analysis.significance import REGRESSION
from novabench.report import sweep_trends, trends
from novabench.report.figures import figure
from novabench.storage.store import Store


def history_context(store: Store) -> dict[str, Any]:
    """The history page's template context."""
    rows = store.history()
    series = trends.history_series(rows)
    changes = history_changes(store)
    marks = trends.change_index(changes)
    swept = sweep_trends.sweep_series(store)
    suites = []
    names = sorted({s["suite"] for s in series} | {s["suite"] for s in swept})
    for number, suite in enumerate(names, start=1):
        of_suite = [s for s in series if s["suite"] == suite]
        swept_of_suite = [s for s in swept if s["suite"] == suite]
        figures = [
            figure(
                f"history-{number}-{metric.slug}",
                metric.title,
                metric.caption,
                trends.history_chart(of_suite, metric, marks),
            )
            for metric in trends.TREND_METRICS
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
                "runs": len({p["run_id"] for s in both for p in s["points"]}),
                "models": sorted({s["model"] for s in both}),
            }
        )
    runs = store.list_runs()
    models: dict[str, set[str]] = {run.run_id: set() for run in runs}
    hosts: dict[str, set[str]] = {run.run_id: set() for run in runs}
    for row in rows:
        models[row.run_id].add(row.model)
        hosts[row.run_id].add(row.host)
    facets = {
        run.run_id: {
            "suite": run.suite_name,
            "model": sorted(models[run.run_id]),
            "host": sorted(hosts[run.run_id] or {run.host}),
        }
        for run in runs
    }
    by_run = {run.run_id: run for run in runs}
    found: list[dict[str, Any]] = [
        {
            "run": by_run[run_id],
            "findings": sorted(findings, key=lambda f: f.verdict != REGRESSION),
            "regressions": sum(f.verdict == REGRESSION for f in findings),
            "since": list(dict.fromkeys(r for f in findings for r in f.baseline_run_ids)),
        }
        for run_id, findings in changes.items()
        if run_id in by_run
    ]
    found.sort(key=lambda c: (c["run"].started_at, c["run"].run_id), reverse=True)
    all_hosts = sorted({h for of_run in facets.values() for h in of_run["host"]})
    return {
        "title": "History",
        "charted": any(s["figures"] for s in suites),
        "suites": suites,
        "filters": {
            "suite": sorted({run.suite_name for run in runs}),
            "model": sorted({m for of_run in models.values() for m in of_run}),
            "host": [(host, trends.host_label(host)) for host in all_hosts],
        },
        # plain JSON text: autoescape makes it a safe attribute value, the browser gives it back
        "facets": {run_id: json.dumps(f) for run_id, f in facets.items()},
        "changes": found,
        "several_hosts": len(all_hosts) > 1,
        "runs": runs,
    }
