"""Interrupts and crashes: Ctrl-C and SIGTERM, kill -9, a server that dies, requests that stall."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from novabench import Store, load_suite, run_suite
from novabench.cli import cli
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, Fault, OllamaDouble

# A finished request's log line (no TTY): "2026-...Z sequential slow p1 #3: ttft 51 ms, ..."
FINISHED_LINE = re.compile(r"^\S+ (sequential|parallel) \S+ \S+ #\d+.*: ")


def _slow_double() -> OllamaDouble:
    """One model whose replies take about half a second each."""
    reply = " ".join(["word"] * 10)
    return OllamaDouble(models=[FakeModel("slow", reply=reply, token_interval_s=0.05)])


def _start_run(tmp_path: Path, host: str) -> tuple[subprocess.Popen[bytes], Path]:
    suite = write_suite(
        tmp_path / "s.yaml",
        host,
        models="[slow]",
        prompts="[hi]",
        modes="[sequential]",
        repetitions=40,
        warmup=0,
        sample_interval_s=0,
    )
    log = tmp_path / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "novabench", "run", str(suite), "--db", "db.duckdb"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return process, log


def _finished_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if FINISHED_LINE.match(line)]


def _wait_for_lines(process: subprocess.Popen[bytes], log: Path, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(_finished_lines(log)) < count:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_run_keeping_what_finished(tmp_path: Path, signum: int) -> None:
    with _slow_double() as double:
        process, log = _start_run(tmp_path, double.url)
        _wait_for_lines(process, log, 3)
        process.send_signal(signum)
        assert process.wait(timeout=30) == 130, log.read_text()

    store = Store(tmp_path / "db.duckdb")
    (run,) = store.list_runs()
    assert run["status"] == "interrupted" and run["ended_at"] is not None
    finished = _finished_lines(log)
    rows = store.results(run["run_id"])
    assert len(rows) == len(finished) >= 3
    assert len(rows) < 40  # it stopped
    assert all(row["error"] is None for row in rows)  # the cancelled request is not stored
    assert log.read_text().splitlines()[-1] == (
        f"Error: interrupted: {len(rows)} requests stored in run {run['run_id']}"
    )
    assert (tmp_path / "runs" / f"{run['run_id']}.html").is_file()


@pytest.mark.timeout(120)
def test_second_signal_exits_at_once(tmp_path: Path) -> None:
    with _slow_double() as double:
        process, log = _start_run(tmp_path, double.url)
        _wait_for_lines(process, log, 2)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130, log.read_text()
    # whatever was written is readable, and the finished requests that made it are there
    store = Store(tmp_path / "db.duckdb")
    (run,) = store.list_runs()
    assert len(store.results(run["run_id"])) <= len(_finished_lines(log))


@pytest.mark.timeout(120)
def test_killed_run_is_marked_aborted_by_the_next_command(tmp_path: Path) -> None:
    with _slow_double() as double:
        process, log = _start_run(tmp_path, double.url)
        _wait_for_lines(process, log, 3)
        process.kill()
        process.wait(timeout=30)
    finished = _finished_lines(log)

    store = Store(tmp_path / "db.duckdb")
    (run,) = store.list_runs()
    assert run["status"] == "running"  # nothing could mark it
    result = CliRunner().invoke(cli, ["runs", "--db", str(tmp_path / "db.duckdb")])
    assert result.exit_code == 0, result.output
    assert "aborted" in result.stdout and "running" not in result.stdout
    run = store.get_run(run["run_id"])
    assert run["status"] == "aborted" and run["ended_at"] is not None
    # sequential: at most the one result being handed to the writer thread can be lost
    assert len(finished) - 1 <= len(store.results(run["run_id"])) <= len(finished)


def test_running_runs_of_live_processes_and_other_machines_are_left_alone(
    tmp_path: Path,
) -> None:
    import os
    import socket

    from novabench.storage.store import utcnow

    store = Store(tmp_path / "db.duckdb")
    base = {
        "started_at": utcnow(),
        "status": "running",
        "suite_name": "s",
        "suite_text": "",
        "suite_sha256": "",
        "host": "http://x",
        "novabench_version": "0",
        "modes": ["sequential"],
        "repetitions": 1,
        "warmup": 0,
    }
    here = socket.gethostname()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    store.create_run({**base, "run_id": "live", "hostname": here, "pid": os.getpid()})
    store.create_run({**base, "run_id": "elsewhere", "hostname": here + "-other", "pid": gone.pid})
    store.create_run({**base, "run_id": "gone", "hostname": here, "pid": gone.pid})
    # this process was created after that run started: its pid was reused
    old = {**base, "started_at": datetime(2000, 1, 1)}
    store.create_run({**old, "run_id": "reused", "hostname": here, "pid": os.getpid()})
    assert sorted(store.mark_abandoned_runs()) == ["gone", "reused"]
    statuses = {r["run_id"]: r["status"] for r in store.list_runs()}
    assert statuses == {
        "live": "running",
        "elsewhere": "running",
        "gone": "aborted",
        "reused": "aborted",
    }


@pytest.mark.timeout(60)
def test_first_token_timeout_fails_that_request_and_the_run_goes_on(tmp_path: Path) -> None:
    with OllamaDouble(models=[FakeModel("m", reply="a b c", token_interval_s=0.001)]) as double:
        double.add_fault("m", Fault.delay_headers(5))
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models="[m]",
            prompts="[hi]",
            modes="[sequential]",
            repetitions=3,
            warmup=0,
            first_token_timeout_s=0.5,
        )
        store = Store(tmp_path / "db.duckdb")
        started = time.monotonic()
        outcome = run_suite(load_suite(suite), store)
    assert time.monotonic() - started < 4
    assert outcome.status == "complete" and outcome.exit_code == 1
    errors = [r["error"] for r in store.results(outcome.run_id)]
    assert errors == ["no first token within first_token_timeout_s=0.5", None, None]


@pytest.mark.timeout(60)
def test_first_token_timeout_does_not_cut_a_long_answer(tmp_path: Path) -> None:
    reply = " ".join(["w"] * 30)
    with OllamaDouble(models=[FakeModel("m", reply=reply, token_interval_s=0.03)]) as double:
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models="[m]",
            prompts="[hi]",
            modes="[sequential]",
            repetitions=1,
            warmup=0,
            first_token_timeout_s=0.5,
        )
        outcome = run_suite(load_suite(suite), Store(tmp_path / "db.duckdb"))
    assert outcome.exit_code == 0, [r.error for r in outcome.results]


@pytest.mark.timeout(90)
def test_server_dying_mid_run_fails_the_rest_and_the_run_completes(tmp_path: Path) -> None:
    double = _slow_double().start()
    suite = write_suite(
        tmp_path / "s.yaml",
        double.url,
        models="[slow]",
        prompts="[hi]",
        modes="[sequential]",
        repetitions=8,
        warmup=0,
        timeout_s=10,
    )
    threading.Timer(1.2, double.stop).start()
    try:
        result = CliRunner().invoke(cli, ["run", str(suite), "-q", "--db", "db.duckdb"])
    finally:
        double.stop()
    assert result.exit_code == 1, result.output
    store = Store(tmp_path / "db.duckdb")
    (run,) = store.list_runs()
    assert run["status"] == "complete"
    rows = store.results(run["run_id"])
    assert len(rows) == 8
    ok = [r for r in rows if r["error"] is None]
    failed = [r for r in rows if r["error"] is not None]
    assert ok and failed
    assert rows[-1]["error"] == f"cannot reach Ollama at {double.url} (connection refused)"
    assert all(
        "connection" in r["error"] or "cannot reach" in r["error"] or "timeout" in r["error"]
        for r in failed
    ), [r["error"] for r in failed]
