"""The `novabench` command: parse arguments, call the library, turn errors into one line."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

import click
import duckdb
from rich.console import Console
from rich.table import Table
from rich.text import Text

from novabench import __version__
from novabench.analysis.baselines import check_baseline
from novabench.analysis.compare import (
    IMPROVEMENT,
    METRIC_NAMES,
    NO_DIFFERENCE,
    REGRESSION,
    SIGNIFICANCE,
    TOO_FEW,
    Comparison,
    Finding,
    baseline_comparison,
    compare_runs,
)
from novabench.analysis.compare_sweeps import SweepChange
from novabench.analysis.run_view import RunView, read_run
from novabench.analysis.significance import WITHIN_NOISE
from novabench.analysis.sweeps import level_name, verdict
from novabench.config.hosts import DEFAULT_HOST, normalize_host
from novabench.config.suite import Suite, load_suite
from novabench.console.live import LiveObserver
from novabench.console.log import JsonLogObserver, LogObserver, json_event_line, log_json_event
from novabench.console.manifest import manifest_lines
from novabench.engines.ollama import OllamaBackend
from novabench.entry import main as _entry_main
from novabench.errors import NovabenchError, OutputError, StoreError, SuiteError
from novabench.records import LevelSummary, RequestResult
from novabench.report import (
    render_all,
    render_comparison,
    render_history,
    render_index,
    render_run,
)
from novabench.run.lock import SuiteLock
from novabench.run.runner import NullObserver, RunObserver, RunOutcome, SuiteRunner
from novabench.storage.database import DEFAULT_DB
from novabench.storage.export import FORMATS, export_results
from novabench.storage.journal import spill_header
from novabench.storage.store import Store
from novabench.text import terminal_safe

EXIT_REGRESSION = 4
EXIT_INTERRUPTED = 130
_VERDICT_STYLES = {REGRESSION: "red", IMPROVEMENT: "green"}

F = TypeVar("F", bound=Callable[..., Any])


def _error(message: str, code: int, as_json: bool = False) -> None:
    """`Error: ...` lines on stderr (or, with --log-json, one JSON error object)."""
    if as_json:
        log_json_event("error", message=message, exit_code=code)
    else:
        # Messages quote names, hosts and server answers: no escape sequence may reach a terminal.
        for line in message.split("\n"):
            click.echo(f"Error: {terminal_safe(line)}", err=True)


def _fail(message: str, code: int, as_json: bool = False) -> NoReturn:
    """`Error: ...` lines (or one JSON error object), then exit with `code`."""
    _error(message, code, as_json)
    sys.exit(code)


def friendly_errors(command: F) -> F:
    """Turn library, database and filesystem errors and interrupts into `Error: ...` lines and
    their exit codes, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("log_json"))
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED, as_json)
        except Exception as exc:
            error = _user_error(exc, kwargs.get("db_path"))
            if error is None:
                raise
            _fail(str(error), error.exit_code, as_json)

    return wrapper  # type: ignore[return-value]


def _user_error(exc: Exception, db_path: Path | None) -> NovabenchError | None:
    """The one-line error that `exc` means for a user; None for a bug, which stays a traceback."""
    if isinstance(exc, StoreError):
        return StoreError(_store_line(exc))
    if isinstance(exc, NovabenchError):
        return exc
    if isinstance(exc, duckdb.Error):  # a statement failed after the file opened
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StoreError(
            f"{db_path or 'the database'}: the database failed ({what}): if it is a novabench "
            "database, check the free space and permissions where it is; if not, or if it is "
            "damaged, give --db another path"
        )
    if isinstance(exc, OSError) and exc.errno != errno.EPIPE:  # EPIPE: click exits quietly
        reason = exc.strerror or str(exc)
        if exc.filename is None:  # a write to stdout or stderr
            return OutputError(
                f"cannot write the output ({reason}): check where it goes (a file on a full "
                "disk, a pipe or terminal that closed)"
            )
        return OutputError(
            f"cannot write {exc.filename} ({reason}): check the path, its folder's permissions "
            "and the free space on its disk"
        )
    return None


