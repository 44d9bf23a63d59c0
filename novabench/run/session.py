"""One `novabench run` as a library call: the suite's lock, signals, the baseline, the run, the
regression gate and the reports, ending in an outcome that carries the command's exit code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from novabench.analysis.baselines import check_baseline
from novabench.analysis.compare import Comparison, Finding, baseline_comparison
from novabench.analysis.history import bring_up_to_date
from novabench.config.reading import load_suite
from novabench.config.suite import Suite
from novabench.errors import EXIT_INTERRUPTED, EXIT_REGRESSION, BaselineError, OutputError
from novabench.records import LevelSummary, RequestResult
from novabench.run.lock import SuiteLock
from novabench.run.runner import NullObserver, RunObserver, RunOutcome, SuiteRunner
from novabench.storage.store import Store

# Writes a run's pages into a folder (novabench.report.render_all); the run page comes first.
PageWriter = Callable[[Store, str, Path], Sequence[Path]]


class SessionObserver(Protocol):
    """Told what a session has done between its steps (the CLI prints each)."""

    def run_ended(self, store: Store, outcome: RunOutcome) -> None:
        """The run is stored (complete, or interrupted with what finished)."""

    def baseline_compared(self, comparison: Comparison) -> None:
        """The run has been compared with its baseline."""

    def report_written(self, path: Path) -> None:
        """The run's report is written; `path` is its run page."""


@dataclass(frozen=True)
class SessionOutcome:
    """What a session did: the run, its comparison with the baseline, its report, its exit code.

    exit_code is the one `novabench run` gives: 130 interrupted, else 4 for a regression beyond
    the tolerance, else 6 when the report could not be written, else 1 when a request failed,
    else 0.
    """

    run: RunOutcome
    exit_code: int
    comparison: Comparison | None = None
    report_path: Path | None = None
    report_error: OutputError | None = None  # the report could not be written; results kept
    report_interrupted: bool = False  # a signal stopped the report; the results are kept
    interruption: str | None = None  # what a signal stopped, and what is kept, in words

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def db_path(self) -> Path:
        return self.run.db_path

    @property
    def results(self) -> list[RequestResult]:
        return self.run.results

    @property
    def failed(self) -> list[RequestResult]:
        return self.run.failed

    @property
    def wall_s_by_mode(self) -> dict[str, float]:
        return self.run.wall_s_by_mode

    @property
    def speedup(self) -> float | None:
        return self.run.speedup

    @property
    def failing(self) -> list[Finding]:
        """Significant regressions beyond the tolerance: those that make the exit code 4."""
        return [] if self.comparison is None else self.comparison.failing

    @property
    def load_failing(self) -> list[str]:
        """Load regressions beyond the tolerance, in words: they make the exit code 4 too."""
        return [] if self.comparison is None else self.comparison.load_failing


