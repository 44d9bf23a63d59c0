"""What the index shows: the newest runs, and with more of them, every run on a page of its month.

A history of thousands of runs (an hourly cron for months) would make one index of megabytes that
`run` rewrites every hour. The index lists the RECENT_RUNS newest and a table of months by suite;
each month's page (index/YYYY-MM.html) lists that month's runs, grouped by suite. After a run only
the index and its own month's page are written: neither grows with the history.
"""

from __future__ import annotations

import hashlib
from itertools import groupby
from typing import Any

from novabench.storage.reads import Reads

RECENT_RUNS = 100
MONTHS_FOLDER = "index"


def month_href(month: str) -> str:
    """A month's page, relative to the output folder: 'index/2026-01.html'."""
    return f"{MONTHS_FOLDER}/{month}.html"


def suite_anchor(suite: str) -> str:
    """A suite's section on a month page: an id from its name, whatever characters it holds."""
    return "suite-" + hashlib.sha256(suite.encode()).hexdigest()[:10]


def index_context(store: Reads) -> dict[str, Any]:
    """The index: the newest runs, and (beyond RECENT_RUNS of them) the months with their runs."""
    counts = store.run_months()
    total = sum(runs for _, _, runs in counts)
    context: dict[str, Any] = {
        "title": "Runs",
        "runs": store.list_runs(newest=RECENT_RUNS),
        "total_runs": total,
        "months": [],
    }
    if total > RECENT_RUNS:
        suites = sorted({suite for _, suite, _ in counts})
        for month, rows in groupby(counts, key=lambda row: row[0]):
            per_suite = {suite: runs for _, suite, runs in rows}
            context["months"].append(
                {
                    "month": month,
                    "href": month_href(month),
                    "runs": sum(per_suite.values()),
                    "suites": [
                        (suite, per_suite.get(suite, 0), suite_anchor(suite)) for suite in suites
                    ],
                }
            )
        context["suites"] = suites
    return context


def month_context(store: Reads, month: str) -> dict[str, Any]:
    """One month's page: its runs, newest first, in a table per suite (by name)."""
    runs = sorted(store.list_runs(month=month), key=lambda run: run.suite_name)
    groups = [
        {"suite": suite, "anchor": suite_anchor(suite), "runs": list(members)}
        for suite, members in groupby(runs, key=lambda run: run.suite_name)
    ]
    return {"title": f"Runs of {month}", "month": month, "groups": groups, "total_runs": len(runs)}