def _store_line(exc: StoreError) -> str:
    """A store error on one line, with what to do when the store could not open the file.

    Re-worded here rather than in store.py, which gives the file and DuckDB's reason only.
    """
    message = " ".join(str(exc).split())  # DuckDB's reasons can span lines
    reason = str(exc.__cause__ or "")
    if "cannot open the database" not in message or not reason:
        return message
    if "not a valid DuckDB database" in reason:
        hint = "it is not a novabench database: give --db the right file, or a new path"
    elif "Read-only file system" in reason or "Permission denied" in reason:
        hint = (
            "novabench writes to the database and to a .wal file beside it: make both "
            "writable, or give --db a copy in a folder you can write to"
        )
    else:
        hint = "check the file given with --db"
    return f"{message}: {hint}"


db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="The DuckDB history file.",
)
out_option = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for HTML reports [default: the database's folder].",
)


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
    store = Store(db_path)
    if db_path.exists():  # else nothing to mark, and nothing is created before the run starts
        store.mark_abandoned_runs()
    if baseline is not None:
        check_baseline(store, baseline)
    suite = load_suite(suite_path)
    with SuiteLock(db_path.parent / "locks", suite.name) as lock:
        code = _run_locked(
            suite,
            store,
            lock,
            quiet,
            log_json,
            cold,
            baseline,
            fail_on_regression_pct,
            None if no_report else _out(db_path, out_dir),
        )
    sys.exit(code)


def _run_locked(
    suite: Suite,
    store: Store,
    lock: SuiteLock,
    quiet: bool,
    log_json: bool,
    cold: bool | None,
    baseline: str | None,
    fail_on_regression_pct: float | None,
    report_dir: Path | None,
) -> int:
    """The run itself, under the suite's lock; its exit code."""
    json_log = JsonLogObserver(errors_only=quiet) if log_json else None
    observer: RunObserver
    report_error: OutputError | None = None
    # Installed until the command ends: a second signal while the report is written exits at once.
    with _StopOnSignal(log_json) as stopper:
        if json_log is not None:
            outcome = stopper.run(SuiteRunner(suite, store, _LockNotes(json_log, lock), cold))
        elif quiet:
            outcome = stopper.run(SuiteRunner(suite, store, _LockNotes(NullObserver(), lock), cold))
        elif sys.stderr.isatty():
            with LiveObserver() as observer:
                outcome = stopper.run(SuiteRunner(suite, store, _LockNotes(observer, lock), cold))
        else:
            outcome = stopper.run(SuiteRunner(suite, store, _LockNotes(LogObserver(), lock), cold))
        if outcome.status == "interrupted":
            _print_summary(store, outcome, quiet, log_json)
            try:
                report = _write_report(store, outcome.run_id, report_dir, quiet, log_json)
            except OutputError as exc:  # the results are stored: say so, and still exit 130
                report = None
                _error(str(exc), exc.exit_code, log_json)
            if json_log is not None:
                _log_run_finished(json_log, outcome, EXIT_INTERRUPTED, report)
            _fail(
                f"interrupted: {len(outcome.results)} requests stored in run {outcome.run_id}",
                EXIT_INTERRUPTED,
                log_json,
            )
        if baseline is not None:
            store.set_baseline(outcome.run_id, baseline, fail_on_regression_pct)
        _print_summary(store, outcome, quiet, log_json)
        comparison = baseline_comparison(store, outcome.run_id)
        if comparison is not None and not quiet:
            contributors = ", ".join(comparison.baseline_run_ids)
            title = f"baseline {comparison.baseline}: run {contributors}" if contributors else ""
            _print_comparison(comparison, title, ("baseline", "this run"))
        try:
            report = _write_report(store, outcome.run_id, report_dir, quiet, log_json)
        except OutputError as exc:  # said after the regressions, which matter more in a cron mail
            report, report_error = None, exc
    code = outcome.exit_code
    failing = [] if comparison is None else comparison.failing
    load_failing = [] if comparison is None else comparison.load_failing
    if failing or load_failing:
        code = EXIT_REGRESSION
        count = len(failing) + len(load_failing)
        message = (
            f"{count} significant regression{'s' if count > 1 else ''} larger than "
            f"{fail_on_regression_pct:g}%: exit {EXIT_REGRESSION}"
        )
        if json_log is not None:
            log_json_event("error", message=message, exit_code=EXIT_REGRESSION)
        elif quiet:  # errors only: the regressions that fail the run, then why it exits 4
            for finding in failing:
                click.echo(f"Error: {_regression_line(finding)}", err=True)
            for line in load_failing:
                click.echo(f"Error: {terminal_safe(line)}", err=True)
            click.echo(f"Error: {message}", err=True)
        else:
            click.echo(message)
    if report_error is not None:
        _error(str(report_error), report_error.exit_code, log_json)
        code = code if code == EXIT_REGRESSION else report_error.exit_code
    if json_log is not None:
        _log_run_finished(json_log, outcome, code, report)
    return code


