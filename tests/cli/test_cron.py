"""Running from cron: --quiet, --log-json, and the per-suite lock file (exit 5)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from novabench import Store
from novabench.cli import cli
from novabench.console.log import JsonLogObserver
from novabench.records import RequestResult
from novabench.run.lock import SuiteLock, lock_file_name
from tests.conftest import free_port, wait_until_running, write_suite
from tests.ollama_double import FakeModel, OllamaDouble

SLOW_REPLY = " ".join(["word"] * 10)  # about half a second per request


def _events(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as JSON, each with a UTC timestamp and an event name."""
    events = [json.loads(line) for line in stderr.splitlines()]
    for event in events:
        assert event["ts"].endswith("Z")
        datetime.fromisoformat(event["ts"])
        assert isinstance(event["event"], str)
    return events


# ---- --log-json -------------------------------------------------------------------------------


def test_log_json_writes_one_object_per_event_in_order(
    ollama: OllamaDouble, isolated: Path
) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url)
    result = CliRunner().invoke(cli, ["run", str(suite), "--log-json"])
    assert result.exit_code == 0, result.output
    events = _events(result.stderr)
    names = [e["event"] for e in events]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    assert names.count("request_finished") == 2 * 2 * (
        2 * 2 + 1
    )  # modes, models, prompts x reps + warm-up
    assert [e["mode"] for e in events if e["event"] == "phase_finished"] == [
        "parallel",
        "sequential",
    ]
    started, finished = events[0], events[-1]
    run_id = started["run_id"]
    assert started["planned_requests"] == 20
    assert finished == {
        "ts": finished["ts"],
        "event": "run_finished",
        "run_id": run_id,
        "status": "complete",
        "exit_code": 0,
        "requests": 20,
        "failed": 0,
        "report": f"reports/runs/{run_id}.html",
    }
    request = next(e for e in events if e["event"] == "request_finished" and not e["warmup"])
    assert set(request) == {
        "ts",
        "event",
        "mode",
        "model",
        "host",
        "prompt_id",
        "repetition",
        "warmup",
        "cold",
        "ok",
        "error",
        "ttft_ms",
        "e2e_ms",
        "eval_tokens_per_s",
        "output_tokens",
    }
    assert request["ok"] is True and request["error"] is None and request["ttft_ms"] > 0
    assert request["host"] == ollama.url
    # model output stays out of the log
    for reply in ("doing well", "equals four"):
        assert reply not in result.stderr
    assert f"report: reports/runs/{run_id}.html" in result.stdout  # stdout is unchanged


