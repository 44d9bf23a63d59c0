"""The `novabench` command: parse arguments, call the library, turn errors into one line."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# Only what parsing needs is imported here: each command imports its own work when it runs, so
# `novabench --help` and `validate` do not pay for scipy, plotly, DuckDB or the engines.
from novabench.analysis.significance import METRIC_NAMES, SIGNIFICANCE
from novabench.config.ages import KEEP_LAST_HELP, KEEP_SUMMARIES_HELP, OLDER_THAN_HELP
from novabench.config.hosts import DEFAULT_HOST, normalize_host
from novabench.console.command import (
    age_option,
    db_option,
    fail,
    friendly_errors,
    out_option,
    say_error,
    uninterrupted,
)
from novabench.errors import EXIT_REGRESSION as EXIT_REGRESSION  # for callers of the CLI
from novabench.errors import NovabenchError, OutputError, SuiteError
from novabench.storage.settings import DEFAULT_DB, FORMATS
from novabench.text import terminal_safe
from novabench.version import __version__

if TYPE_CHECKING:
    from novabench.storage.store import Store


def _out(db_path: Path, out_dir: Path | None) -> Path:
    return out_dir if out_dir is not None else db_path.parent


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="novabench")
def cli() -> None:
    """Benchmark local LLMs: run YAML suites against Ollama, keep history, write HTML reports."""


@cli.command()
@click.argument("suite_path", metavar="SUITE", type=click.Path(path_type=Path))
@db_option
@out_option
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print errors only (on stderr): nothing at all when the run succeeds, as cron wants.",
)
@click.option(
    "--log-json",
    is_flag=True,
    help="Progress and errors as one JSON object per line on stderr; with --quiet, errors only.",
)
@click.option("--no-report", is_flag=True, help="Store results but write no HTML.")
@click.option(
    "--cold",
    is_flag=True,
    default=None,
    help="Unload each model first and time its cold start (as `cold_start: true` in the suite).",
)
@click.option(
    "--baseline",
    metavar="SPEC",
    default=None,
    help="Compare with earlier runs of the same suite, host and model digest: 'last' (the most "
    "recent complete one), a RUN_ID, or 'median:N' (the repetitions of the last N pooled).",
)
@click.option(
    "--fail-on-regression",
    "fail_on_regression_pct",
    metavar="PCT",
    type=click.FloatRange(min=0),
    default=None,
    help=f"Exit 4 when a significant regression (Mann-Whitney U, p < {SIGNIFICANCE:g}) is larger "
    "than PCT percent; needs --baseline.",
)
@friendly_errors
def run(
    suite_path: Path,
    db_path: Path,
    out_dir: Path | None,
    quiet: bool,
    log_json: bool,
    no_report: bool,
    cold: bool | None,
    baseline: str | None,
    fail_on_regression_pct: float | None,
) -> None:
    """Run SUITE once, append the results to the database and write the reports.

    Exit codes: 0 every request succeeded, 1 some failed, 2 bad suite or --baseline,
    3 host unreachable, 4 a significant regression beyond --fail-on-regression (even when some
    requests failed too: their lines are printed), 5 the same suite is still running (its lock
    file in <db folder>/locks/ is held), 130 interrupted.
    """
    if fail_on_regression_pct is not None and baseline is None:
        raise click.UsageError("--fail-on-regression needs --baseline")
    with uninterrupted():
        from novabench.console.log import JsonLogObserver
        from novabench.console.session import (
            RunPrinter,
            log_run_finished,
            run_observer,
            say_regressions,
            stop_line,
        )
        from novabench.run.session import RunSession
        from novabench.storage.store import Store

    def write_pages(store: Store, run_id: str, out: Path) -> list[Path]:
        from novabench.report import render_all  # plotly and jinja2 once the run has ended

        return render_all(store, run_id, out)

    json_log = JsonLogObserver(errors_only=quiet) if log_json else None
    session = RunSession(
        suite_path,
        Store(db_path),
        observer=run_observer(quiet, json_log),
        cold_start=cold,
        baseline=baseline,
        fail_on_regression_pct=fail_on_regression_pct,
        report_dir=None if no_report else _out(db_path, out_dir),
        write_pages=write_pages,
        session_observer=RunPrinter(quiet, log_json),
        stop_line=functools.partial(stop_line, log_json),
    )
    outcome = session.run()
    if outcome.report_interrupted:
        fail(str(outcome.interruption), outcome.exit_code, log_json)
    if outcome.status == "interrupted":  # the results are stored: say so, and exit 130
        if outcome.report_error is not None:
            say_error(str(outcome.report_error), outcome.report_error.exit_code, log_json)
        log_run_finished(json_log, outcome)
        fail(str(outcome.interruption), outcome.exit_code, log_json)
    if outcome.failing or outcome.load_failing:
        say_regressions(outcome, fail_on_regression_pct, quiet, log_json)
    if outcome.report_error is not None:  # said after the regressions: they matter more
        say_error(str(outcome.report_error), outcome.report_error.exit_code, log_json)
    log_run_finished(json_log, outcome)
    sys.exit(outcome.exit_code)


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
@db_option
@click.option(
    "--metric",
    "metric_names",
    multiple=True,
    type=click.Choice(METRIC_NAMES),
    help="Compare only this metric; repeat for several [default: all].",
)
@click.option("--all", "show_all", is_flag=True, help="Show every row, not only changes.")
@click.option(
    "--html",
    "write_html",
    is_flag=True,
    help="Also write the comparison page: compare/RUN_A__RUN_B.html in --out.",
)
@out_option
@friendly_errors
def compare(
    run_a: str,
    run_b: str,
    db_path: Path,
    metric_names: tuple[str, ...],
    show_all: bool,
    write_html: bool,
    out_dir: Path | None,
) -> None:
    """Compare RUN_B with RUN_A per mode, model, prompt and metric.

    A change is significant when a two-sided Mann-Whitney U test on the repetitions gives
    p < 0.01; about 5 repetitions per side are needed before any change can be.
    """
    with uninterrupted():
        from novabench.analysis.compare import compare_runs
        from novabench.console import tables
        from novabench.report import render_comparison

    store = _open_store(db_path)
    comparison = compare_runs(store, run_a, run_b, metric_names or METRIC_NAMES)
    tables.print_comparison(
        comparison, f"A = run {run_a}, B = run {run_b}", ("A", "B"), show_all, " (--all shows them)"
    )
    if write_html:
        path = render_comparison(store, run_a, run_b, _out(db_path, out_dir))
        click.echo(f"comparison: {terminal_safe(str(path))}")


@cli.command()
@click.argument(
    "suite_paths", metavar="SUITE...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@friendly_errors
def validate(suite_paths: tuple[Path, ...]) -> None:
    """Check suite files without running them; one line per problem, exit code 2 if any."""
    with uninterrupted():
        from novabench.config.reading import load_suite

    problems: list[str] = []
    for path in suite_paths:
        try:
            suite = load_suite(path)
        except SuiteError as exc:
            problems.extend(exc.problems)
            continue
        parts = [f"{len(suite.models)} models", f"{len(suite.prompts)} prompts"]
        parts.append(f"modes {', '.join(suite.modes)}")
        if set(suite.modes) - {"load"}:
            parts.append(f"{suite.repetitions} repetitions")
        if suite.load is not None and "load" in suite.modes:
            levels = ", ".join(f"{v:g}" for v in suite.load.levels)
            parts.append(f"load {suite.load.kind} [{levels}], {suite.load.level_size()}")
        click.echo(terminal_safe(f"{path}: ok ({', '.join(parts)})"))
    if problems:
        fail("\n".join(problems), SuiteError.exit_code)


@cli.command()
@click.argument("run_id", required=False)
@click.option("--latest", is_flag=True, help="The most recent run.")
@db_option
@out_option
@friendly_errors
def report(run_id: str | None, latest: bool, db_path: Path, out_dir: Path | None) -> None:
    """Write the HTML report of RUN_ID (or --latest) from the database alone."""
    if not run_id and not latest:
        raise click.UsageError("give a RUN_ID or --latest")
    with uninterrupted():
        from novabench.report import render_index, render_run

    store = _open_store(db_path)
    run_id = store.latest_run_id() if latest or not run_id else run_id
    store.get_run(run_id)
    out = _out(db_path, out_dir)
    click.echo(f"report: {terminal_safe(str(render_run(store, run_id, out)))}")
    render_index(store, out, run_id)


@cli.command()
@db_option
@out_option
@click.option(
    "--rebuild-summaries",
    is_flag=True,
    help="First make every run's summaries, changes and load levels again from its raw results.",
)
@friendly_errors
def history(db_path: Path, out_dir: Path | None, rebuild_summaries: bool) -> None:
    """Write history.html and index.html from every run in the database.

    Run pages that are missing (runs made with --no-report, or pages deleted) are written too,
    so every link in the index leads somewhere.
    """
    with uninterrupted():
        from novabench.console.progress import Progress
        from novabench.report import render_history, render_index, render_run
        from novabench.report.pages import missing_run_pages

    store = _open_store(db_path)
    out = _out(db_path, out_dir)
    if rebuild_summaries:
        from novabench.analysis.history import rebuild

        made = rebuild(store)
        click.echo(f"summaries: {made.summaries} runs made again from their results")
    missing = missing_run_pages(store, out)
    progress = Progress("run pages", len(missing))  # on stderr: stdout lists the pages
    for run_id in missing:
        page = render_run(store, run_id, out)
        progress.clear()
        click.echo(f"report: {terminal_safe(str(page))}")
        progress.step()
    progress.finish()
    click.echo(f"history: {terminal_safe(str(render_history(store, out)))}")
    click.echo(f"index: {terminal_safe(str(render_index(store, out)))}")


@cli.command()
@db_option
@click.option("--suite", "suite_name", default=None, help="Only runs of this suite name.")
@click.option(
    "--show", "show_run", metavar="RUN_ID", default=None, help="Print one run's manifest."
)
@friendly_errors
def runs(db_path: Path, suite_name: str | None, show_run: str | None) -> None:
    """List the runs in the database, newest first, or print one run's manifest."""
    with uninterrupted():
        from novabench.console import tables
        from novabench.console.manifest import manifest_lines

    store = _open_store(db_path)
    if show_run is not None:
        tables.print_manifest(manifest_lines(store.get_run(show_run), store.models(show_run)))
        return
    tables.print_runs(store.list_runs(suite_name))


