"""What `novabench prune` prints: the runs a rule removes (a table and a total), then what
removing them did."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from novabench.config.ages import age_text
from novabench.storage.prune import DatabaseSize, PruneOutcome, PrunePlan, PruneRule
from novabench.text import terminal_safe


def rule_text(rule: PruneRule) -> str:
    """The rule as the options that made it, e.g. `--older-than 90d --keep-last 5`."""
    parts = []
    if rule.suite is not None:
        parts.append(f"--suite {rule.suite}")
    if rule.older_than is not None:
        parts.append(f"--older-than {age_text(rule.older_than)}")
    if rule.keep_last is not None:
        parts.append(f"--keep-last {rule.keep_last}")
    if rule.keep_summaries:
        parts.append("--keep-summaries")
    return terminal_safe(" ".join(parts))


def print_plan(plan: PrunePlan, removing: bool) -> None:
    """The runs the plan removes, oldest first, a total, and the runs in progress it keeps."""
    for run in plan.in_progress:
        click.echo(
            terminal_safe(
                f"kept: run {run.run_id} ({run.suite_name}) is still running; a run in progress "
                "is never pruned"
            )
        )
    if not plan.runs:
        click.echo(
            f"nothing to prune: no run matches {rule_text(plan.rule)} "
            f"({plan.runs_considered} runs considered)"
        )
        return
    table = Table()
    for header in ("run id", "suite", "started (UTC)", "status", "requests"):
        table.add_column(header, justify="right" if header == "requests" else "left")
    for run in plan.runs:
        table.add_row(
            _cell(run.run_id),
            _cell(run.suite_name),
            f"{run.started_at:%Y-%m-%d %H:%M:%S}",
            _cell(run.status),
            f"{run.requests:,}",
        )
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)
    what = "the raw rows of " if plan.rule.keep_summaries else ""
    total = (
        f"total: {what}{len(plan.runs)} of {plan.runs_considered} runs, {plan.requests:,} requests"
    )
    click.echo(total if removing else f"{total}: run again with --yes to remove them")


def print_outcome(
    outcome: PruneOutcome, db_path: Path, pages_removed: int, pages_refused: str | None
) -> None:
    """What went, and the database's size before and after; a note if pages were left alone."""
    if pages_refused:
        click.echo(f"note: {terminal_safe(pages_refused)}")
    if outcome.keep_summaries:
        what = f"removed the raw rows of {len(outcome.run_ids)} runs (their summaries are kept)"
    else:
        what = f"removed {len(outcome.run_ids)} runs and {pages_removed} run pages"
    rows = sum(outcome.rows_deleted.values())
    click.echo(
        terminal_safe(
            f"{what}: {rows:,} rows; {db_path}: {_size(outcome.before)} -> {_size(outcome.after)}"
        )
    )


def _size(size: DatabaseSize) -> str:
    return f"{_mib(size.used_bytes)} in use ({_mib(size.file_bytes)} file)"


def _mib(size_bytes: int) -> str:
    return f"{size_bytes / 2**20:,.1f} MiB"


def _cell(value: object) -> Text:
    return Text(terminal_safe(str(value)))