class _LockNotes:
    """Passes every event on, and writes the run id into the lock file once it is known."""

    def __init__(self, observer: RunObserver, lock: SuiteLock) -> None:
        self.observer = observer
        self.lock = lock

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        self.lock.record_run_id(run_id)
        self.observer.run_started(run_id, plan)

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        self.observer.request_started(mode, model, prompt_id, is_warmup)

    def text_received(self, mode: str, model: str, piece: str) -> None:
        self.observer.text_received(mode, model, piece)

    def request_finished(self, result: RequestResult) -> None:
        self.observer.request_finished(result)

    def phase_finished(self, mode: str, wall_s: float) -> None:
        self.observer.phase_finished(mode, wall_s)

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None:
        self.observer.level_finished(model, host, summary)

    def server_warning(self, message: str) -> None:
        self.observer.server_warning(message)


def _write_report(
    store: Store, run_id: str, report_dir: Path | None, quiet: bool, as_json: bool
) -> str | None:
    """Write the run's pages (unless --no-report); the run page's path, printed unless quiet.

    Raises OutputError saying where the results are and how to write the report elsewhere.
    """
    if report_dir is None:
        return None
    kept = (
        f"the results are kept (run {run_id} in {store.path}): "
        f"'novabench report {run_id} --db {store.path} --out DIR' writes the report"
    )
    try:
        path = render_all(store, run_id, report_dir)[0]
    except OutputError as exc:
        raise OutputError(f"{exc}; {kept}") from exc
    except KeyboardInterrupt:
        _fail(f"interrupted while writing the report: {kept}", EXIT_INTERRUPTED, as_json)
    if not quiet:
        click.echo(f"report: {terminal_safe(str(path))}")
    return str(path)


def _log_run_finished(
    json_log: JsonLogObserver, outcome: RunOutcome, code: int, report: str | None
) -> None:
    json_log.run_finished(
        outcome.run_id, outcome.status, code, len(outcome.results), len(outcome.failed), report
    )


def _regression_line(finding: Finding) -> str:
    change = "" if finding.change_pct is None else f" {finding.change_pct:+.1f}%"
    return terminal_safe(
        f"regression: {finding.mode} {finding.model} {finding.prompt_id} {finding.label} "
        f"({finding.unit}): {finding.median_a:.1f} -> {finding.median_b:.1f}{change} "
        f"({finding.verdict_text})"
    )


class _StopOnSignal:
    """SIGINT and SIGTERM during a run: the first cancels it (what finished is kept and the run
    marked interrupted), a second exits at once (130); what is in the database stays there.
    """

    def __init__(self, as_json: bool = False) -> None:
        self._previous: dict[int, Any] = {}
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.signalled = False
        self._as_json = as_json

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():  # else signals cannot be had
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            message = "interrupted again: stopping at once; what is stored stays stored"
            line = (
                json_event_line("error", message=message, exit_code=EXIT_INTERRUPTED)
                if self._as_json
                else f"Error: {message}"
            )
            # os.write, not print: the main thread may be inside a write to stderr right now.
            with contextlib.suppress(OSError):
                os.write(2, line.encode() + b"\n")
            os._exit(EXIT_INTERRUPTED)
        self.signalled = True
        loop, task = self._loop, self._task
        if loop is None or task is None or loop.is_closed():
            raise KeyboardInterrupt  # no run going: stop where we are
        loop.call_soon_threadsafe(task.cancel)
        # The cancel is seen only when the loop next runs; waiting for a database file that
        # another process holds blocks the loop for up to NOVABENCH_DB_LOCK_TIMEOUT_S. Nothing
        # is open between two tries, so stopping right there loses nothing.
        if frame is not None and frame.f_code is Store._open.__code__:
            raise KeyboardInterrupt

    def run(self, runner: SuiteRunner) -> RunOutcome:
        """Run the suite; its outcome, with status 'interrupted' when a signal stopped it."""

        async def main() -> RunOutcome:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            if self.signalled:
                raise KeyboardInterrupt
            return await runner.run()

        try:
            return asyncio.run(main())
        except asyncio.CancelledError:
            if not self.signalled:
                raise
            if runner.outcome is None:  # stopped before the run row was written
                raise KeyboardInterrupt from None
            return runner.outcome
        finally:
            self._loop = None