@cli.command()
@click.option(
    "--host",
    default=None,
    help=f"Ollama URL [default: $OLLAMA_HOST, else {DEFAULT_HOST}].",
)
@friendly_errors
def models(host: str | None) -> None:
    """List the models an Ollama host has installed."""
    try:
        url = normalize_host(host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--host") from None
    with uninterrupted():
        import asyncio

        from novabench.console import tables
        from novabench.engines.ollama import OllamaBackend

    async def fetch() -> tuple[str, list[Any]]:
        backend = OllamaBackend(url)
        try:
            return await backend.version(), list((await backend.list_models()).values())
        finally:
            await backend.aclose()

    version, infos = asyncio.run(fetch())
    tables.print_models(url, version, infos)


@cli.command()
@db_option
@click.option("--run", "run_id", metavar="RUN_ID", default=None, help="Only this run.")
@click.option("--suite", "suite_name", default=None, help="Only runs of this suite name.")
@click.option(
    "--format",
    "export_format",
    type=click.Choice(FORMATS),
    required=True,
    help="csv (with a header), json (one object per line) or parquet.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The file to write.",
)
@friendly_errors
def export(
    db_path: Path, run_id: str | None, suite_name: str | None, export_format: str, out_path: Path
) -> None:
    """Export results, one row per request with its derived figures (README lists the columns)."""
    with uninterrupted():
        from novabench.storage.export import export_results

    store = _open_store(db_path)
    count = export_results(store, out_path, export_format, run_id, suite_name)  # type: ignore[arg-type]
    click.echo(terminal_safe(f"{count} rows written to {out_path}"))


@cli.command()
@db_option
@out_option
@click.option("--older-than", metavar="AGE", callback=age_option, help=OLDER_THAN_HELP)
@click.option("--keep-last", metavar="N", type=click.IntRange(min=0), help=KEEP_LAST_HELP)
@click.option("--suite", default=None, help="Only runs of this suite name.")
@click.option("--keep-summaries", is_flag=True, help=KEEP_SUMMARIES_HELP)
@click.option("--yes", is_flag=True, help="Remove them; without it, only list them.")
@friendly_errors
def prune(db_path: Path, out_dir: Path | None, yes: bool, **rule: Any) -> None:
    """List the runs a rule removes; with --yes delete their rows and pages (never a live run)."""
    with uninterrupted():
        from novabench.analysis.pruning import PruneRule, plan_prune, prune_runs
        from novabench.console.prune import print_outcome, print_plan
        from novabench.report.page_files import prune_pages

    store = _open_store(db_path)
    plan = plan_prune(store, PruneRule(**rule))
    print_plan(plan, removing=yes)
    if yes and plan.runs:
        outcome = prune_runs(store, plan)
        pages = prune_pages(store, _out(db_path, out_dir), outcome)
        print_outcome(outcome, db_path, len(pages.removed), pages.refused)
        if pages.failed:
            raise OutputError(pages.failures())


def _open_store(db_path: Path) -> Store:
    """The existing database, with runs whose process died (kill -9, a crash) marked aborted."""
    with uninterrupted():
        from novabench.storage.store import Store

    store = Store(_existing(db_path))
    store.mark_abandoned_runs()
    return store


def _existing(db_path: Path) -> Path:
    if not db_path.exists():
        raise NovabenchError(f"{db_path}: no such database: 'novabench run SUITE' creates it")
    return db_path


@cli.command(name="import")
@click.argument("spill_path", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The DuckDB history file [default: the one the spill file names].",
)
@friendly_errors
def import_(spill_path: Path, db_path: Path | None) -> None:
    """Add the results a run could not store (its spill file) to the database.

    A run whose database stopped taking writes (a full disk, a lock held too long) writes what
    it lacks to a spill file and names it; this adds it. Importing twice adds nothing twice.
    """
    if not spill_path.is_file():
        raise NovabenchError(f"{spill_path}: no such spill file")
    with uninterrupted():
        from novabench.storage.journal import spill_header

    header = spill_header(spill_path)
    if header is None:
        raise NovabenchError(f"{spill_path}: not a novabench spill file")
    store = _open_store(db_path or Path(str(header.get("database") or DEFAULT_DB)))
    run_id, count, problems = store.import_spill(spill_path)
    for problem in problems:
        click.echo(f"note: {terminal_safe(problem)}")
    click.echo(
        f"{count} results of run {terminal_safe(run_id)} are in {store.path}; "
        f"{spill_path} can be deleted"
    )
