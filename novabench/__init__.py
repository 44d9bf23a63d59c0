"""novabench: benchmark local LLMs from YAML suites into DuckDB and self-contained HTML reports.

from pathlib import Path
from novabench import Store, load_suite, render_all, run_suite

store = Store("reports/novabench.duckdb")
outcome = run_suite(load_suite("suites/one_sentence.yaml"), store)
render_all(store, outcome.run_id, Path("reports"))
"""

from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing takes milliseconds before the command's entry point
# can catch a Ctrl-C (type checkers treat any name TYPE_CHECKING the same).
TYPE_CHECKING = False

__version__ = "0.1.0"

# Public name -> module. Imported on first use, so `novabench validate` does not pay for plotly.
_EXPORTS = {
    "HostUnreachableError": "novabench.errors",
    "NovabenchError": "novabench.errors",
    "RunNotFoundError": "novabench.errors",
    "StoreError": "novabench.errors",
    "SuiteError": "novabench.errors",
    "load_sweeps": "novabench.analysis.sweeps",
    "sweep_verdict": "novabench.analysis.sweeps",
    "render_all": "novabench.report",
    "render_history": "novabench.report",
    "render_index": "novabench.report",
    "render_run": "novabench.report",
    "RunOutcome": "novabench.run.runner",
    "run_suite": "novabench.run.runner",
    "Store": "novabench.storage.store",
    "Suite": "novabench.config.suite",
    "load_suite": "novabench.config.suite",
    "parse_suite": "novabench.config.suite",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from typing import Any

    from novabench.analysis.sweeps import load_sweeps
    from novabench.analysis.sweeps import verdict as sweep_verdict
    from novabench.config.suite import Suite, load_suite, parse_suite
    from novabench.errors import (
        HostUnreachableError,
        NovabenchError,
        RunNotFoundError,
        StoreError,
        SuiteError,
    )
    from novabench.report import render_all, render_history, render_index, render_run
    from novabench.run.runner import RunOutcome, run_suite
    from novabench.storage.store import Store


# Public names that differ from the name inside their module.
_RENAMED = {"sweep_verdict": "verdict"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'novabench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), _RENAMED.get(name, name))