def _print_summary(store: Store, outcome: RunOutcome, quiet: bool, log_json: bool) -> None:
    """The summary table on stdout; with --quiet only the failed requests, on stderr (and with
    --log-json too, nothing: each failed request has been logged as JSON already).
    """
    if quiet:
        if not log_json:
            _print_failures(outcome, _console(stderr=True))
        return
    console = _console()
    table = Table(title=_cell(f"run {outcome.run_id} ({outcome.status})"), title_justify="left")
    for header in ("mode", "model", "n", "errors", "TTFT p50 ms", "TTFT p95 ms", "gen tok/s p50"):
        table.add_column(header, justify="left" if header in ("mode", "model") else "right")
    view = read_run(store, outcome.run_id)
    for row in view.summaries():
        table.add_row(
            _cell(row.mode),
            _cell(row.model),
            str(row.n),
            str(row.errors),
            _num(row.stat("ttft_ms", "median")),
            _num(row.stat("ttft_ms", "p95")),
            _num(row.stat("eval_tokens_per_s", "median"), 1),
        )
    if table.row_count:
        console.print(table)
    _print_load(view, console)
    if outcome.speedup is not None:
        console.print(
            f"parallel {outcome.wall_s_by_mode['parallel']:.2f} s vs sequential "
            f"{outcome.wall_s_by_mode['sequential']:.2f} s: speedup {outcome.speedup:.2f}x"
        )
    _print_failures(outcome, console)


def _print_load(view: RunView, console: Console) -> None:
    """Each load sweep: a row per level, then what the sweep found, in words."""
    limits = view.slo_limits
    found = view.sweeps
    if not found:
        return
    headers = ["level", "n", "errors", "tok/s", "req/s", "TTFT p50/p95/p99 ms", "ITL p50/p95 ms"]
    headers += ["e2e p95 ms"] + (["goodput req/s"] if limits else [])
    for (model, host), summaries in found.items():
        table = Table(title=_cell(f"load: {model} on {host}"), title_justify="left")
        for header in headers:
            table.add_column(header, justify="left" if header == "level" else "right")
        for level in summaries:
            cells = [
                level_name(level.kind, level.level),
                str(level.requests),
                str(level.errors),
                _num(level.output_tokens_per_s, 1),
                _num(level.requests_per_s, 2),
                "/".join(_num(level.percentile("ttft_ms", q)) for q in (50, 95, 99)),
                "/".join(_num(level.percentile("itl_ms", q), 1) for q in (50, 95)),
                _num(level.e2e_ms_p95),
            ] + ([_num(level.goodput_rps, 2)] if limits else [])
            table.add_row(*cells)
        console.print(table)
        console.print(_cell(verdict(summaries, view.backend_of(model, host))))


def _print_failures(outcome: RunOutcome, console: Console) -> None:
    for failed in outcome.failed[:5]:
        console.print(_cell(f"failed: {failed.model} {failed.prompt_id}: {failed.error or ''}"))
    if len(outcome.failed) > 5:
        console.print(f"... and {len(outcome.failed) - 5} more failed requests")


