"""novabench: benchmark local LLMs from YAML suites into DuckDB and self-contained HTML reports.

from novabench import Store, load_suite, run_suite

outcome = run_suite(
    load_suite("suites/one_sentence.yaml"),
    Store("reports/novabench.duckdb"),
    baseline="last",
    fail_on_regression_pct=10,
    report_dir="reports",
)
raise SystemExit(outcome.exit_code)  # the code `novabench run` gives: 0, 1, 4, 6 or 130
"""

from __future__ import annotations

import importlib

from novabench.version import __version__

# Not typing.TYPE_CHECKING: importing typing takes milliseconds before the command's entry point
# can catch a Ctrl-C (type checkers treat any name TYPE_CHECKING the same).
TYPE_CHECKING = False

# Public name -> module. Imported on first use, so `novabench validate` does not pay for plotly.
_EXPORTS = {
    "BaselineError": "novabench.errors",
    "HostUnreachableError": "novabench.errors",
    "NovabenchError": "novabench.errors",
    "OutputError": "novabench.errors",
    "RunNotFoundError": "novabench.errors",
    "StorageFailure": "novabench.errors",
    "StoreError": "novabench.errors",
    "SuiteError": "novabench.errors",
    "SuiteRunningError": "novabench.errors",
    "load_sweeps": "novabench.analysis.sweeps",
    "sweep_verdict": "novabench.analysis.sweeps",
    "render_all": "novabench.report",
    "render_history": "novabench.report",
    "render_index": "novabench.report",
    "render_run": "novabench.report",
    "RunOutcome": "novabench.run.runner",
    "RunSession": "novabench.run.session",
    "SessionOutcome": "novabench.run.session",
    "Store": "novabench.storage.store",
    "Suite": "novabench.config.suite",
    "load_suite": "novabench.config.reading",
    "parse_suite": "novabench.config.reading",
}

__all__ = sorted([*_EXPORTS, "run_suite"])

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from novabench.analysis.sweeps import load_sweeps
    from novabench.analysis.sweeps import verdict as sweep_verdict
    from novabench.config.reading import load_suite, parse_suite
    from novabench.config.suite import Suite
    from novabench.errors import (
        BaselineError,
        HostUnreachableError,
        NovabenchError,
        OutputError,
        RunNotFoundError,
        StorageFailure,
        StoreError,
        SuiteError,
        SuiteRunningError,
    )
    from novabench.report import render_all, render_history, render_index, render_run
    from novabench.run.runner import RunObserver, RunOutcome
    from novabench.run.session import PageWriter, RunSession, SessionOutcome
    from novabench.storage.store import Store


# Public names that differ from the name inside their module.
_RENAMED = {"sweep_verdict": "verdict"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'novabench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), _RENAMED.get(name, name))


def run_suite(
    suite: Suite | str | Path,
    store: Store | str | Path | None = None,
    observer: RunObserver | None = None,
    cold_start: bool | None = None,
    *,
    baseline: str | None = None,
    fail_on_regression_pct: float | None = None,
    lock: bool = True,
    report_dir: str | Path | None = None,
) -> SessionOutcome:
    """Run `suite` once as `novabench run` does; the outcome's exit_code is the one it gives.

    Appends to `store` (default reports/novabench.duckdb). `cold_start` overrides the suite's
    own setting; `baseline` ('last', 'median:N' or a run id) compares the run with earlier ones,
    and a significant regression beyond `fail_on_regression_pct` makes the exit code 4; `lock`
    refuses to run a suite that is still running (SuiteRunningError); `report_dir` gets the HTML
    reports. On the main thread, a first SIGINT or SIGTERM stops the run (status 'interrupted',
    exit code 130) and a second ends the process at once.
    """
    from pathlib import Path

    from novabench.run.session import RunSession
    from novabench.storage.store import Store

    write_pages: PageWriter | None = None
    if report_dir is not None:  # only then: the report layer imports plotly
        from novabench.report import render_all

        write_pages = render_all  # given from here: the report layer sits above the run layer
    session = RunSession(
        suite,
        store if isinstance(store, Store) else Store() if store is None else Store(store),
        observer=observer,
        cold_start=cold_start,
        baseline=baseline,
        fail_on_regression_pct=fail_on_regression_pct,
        lock=lock,
        report_dir=None if report_dir is None else Path(report_dir),
        write_pages=write_pages,
    )
    return session.run()
