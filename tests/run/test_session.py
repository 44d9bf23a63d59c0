"""The Python API runs a suite as `novabench run` does: baseline, regression gate, lock, reports,
signals, and the same exit code as the command for the same run."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from novabench import (
    BaselineError,
    SessionOutcome,
    Store,
    SuiteRunningError,
    load_suite,
    run_suite,
)
from novabench.cli import cli
from novabench.records import RequestResult
from novabench.run.runner import NullObserver
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble

REPLY = "I am doing well, thank you for asking."


def cli_run(*args: str) -> int:
    """`novabench run ... --db db.duckdb --no-report -q`: its exit code."""
    result = CliRunner().invoke(cli, ["run", *args, "--db", "db.duckdb", "--no-report", "-q"])
    assert "Traceback" not in result.output, result.output
    return result.exit_code


def one_model_suite(path: Path, host: str, **overrides: object) -> Path:
    keys: dict[str, object] = {"models": "[llama3.2]", "prompts": '["Hi."]'}
    keys.update({"modes": "[sequential]", "repetitions": 8, **overrides})
    return write_suite(path, host, **keys)


def test_a_regression_beyond_the_tolerance_is_exit_4_from_the_api_as_from_the_cli(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = one_model_suite(tmp_path / "s.yaml", ollama.url)
    store = Store(tmp_path / "db.duckdb")
    first = run_suite(suite, store, baseline="last", fail_on_regression_pct=10)
    assert (first.exit_code, first.status) == (0, "complete")
    assert first.comparison is not None and first.comparison.findings == []
    ollama.stop()

    slower = [FakeModel("llama3.2", reply=REPLY, token_interval_s=0.016)]  # same digest
    with OllamaDouble(models=slower, port=ollama.port):
        gated = run_suite(suite, store, baseline="last", fail_on_regression_pct=10)
        assert isinstance(gated, SessionOutcome)
        assert gated.exit_code == 4 and gated.status == "complete" and gated.failed == []
        assert gated.comparison is not None
        assert gated.comparison.baseline_run_ids == [first.run_id]
        assert {f.metric for f in gated.failing} >= {"eval_tokens_per_s"}
        assert all(f.change_pct is not None and abs(f.change_pct) > 10 for f in gated.failing)
        stored = store.get_run(gated.run_id)
        assert (stored["baseline"], stored["fail_on_regression_pct"]) == ("last", 10)
        assert cli_run(str(suite), "--baseline", first.run_id, "--fail-on-regression", "10") == 4

        tolerant = run_suite(suite, store, baseline=first.run_id, fail_on_regression_pct=500)
        assert tolerant.exit_code == 0 and tolerant.failing == []
        assert tolerant.comparison is not None and tolerant.comparison.regressions
        assert cli_run(str(suite), "--baseline", first.run_id, "--fail-on-regression", "500") == 0


def test_failed_requests_are_exit_1_from_the_api_as_from_the_cli(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = one_model_suite(tmp_path / "s.yaml", ollama.url, models="[llama3.2, ghost]")
    outcome = run_suite(load_suite(suite), Store(tmp_path / "db.duckdb"))
    assert outcome.exit_code == 1 and outcome.status == "complete"
    assert {r.model for r in outcome.failed} == {"ghost"}
    assert outcome.comparison is None and outcome.report_path is None
    assert cli_run(str(suite)) == 1


def test_a_report_that_cannot_be_written_is_exit_6_and_the_results_are_kept(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = one_model_suite(tmp_path / "s.yaml", ollama.url, repetitions=2)
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store, report_dir="/dev/null")
    assert outcome.exit_code == 6 and outcome.status == "complete"
    assert outcome.report_path is None and outcome.report_error is not None
    assert str(outcome.report_error).startswith("cannot write the report /dev/null/runs/")
    assert f"the results are kept (run {outcome.run_id} in " in str(outcome.report_error)
    assert len(store.results(outcome.run_id)) == 3  # the warm-up and both repetitions
    result = CliRunner().invoke(cli, ["run", str(suite), "--db", "db.duckdb", "--out", "/dev/null"])
    assert result.exit_code == 6, result.output

    written = run_suite(suite, store, report_dir=tmp_path / "out")
    assert written.exit_code == 0
    assert written.report_path == tmp_path / "out" / "runs" / f"{written.run_id}.html"
    assert written.report_path.read_text().rstrip().endswith("</html>")


def test_a_bad_baseline_is_refused_before_anything_runs(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = one_model_suite(tmp_path / "s.yaml", ollama.url)
    store = Store(tmp_path / "db.duckdb")
    with pytest.raises(BaselineError, match="'nonsense': not 'last', 'median:N' or a run id"):
        run_suite(suite, store, baseline="nonsense")
    with pytest.raises(BaselineError, match="needs a baseline") as refused:
        run_suite(suite, store, fail_on_regression_pct=10)
    assert refused.value.exit_code == 2
    assert ollama.requests == [] and not store.path.exists()


class _HoldOpen(NullObserver):
    """Lets the test in once the run has started, and holds its first request until told."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def request_finished(self, result: RequestResult) -> None:
        self.started.set()
        assert self.release.wait(60), "the test never let the run go on"


def test_a_second_session_of_a_running_suite_raises_suite_running_and_the_cli_exits_5(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = one_model_suite(tmp_path / "s.yaml", ollama.url, repetitions=2)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    holder = _HoldOpen()
    outcomes: list[SessionOutcome] = []
    thread = threading.Thread(
        target=lambda: outcomes.append(run_suite(suite, Store("db.duckdb"), holder))
    )
    thread.start()
    try:
        assert holder.started.wait(60)
        # Off the main thread no signal handler can be, and none was installed.
        assert {s: signal.getsignal(s) for s in handlers} == handlers
        lock_note = json.loads((tmp_path / "locks" / "mini.lock").read_text())
        assert lock_note["pid"] == os.getpid() and lock_note["run_id"]
        with pytest.raises(SuiteRunningError, match="suite 'mini' is already running") as held:
            run_suite(suite, Store("db.duckdb"))
        assert held.value.exit_code == 5
        assert cli_run(str(suite)) == 5
    finally:
        holder.release.set()
        thread.join(60)
    (outcome,) = outcomes
    assert outcome.exit_code == 0 and outcome.run_id == lock_note["run_id"]
    assert [r["run_id"] for r in Store("db.duckdb").list_runs()] == [outcome.run_id]
    assert run_suite(suite, Store("db.duckdb")).exit_code == 0  # released once it ended


class _SignalAfterFirst(NullObserver):
    """Sends this process a signal once the first request has finished."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.sent = False

    def request_finished(self, result: RequestResult) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_an_api_run_with_exit_130_and_keeps_what_finished(
    ollama: OllamaDouble, tmp_path: Path, signum: int
) -> None:
    suite = one_model_suite(tmp_path / "s.yaml", ollama.url, repetitions=50)
    before = signal.getsignal(signum)
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store, _SignalAfterFirst(signum), baseline="last")
    assert (outcome.status, outcome.exit_code) == ("interrupted", 130)
    assert 1 <= len(outcome.results) < 51
    assert outcome.interruption == (
        f"interrupted: {len(outcome.results)} requests stored in run {outcome.run_id}"
    )
    assert outcome.comparison is None  # an interrupted run is compared with nothing
    assert store.get_run(outcome.run_id)["status"] == "interrupted"
    assert len(store.results(outcome.run_id)) == len(outcome.results)
    assert signal.getsignal(signum) == before  # the session's handler is gone