def test_log_json_unreachable_host_is_one_json_error(isolated: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    suite = write_suite(isolated / "s.yaml", url)
    result = CliRunner().invoke(cli, ["run", str(suite), "--log-json"])
    assert result.exit_code == 3
    (error,) = _events(result.stderr)
    assert error == {
        "ts": error["ts"],
        "event": "error",
        "message": f"cannot reach Ollama at {url} (connection refused): "
        "start it with 'ollama serve' or set OLLAMA_HOST",
        "exit_code": 3,
    }
    assert result.stdout == ""


def test_log_json_bad_suite_is_a_json_error(isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", "http://127.0.0.1:1", repetitions=0)
    result = CliRunner().invoke(cli, ["run", str(suite), "--log-json"])
    assert result.exit_code == 2
    (error,) = _events(result.stderr)
    assert error["event"] == "error" and error["exit_code"] == 2
    assert error["message"].startswith(f"{suite}:")


def test_log_json_escapes_control_characters_in_names() -> None:
    class Sink:
        lines: list[str] = []

        def write(self, text: str) -> None:
            self.lines.append(text)

        def flush(self) -> None:
            pass

    sink = Sink()
    result = RequestResult(
        mode="sequential",
        model="evil\x1b[31m\nname",
        host="http://h",
        prompt_id="p1",
        repetition=0,
        is_warmup=False,
        started_at=datetime.now(UTC),
        error="boom\r\x07",
        response_text="SECRET OUTPUT",
    )
    JsonLogObserver(stream=sink).request_finished(result)  # type: ignore[arg-type]
    text = "".join(sink.lines)
    assert text.count("\n") == 1 and "\x1b" not in text and "\r" not in text
    assert "SECRET" not in text
    event = json.loads(text)
    assert event["model"] == "evil\x1b[31m\nname" and event["ok"] is False


# ---- --quiet ----------------------------------------------------------------------------------


def test_quiet_success_prints_nothing(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url)
    result = CliRunner().invoke(cli, ["run", str(suite), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and result.stderr == ""
    assert len(list((isolated / "reports" / "runs").glob("*.html"))) == 1  # still written


def test_quiet_failure_prints_only_the_error_lines(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url, models="[llama3.2, ghost]")
    result = CliRunner().invoke(cli, ["run", str(suite), "--quiet"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[:5] == [f"failed: ghost p1: model 'ghost' not found on {ollama.url}"] * 2 + [
        f"failed: ghost p2: model 'ghost' not found on {ollama.url}"
    ] * 2 + [f"failed: ghost p1: model 'ghost' not found on {ollama.url}"]
    assert lines[5:] == ["... and 3 more failed requests"]


def test_quiet_host_down_is_the_error_line_only(isolated: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    suite = write_suite(isolated / "s.yaml", url)
    result = CliRunner().invoke(cli, ["run", str(suite), "--quiet"])
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.startswith(f"Error: cannot reach Ollama at {url}")
    assert result.stderr.count("\n") == 1


def test_quiet_log_json_writes_only_errors(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url)
    ok = CliRunner().invoke(cli, ["run", str(suite), "--quiet", "--log-json"])
    assert ok.exit_code == 0 and ok.stdout == "" and ok.stderr == ""

    suite = write_suite(isolated / "s.yaml", ollama.url, models="[llama3.2, ghost]")
    failed = CliRunner().invoke(cli, ["run", str(suite), "--quiet", "--log-json"])
    assert failed.exit_code == 1 and failed.stdout == ""
    events = _events(failed.stderr)
    assert [e["event"] for e in events] == ["request_finished"] * 8 + ["run_finished"]
    assert all(e["model"] == "ghost" and e["ok"] is False for e in events[:-1])
    assert events[-1]["exit_code"] == 1 and events[-1]["failed"] == 8


# ---- the lock file ----------------------------------------------------------------------------


def _slow_double() -> OllamaDouble:
    return OllamaDouble(models=[FakeModel("slow", reply=SLOW_REPLY, token_interval_s=0.05)])


def _suite(tmp_path: Path, host: str, name: str = "mini", repetitions: int = 8) -> Path:
    return write_suite(
        tmp_path / f"{name}.yaml",
        host,
        name=name,
        models="[slow]",
        prompts="[hi]",
        modes="[sequential]",
        repetitions=repetitions,
        warmup=0,
        sample_interval_s=0,
    )


def _start(tmp_path: Path, suite: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "novabench", "run", str(suite), "--db", "db.duckdb", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.timeout(120)
def test_second_run_of_a_running_suite_exits_5_and_the_first_completes(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "mini.lock"
    with _slow_double() as double:
        suite = _suite(tmp_path, double.url)
        first = _start(tmp_path, suite)
        holder = wait_until_running(first, lock)
        assert set(holder) == {"pid", "host", "started_at", "run_id"}

        second = CliRunner().invoke(cli, ["run", str(suite), "--db", "db.duckdb"])
        assert second.exit_code == 5
        assert second.stdout == ""
        assert second.stderr == (
            f"Error: suite 'mini' is already running (pid {first.pid} since "
            f"{holder['started_at']}, lock locks/mini.lock): not starting\n"
        )
        as_json = CliRunner().invoke(cli, ["run", str(suite), "--db", "db.duckdb", "--log-json"])
        assert as_json.exit_code == 5
        (error,) = _events(as_json.stderr)
        assert error["event"] == "error" and error["exit_code"] == 5
        assert error["message"].startswith("suite 'mini' is already running")

        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        assert out == "" and err == ""

        again = CliRunner().invoke(cli, ["run", str(suite), "--db", "db.duckdb", "-q"])
        assert again.exit_code == 0, again.output
    runs = Store(tmp_path / "db.duckdb").list_runs()
    assert [r["status"] for r in runs] == ["complete", "complete"]
    assert holder["run_id"] in {r["run_id"] for r in runs}


@pytest.mark.timeout(120)
def test_a_killed_run_leaves_no_stale_lock(tmp_path: Path) -> None:
    with _slow_double() as double:
        suite = _suite(tmp_path, double.url, repetitions=40)
        first = _start(tmp_path, suite)
        holder = wait_until_running(first, tmp_path / "locks" / "mini.lock")
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL

        suite = _suite(tmp_path, double.url, repetitions=1)
        result = CliRunner().invoke(cli, ["run", str(suite), "--db", "db.duckdb", "-q"])
        assert result.exit_code == 0, result.output
    statuses = {r["run_id"]: r["status"] for r in Store(tmp_path / "db.duckdb").list_runs()}
    assert statuses.pop(holder["run_id"]) == "aborted"
    assert list(statuses.values()) == ["complete"]


@pytest.mark.timeout(120)
def test_different_suites_run_at_once(tmp_path: Path) -> None:
    with _slow_double() as double:
        first = _start(tmp_path, _suite(tmp_path, double.url))
        wait_until_running(first, tmp_path / "locks" / "mini.lock")
        other = _suite(tmp_path, double.url, name="other", repetitions=1)
        result = CliRunner().invoke(cli, ["run", str(other), "--db", "db.duckdb", "-q"])
        assert result.exit_code == 0, result.output
        assert first.poll() is None  # the first was running all along
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
    assert (tmp_path / "locks" / "other.lock").is_file()


@pytest.mark.parametrize(
    "name",
    ["../../x", "/etc/passwd", "..", ".", "", "a/b", "a\x00b", "évaluation ✓", "x" * 300],
)
def test_lock_file_names_stay_inside_the_locks_folder(tmp_path: Path, name: str) -> None:
    file_name = lock_file_name(name)
    assert "/" not in file_name and "\x00" not in file_name
    assert not file_name.startswith(".") and len(file_name) < 120
    lock = SuiteLock(tmp_path / "locks", name)
    assert lock.path.parent == tmp_path / "locks"
    with lock:
        assert lock.path.is_file()


def test_sanitised_names_do_not_collide() -> None:
    assert lock_file_name("mini") == "mini.lock"
    assert lock_file_name("a/b") != lock_file_name("a_b")
    assert lock_file_name("../../x") != lock_file_name("x")


def test_the_lock_is_released_on_an_error_exit(isolated: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    suite = write_suite(isolated / "s.yaml", url)
    assert CliRunner().invoke(cli, ["run", str(suite)]).exit_code == 3
    with SuiteLock(isolated / "reports" / "locks", "mini"):  # free again
        pass
