"""The command line: exit codes, the exact Error: lines, and what each command writes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from novabench.cli import cli
from tests.conftest import SUITES, free_port, write_suite
from tests.ollama_double import OllamaDouble

COMMANDS = [
    "run", "compare", "validate", "report", "history", "runs", "models", "export", "import", "prune"
]  # fmt: skip


def test_run_writes_database_and_three_reports(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url)
    result = CliRunner().invoke(cli, ["run", str(suite)])
    assert result.exit_code == 0, result.output
    db = isolated / "reports" / "novabench.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        ((run_id, status),) = con.execute("SELECT run_id, status FROM runs").fetchall()
        (count,) = con.execute("SELECT count(*) FROM results").fetchone()
    assert status == "complete" and count == 20
    assert (isolated / "reports" / "runs" / f"{run_id}.html").is_file()
    assert (isolated / "reports" / "index.html").is_file()
    assert (isolated / "reports" / "history.html").is_file()
    assert f"report: reports/runs/{run_id}.html" in result.stdout
    assert "speedup" in result.stdout
    # no terminal: plain log lines, one per finished request
    assert result.stderr.count("parallel llama3.2") == 5


def test_run_with_db_and_out_options(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url, modes="[sequential]")
    result = CliRunner().invoke(
        cli, ["run", str(suite), "--db", "data/h.duckdb", "--out", "site", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert (isolated / "data" / "h.duckdb").is_file()
    assert (isolated / "site" / "index.html").is_file()
    assert not (isolated / "reports").exists()
    assert result.stdout == "" and result.stderr == ""  # --quiet: a silent success


def test_run_exits_1_when_some_requests_fail(ollama: OllamaDouble, isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url, models="[llama3.2, ghost]")
    result = CliRunner().invoke(cli, ["run", str(suite), "--quiet"])
    assert result.exit_code == 1
    assert result.stdout == ""  # --quiet: only the failed requests, on stderr
    assert f"failed: ghost p1: model 'ghost' not found on {ollama.url}" in result.stderr


def test_run_exits_3_with_one_line_when_host_is_down(isolated: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    suite = write_suite(isolated / "s.yaml", url)
    result = CliRunner().invoke(cli, ["run", str(suite)])
    assert result.exit_code == 3
    assert result.stderr == (
        f"Error: cannot reach Ollama at {url} (connection refused): "
        "start it with 'ollama serve' or set OLLAMA_HOST\n"
    )
    # only the suite's (released) lock file: no database, no report
    assert [p.name for p in (isolated / "reports").rglob("*")] == ["locks", "mini.lock"]


def test_run_exits_2_on_a_bad_suite(isolated: Path) -> None:
    suite = write_suite(isolated / "s.yaml", "http://127.0.0.1:1", repetitions=0)
    result = CliRunner().invoke(cli, ["run", str(suite)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {suite}:")
    assert "repetitions" in result.stderr
    assert "Traceback" not in result.output


def test_validate_accepts_the_shipped_suite() -> None:
    result = CliRunner().invoke(cli, ["validate", str(SUITES / "one_sentence.yaml")])
    assert result.exit_code == 0, result.output
    assert "ok (3 models, 3 prompts, modes parallel, sequential, 3 repetitions)" in result.stdout


def test_validate_reports_each_problem_on_one_line(isolated: Path) -> None:
    bad = isolated / "bad.yaml"
    bad.write_text("name: x\nmodels: [a]\nprompts: [hi]\nrepetitions: 0\nmodes: [paralel]\n")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"Error: {bad}:") for line in lines)


def test_validate_missing_file(isolated: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "nope.yaml"])
    assert result.exit_code == 2
    assert result.stderr == "Error: nope.yaml: no such file\n"


def test_report_latest_history_and_runs_read_the_database_alone(
    ollama: OllamaDouble, isolated: Path
) -> None:
    suite = write_suite(isolated / "s.yaml", ollama.url, modes="[sequential]")
    assert CliRunner().invoke(cli, ["run", str(suite), "-q", "--no-report"]).exit_code == 0
    assert not (isolated / "reports" / "index.html").exists()
    ollama.stop()  # the reports must not need the server

    result = CliRunner().invoke(cli, ["report", "--latest"])
    assert result.exit_code == 0, result.output
    run_id = result.stdout.strip().rsplit("/", 1)[-1].removesuffix(".html")
    assert (isolated / "reports" / "runs" / f"{run_id}.html").is_file()
    assert CliRunner().invoke(cli, ["report", run_id]).exit_code == 0

    (isolated / "reports" / "runs" / f"{run_id}.html").unlink()
    result = CliRunner().invoke(cli, ["history"])
    assert result.exit_code == 0
    assert (isolated / "reports" / "history.html").is_file()
    assert (isolated / "reports" / "runs" / f"{run_id}.html").is_file()  # missing page rewritten

    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code == 0
    assert run_id in result.stdout and "complete" in result.stdout


def test_report_unknown_run_and_missing_database(ollama: OllamaDouble, isolated: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--latest"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: reports/novabench.duckdb: no such database: 'novabench run SUITE' creates it\n"
    )
    suite = write_suite(isolated / "s.yaml", ollama.url, modes="[sequential]", repetitions=1)
    CliRunner().invoke(cli, ["run", str(suite), "-q", "--no-report"])
    result = CliRunner().invoke(cli, ["report", "20990101T000000Z-dead"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no run '20990101T000000Z-dead' in reports/novabench.duckdb: "
        "'novabench runs' lists them\n"
    )


def test_models_lists_what_the_host_has(ollama: OllamaDouble) -> None:
    result = CliRunner().invoke(cli, ["models", "--host", ollama.url])
    assert result.exit_code == 0, result.output
    for name in ("llama3.2:latest", "nemotron-mini:latest", "wizardlm2:latest"):
        assert name in result.stdout


def test_models_unreachable_host_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["models", "--host", url])
    assert result.exit_code == 3
    assert result.stderr.startswith(f"Error: cannot reach Ollama at {url} (connection refused)")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert len(result.stdout.split("\n\n")[1].strip()) > 20  # a real sentence, not a stub


def test_every_command_is_covered_by_the_help_test() -> None:
    assert sorted(cli.commands) == sorted(COMMANDS)


def test_python_dash_m_works(isolated: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "novabench", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "novabench" in done.stdout