class RunSession:
    """Runs a suite once as `novabench run` does, from the checks before it to the reports."""

    def __init__(
        self,
        suite: Suite | str | Path,
        store: Store,
        *,
        observer: RunObserver | None = None,
        cold_start: bool | None = None,
        baseline: str | None = None,
        fail_on_regression_pct: float | None = None,
        lock: bool = True,
        report_dir: Path | None = None,
        write_pages: PageWriter | None = None,
        session_observer: SessionObserver | None = None,
        stop_line: Callable[[str], str] | None = None,
    ) -> None:
        """`suite` may be a path, loaded once the baseline is checked. An observer that is a
        context manager (the live display) is entered for the run alone. `stop_line` formats
        the line written to stderr when a second signal stops the process at once."""
        if fail_on_regression_pct is not None and baseline is None:
            raise BaselineError(
                f"fail_on_regression_pct={fail_on_regression_pct:g} needs a baseline to compare "
                "with: 'last', 'median:N' or a run id"
            )
        if report_dir is not None and write_pages is None:
            raise ValueError("report_dir needs write_pages (novabench.report.render_all)")
        self.suite = suite
        self.store = store
        self.observer: RunObserver = observer or NullObserver()
        self.cold_start = cold_start
        self.baseline = baseline
        self.fail_on_regression_pct = fail_on_regression_pct
        self.lock = lock
        self.report_dir = report_dir
        self.write_pages = write_pages
        self.told: SessionObserver = session_observer or _Untold()
        self.stop_line = stop_line or (lambda message: f"Error: {message}")

    def run(self) -> SessionOutcome:
        """Check, lock, run, compare and report; errors are the exceptions of errors.py.

        Raises SuiteRunningError while another process runs the same suite.
        """
        if self.store.path.exists():  # else nothing to mark, and nothing is created before
            self.store.mark_abandoned_runs()
        if self.baseline is not None:
            check_baseline(self.store, self.baseline)
        suite = self.suite if isinstance(self.suite, Suite) else load_suite(Path(self.suite))
        locks_dir = self.store.path.parent / "locks"
        held: contextlib.AbstractContextManager[SuiteLock | None] = (
            SuiteLock(locks_dir, suite.name) if self.lock else contextlib.nullcontext()
        )
        # Signals are handled until the reports are written: a second one then exits at once.
        with held as lock, StopOnSignal(self.stop_line) as stopper:
            outcome = self._run(suite, stopper, lock)
            if outcome.status == "interrupted":
                return self._interrupted(outcome)
            return self._finished(outcome)

    def _run(self, suite: Suite, stopper: StopOnSignal, lock: SuiteLock | None) -> RunOutcome:
        observer = self.observer if lock is None else _LockNotes(self.observer, lock)
        runner = SuiteRunner(suite, self.store, observer, self.cold_start)
        display: contextlib.AbstractContextManager[Any] = (
            self.observer
            if isinstance(self.observer, contextlib.AbstractContextManager)
            else contextlib.nullcontext()
        )
        with display:
            outcome = stopper.run(runner)
        return outcome

    def _interrupted(self, outcome: RunOutcome) -> SessionOutcome:
        """A signal stopped the run: what finished is stored and reported; exit 130."""
        self.told.run_ended(self.store, outcome)
        report = self._report(outcome.run_id)
        line = f"interrupted: {len(outcome.results)} requests stored in run {outcome.run_id}"
        return report.outcome(outcome, EXIT_INTERRUPTED, None, line)

    def _finished(self, outcome: RunOutcome) -> SessionOutcome:
        """The run ended: record its baseline, compare, write the reports, gate regressions; at
        one open of the database (opening a large file costs milliseconds, and this does dozens
        of reads and writes)."""
        with self.store.holding():
            return self._finish(outcome)

    def _finish(self, outcome: RunOutcome) -> SessionOutcome:
        if self.baseline is not None:
            self.store.set_baseline(outcome.run_id, self.baseline, self.fail_on_regression_pct)
        self.told.run_ended(self.store, outcome)
        interrupted = self._summarize(outcome.run_id)  # the baseline is chosen from them too
        if interrupted is not None:
            return interrupted.outcome(outcome, outcome.exit_code, None, None)
        comparison = baseline_comparison(self.store, outcome.run_id)
        if comparison is not None:
            self.told.baseline_compared(comparison)
        report = self._report(outcome.run_id)
        code = outcome.exit_code
        if comparison is not None and (comparison.failing or comparison.load_failing):
            code = EXIT_REGRESSION
        elif report.error is not None:  # a regression matters more than a missing report
            code = report.error.exit_code
        return report.outcome(outcome, code, comparison, None)

    def _summarize(self, run_id: str) -> _Report | None:
        """Make what the history keeps of the run: its summaries, changes and load levels, from
        its own rows (and any other run's that lacks them; idempotent). The history page and
        the choice of a baseline read only those. None, or how it was interrupted."""
        try:
            bring_up_to_date(self.store)
        except KeyboardInterrupt:
            return _Report(
                interrupted=f"interrupted while summarizing the run: {self._kept(run_id)}"
            )
        return None

    def _kept(self, run_id: str) -> str:
        return (
            f"the results are kept (run {run_id} in {self.store.path}): "
            f"'novabench report {run_id} --db {self.store.path} --out DIR' writes the report"
        )

    def _report(self, run_id: str) -> _Report:
        """Make what the history keeps of the run, then write its pages (when there is a folder
        for them), never losing the results."""
        interrupted = self._summarize(run_id)
        if interrupted is not None:
            return interrupted
        kept = self._kept(run_id)
        if self.report_dir is None or self.write_pages is None:
            return _Report()
        try:
            path = Path(self.write_pages(self.store, run_id, self.report_dir)[0])
        except OutputError as exc:
            return _Report(error=OutputError(f"{exc}; {kept}"))
        except KeyboardInterrupt:
            return _Report(interrupted=f"interrupted while writing the report: {kept}")
        self.told.report_written(path)
        return _Report(path=path)


@dataclass(frozen=True)
class _Report:
    """How writing the report went."""

    path: Path | None = None
    error: OutputError | None = None
    interrupted: str | None = None

    def outcome(
        self, run: RunOutcome, code: int, comparison: Comparison | None, interruption: str | None
    ) -> SessionOutcome:
        if self.interrupted is not None:
            code, interruption = EXIT_INTERRUPTED, self.interrupted
        return SessionOutcome(
            run,
            code,
            comparison,
            self.path,
            self.error,
            report_interrupted=self.interrupted is not None,
            interruption=interruption,
        )


class _Untold:
    """A session observer that is told nothing: the default for library use."""

    def run_ended(self, store: Store, outcome: RunOutcome) -> None:
        pass

    def baseline_compared(self, comparison: Comparison) -> None:
        pass

    def report_written(self, path: Path) -> None:
        pass


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


class StopOnSignal:
    """SIGINT and SIGTERM during a run: the first cancels it (what finished is kept and the run
    marked interrupted), a second exits at once (130); what is in the database stays there.

    Signals can only be had on the main thread: elsewhere nothing is installed.
    """

    def __init__(self, stop_line: Callable[[str], str]) -> None:
        self._previous: dict[int, Any] = {}
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.signalled = False
        self._stop_line = stop_line

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signalled:
            message = "interrupted again: stopping at once; what is stored stays stored"
            line = self._stop_line(message)
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
