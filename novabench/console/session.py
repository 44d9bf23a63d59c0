"""What `novabench run` shows around a run session: its progress, its summary and comparison,
why it exits 4, and the JSON end of the run."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from novabench.analysis.compare import Comparison
from novabench.console import tables
from novabench.console.live import LiveObserver
from novabench.console.log import JsonLogObserver, LogObserver, json_event_line, log_json_event
from novabench.run.runner import NullObserver, RunObserver, RunOutcome
from novabench.run.session import EXIT_INTERRUPTED, EXIT_REGRESSION, SessionOutcome
from novabench.storage.store import Store
from novabench.text import terminal_safe


def run_observer(quiet: bool, json_log: JsonLogObserver | None) -> RunObserver:
    """JSON lines, nothing (--quiet), the live display on a terminal, else log lines."""
    if json_log is not None:
        return json_log
    if quiet:
        return NullObserver()
    return LiveObserver() if sys.stderr.isatty() else LogObserver()


class RunPrinter:
    """Prints what the run session did: the summary, the baseline comparison, the report."""

    def __init__(self, quiet: bool, log_json: bool) -> None:
        self.quiet = quiet
        self.log_json = log_json

    def run_ended(self, store: Store, outcome: RunOutcome) -> None:
        tables.print_summary(store, outcome, self.quiet, self.log_json)

    def baseline_compared(self, comparison: Comparison) -> None:
        if not self.quiet:
            contributors = ", ".join(comparison.baseline_run_ids)
            title = f"baseline {comparison.baseline}: run {contributors}" if contributors else ""
            tables.print_comparison(comparison, title, ("baseline", "this run"))

    def report_written(self, path: Path) -> None:
        if not self.quiet:
            click.echo(f"report: {terminal_safe(str(path))}")


def say_regressions(
    outcome: SessionOutcome, tolerance_pct: float | None, quiet: bool, log_json: bool
) -> None:
    """Why the run exits 4: with --quiet, each regression that fails it too (on stderr)."""
    count = len(outcome.failing) + len(outcome.load_failing)
    message = (
        f"{count} significant regression{'s' if count > 1 else ''} larger than "
        f"{tolerance_pct:g}%: exit {EXIT_REGRESSION}"
    )
    if log_json:
        log_json_event("error", message=message, exit_code=EXIT_REGRESSION)
    elif quiet:  # errors only: the regressions that fail the run, then why it exits 4
        for finding in outcome.failing:
            click.echo(f"Error: {tables.regression_line(finding)}", err=True)
        for line in outcome.load_failing:
            click.echo(f"Error: {terminal_safe(line)}", err=True)
        click.echo(f"Error: {message}", err=True)
    else:
        click.echo(message)


def log_run_finished(json_log: JsonLogObserver | None, outcome: SessionOutcome) -> None:
    """The run's end as a JSON event, with --log-json."""
    if json_log is not None:
        report = None if outcome.report_path is None else str(outcome.report_path)
        json_log.run_finished(
            outcome.run_id,
            outcome.status,
            outcome.exit_code,
            len(outcome.results),
            len(outcome.failed),
            report,
        )


def stop_line(as_json: bool, message: str) -> str:
    """The line a second signal leaves on stderr as it stops the run at once."""
    if as_json:
        return json_event_line("error", message=message, exit_code=EXIT_INTERRUPTED)
    return f"Error: {message}"