def _print_comparison(
    comparison: Comparison,
    title: str,
    headers: tuple[str, str],
    show_all: bool = False,
    hidden_hint: str = "",
) -> None:
    """Notes, then the significant rows (regressions first) or every row, then what was left out."""
    console = _console()
    if title:
        console.print(Text(terminal_safe(title)))
    for note in comparison.notes:
        console.print(Text(terminal_safe(note)))
    rows = comparison.findings if show_all else comparison.significant
    if rows:
        several_hosts = len({f.host for f in rows}) > 1
        table = Table()
        for header in ("mode", "model", "prompt", "metric", *headers, "change", "verdict"):
            table.add_column(header, justify="right" if header in headers else "left")
        for f in rows:
            model = f"{f.model} @ {f.host}" if several_hosts else f.model
            table.add_row(
                _cell(f.mode),
                _cell(model),
                _cell(f.prompt_id),
                f"{f.label} ({f.unit})",
                _num(f.median_a, 1),
                _num(f.median_b, 1),
                "—" if f.change_pct is None else f"{f.change_pct:+.1f}%",
                Text(f.verdict_text, style=_VERDICT_STYLES.get(f.verdict, "")),
            )
        console.print(table)
    elif comparison.findings:
        # With sweeps below, say which rows this is about: the sweeps may well have changed.
        console.print(
            "no significant changes" + (" in the per-prompt groups" if comparison.load else "")
        )
    hidden = [] if show_all else [f for f in comparison.findings if not f.significant]
    if hidden:
        counts = ", ".join(
            f"{n} {verdict}"
            for verdict in (WITHIN_NOISE, TOO_FEW, NO_DIFFERENCE)
            if (n := sum(f.verdict == verdict for f in hidden))
        )
        rows_text = "1 row" if len(hidden) == 1 else f"{len(hidden)} rows"
        console.print(f"{rows_text} not significant: {counts}{hidden_hint}")
    for sweep in comparison.load:
        _print_sweep_change(console, sweep, headers)
    if comparison.load:
        console.print(
            "tokens/s at a level is one number per run: no significance test; * marks a p95 "
            f"whose samples changed significantly (Mann-Whitney U, p < {SIGNIFICANCE:g})"
        )


def _print_sweep_change(console: Console, sweep: SweepChange, headers: tuple[str, str]) -> None:
    """One model's load sweep, level by level, then its knee and peak in both runs."""
    console.print(Text(terminal_safe(f"load: {sweep.model} @ {sweep.host}")))
    table = Table()
    for header in ("level", "tokens/s", "TTFT p95 (ms)", "ITL p95 (ms)", "e2e p95 (ms)", "errors"):
        table.add_column(header, justify="left" if header == "level" else "right")
    for level in sweep.levels:
        cells = [_a_to_b(level.tokens_per_s_a, level.tokens_per_s_b, level.tokens_change_pct)]
        for metric in ("ttft_ms", "itl_ms", "e2e_ms"):
            found = level.figure(metric)
            if found is None:
                cells.append(Text("—"))
                continue
            cell = _a_to_b(found.p95_a, found.p95_b, found.change_pct)
            if found.significant:
                cell.append(" *")
                cell.stylize(_VERDICT_STYLES.get(found.verdict, ""))
            cells.append(cell)
        cells.append(Text(f"{_rate(level.error_rate_a)} → {_rate(level.error_rate_b)}"))
        table.add_row(_cell(level.name), *cells)
    console.print(table)
    peak = _a_to_b(sweep.peak_a, sweep.peak_b, sweep.peak_change_pct)
    console.print(
        Text(f"peak throughput (tok/s) {headers[0]} → {headers[1]}: ")
        + peak
        + Text(f"; knee: {sweep.knee_a or 'none'} → {sweep.knee_b or 'none'}")
    )
    for text in sweep.unmatched:
        console.print(Text(f"not compared: {terminal_safe(text)}"))


def _a_to_b(a: float | None, b: float | None, change_pct: float | None) -> Text:
    change = "" if change_pct is None else f" ({change_pct:+.1f}%)"
    return Text(f"{_num(a, 1)} → {_num(b, 1)}{change}")


def _rate(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


def _cell(value: object) -> Text:
    """A table cell or line from outside novabench (the database, a server, a suite): plain text
    (never rich markup) with every control and bidi character shown as an escape."""
    return Text(terminal_safe("—" if value is None else str(value)))


def _console(stderr: bool = False) -> Console:
    """stdout (or stderr); wide enough in a pipe or a cron mail that tables are not folded."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, stderr=stderr, width=None if stream.isatty() else 160)


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


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
    store = _open_store(db_path)
    comparison = compare_runs(store, run_a, run_b, metric_names or METRIC_NAMES)
    _print_comparison(
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
        _fail("\n".join(problems), SuiteError.exit_code)


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
    store = _open_store(db_path)
    run_id = store.latest_run_id() if latest or not run_id else run_id
    store.get_run(run_id)
    out = _out(db_path, out_dir)
    click.echo(f"report: {terminal_safe(str(render_run(store, run_id, out)))}")
    render_index(store, out)


@cli.command()
@db_option
@out_option
@friendly_errors
def history(db_path: Path, out_dir: Path | None) -> None:
    """Write history.html and index.html from every run in the database.

    Run pages that are missing (runs made with --no-report, or pages deleted) are written too,
    so every link in the index leads somewhere.
    """
    store = _open_store(db_path)
    out = _out(db_path, out_dir)
    for listed in store.list_runs():
        if not (out / "runs" / f"{listed['run_id']}.html").exists():
            click.echo(f"report: {terminal_safe(str(render_run(store, listed['run_id'], out)))}")
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
    store = _open_store(db_path)
    if show_run is not None:
        manifest = Table(show_header=False, box=None)
        manifest.add_column(style="bold")
        manifest.add_column()
        for label, value in manifest_lines(store.get_run(show_run), store.models(show_run)):
            manifest.add_row(_cell(label), _cell(value))
        _console().print(manifest)
        return
    table = Table()
    for header in (
        "run id",
        "started (UTC)",
        "suite",
        "status",
        "host",
        "ollama",
        "requests",
        "errors",
    ):
        table.add_column(header)
    for run_row in store.list_runs(suite_name):
        table.add_row(
            _cell(run_row["run_id"]),
            f"{run_row['started_at']:%Y-%m-%d %H:%M:%S}",
            _cell(run_row["suite_name"]),
            _cell(run_row["status"]),
            _cell(run_row["host"]),
            _cell(run_row["ollama_version"]),
            str(run_row["requests"]),
            str(run_row["errors"]),
        )
    _console().print(table)


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

    async def fetch() -> tuple[str, list[Any]]:
        backend = OllamaBackend(url)
        try:
            return await backend.version(), list((await backend.list_models()).values())
        finally:
            await backend.aclose()

    version, infos = asyncio.run(fetch())
    table = Table(title=_cell(f"{url} (Ollama {version})"), title_justify="left")
    for header in ("model", "size GB", "family", "parameters", "quantization", "digest"):
        table.add_column(header)
    for info in infos:
        size = f"{info.size_bytes / 1e9:.2f}" if info.size_bytes else "—"
        table.add_row(
            _cell(info.name),
            size,
            _cell(info.family or None),
            _cell(info.parameter_size or None),
            _cell(info.quantization or None),
            _cell((info.digest or "—")[:12]),
        )
    _console().print(table)


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
    store = _open_store(db_path)
    count = export_results(store, out_path, export_format, run_id, suite_name)  # type: ignore[arg-type]
    click.echo(terminal_safe(f"{count} rows written to {out_path}"))


def _open_store(db_path: Path) -> Store:
    """The existing database, with runs whose process died (kill -9, a crash) marked aborted."""
    store = Store(_existing(db_path))
    store.mark_abandoned_runs()
    return store


def _existing(db_path: Path) -> Path:
    if not db_path.exists():
        raise NovabenchError(f"{db_path}: no such database: 'novabench run SUITE' creates it")
    return db_path


def main() -> None:
    """What older installs' `novabench` script calls; novabench.entry.main does the work."""
    _entry_main()


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

    A run whose database stopped taking writes (a full disk, a lock held too long) stops and
    writes what the database lacks to a spill file, and names it; once the database can be
    written again, this adds it. Importing twice adds nothing twice.
    """
    if not spill_path.is_file():
        raise NovabenchError(f"{spill_path}: no such spill file")
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
