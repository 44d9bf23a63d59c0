"""Filesystem and database failures on the command line: one `Error:` line naming the path and
what to do, the right exit code, never a traceback, and nothing already stored is lost."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from novabench import Store, load_suite, run_suite
from novabench.cli import cli
from novabench.errors import OutputError
from novabench.storage.export import export_results
from tests.conftest import write_suite
from tests.filesystems import full_folder, read_only_folder, read_only_view, why_not_writable
from tests.ollama_double import OllamaDouble

EXIT_OUTPUT = 6


def one_error(result: Result, code: int) -> str:
    """The command's only `Error:` line, after checking its exit code and that nothing crashed."""
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def stored(ollama: OllamaDouble, tmp_path: Path) -> tuple[Path, str]:
    """A database holding one complete run: (its path, the run id)."""
    db = tmp_path / "data" / "db.duckdb"
    suite = write_suite(tmp_path / "s.yaml", ollama.url, models="[llama3.2]", modes="[sequential]")
    return db, run_suite(load_suite(suite), Store(db)).run_id


def leftovers(folder: Path) -> list[str]:
    """Temporary files a failed write left behind in `folder`, at any depth."""
    return [p.name for p in folder.rglob(".*") if p.name.endswith((".tmp", ".partial"))]


# ---- run -------------------------------------------------------------------------------------


def test_new_database_in_a_read_only_folder(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "s.yaml", ollama.url)
    with read_only_folder(tmp_path / "ro") as ro:
        result = CliRunner().invoke(cli, ["run", str(suite), "--db", "ro/x.duckdb"])
        reason = why_not_writable(ro)
    assert one_error(result, EXIT_OUTPUT) == (
        f"Error: cannot write the lock file ro/locks/mini.lock ({reason}): 'novabench run' keeps "
        "its locks in <db folder>/locks/; make that folder writable, or give --db a path in a "
        "folder you can write to"
    )
    assert ollama.requests == []  # nothing was run


def test_a_database_folder_on_a_full_disk(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "s.yaml", ollama.url)
    with full_folder(tmp_path / "full") as full:
        result = CliRunner().invoke(cli, ["run", str(suite), "--db", "full/db.duckdb"])
        assert sorted(p.name for p in full.iterdir()) == ["filler", "locks"]
    assert one_error(result, EXIT_OUTPUT) == (
        "Error: cannot write the lock file full/locks/mini.lock (No space left on device): "
        "'novabench run' keeps its locks in <db folder>/locks/; free some space there, or give "
        "--db a path on another disk"
    )
    assert ollama.requests == []  # nothing was run


@pytest.mark.parametrize(
    ("models", "run_code"), [("[llama3.2]", 0), ("[llama3.2, ghost]", 1)], ids=["ok", "failures"]
)
def test_run_keeps_the_results_when_the_report_cannot_be_written(
    ollama: OllamaDouble, tmp_path: Path, models: str, run_code: int
) -> None:
    suite = write_suite(tmp_path / "s.yaml", ollama.url, models=models, modes="[sequential]")
    with read_only_folder(tmp_path / "ro") as ro:
        result = CliRunner().invoke(cli, ["run", str(suite), "--db", "db.duckdb", "--out", "ro"])
        reason = why_not_writable(ro)
    store = Store(tmp_path / "db.duckdb")
    (listed,) = store.list_runs()
    run_id = listed["run_id"]
    # A report that cannot be written outranks failed requests (exit 1), whose lines still show.
    assert one_error(result, EXIT_OUTPUT) == (
        f"Error: cannot write the report ro/runs/{run_id}.html ({reason}): give --out a folder "
        f"novabench can write to; the results are kept (run {run_id} in db.duckdb): "
        f"'novabench report {run_id} --db db.duckdb --out DIR' writes the report"
    )
    assert ("failed: ghost p1" in result.stdout) == (run_code == 1)
    assert listed["status"] == "complete"
    rows = store.results(run_id)
    assert sum(r["model"] == "llama3.2" and r["error"] is None for r in rows) == 5  # 4 + warm-up
    assert all(r["error"] is not None for r in rows if r["model"] == "ghost")

    # The command the message gives writes the report.
    again = CliRunner().invoke(
        cli, ["report", run_id, "--db", "db.duckdb", "--out", str(tmp_path / "elsewhere")]
    )
    assert again.exit_code == 0, again.output
    assert (tmp_path / "elsewhere" / "runs" / f"{run_id}.html").is_file()


def test_run_report_failure_as_json(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "s.yaml", ollama.url, models="[llama3.2]", modes="[sequential]")
    with read_only_folder(tmp_path / "ro"):
        result = CliRunner().invoke(
            cli, ["run", str(suite), "--db", "db.duckdb", "--out", "ro", "--quiet", "--log-json"]
        )
    assert result.exit_code == EXIT_OUTPUT and "Traceback" not in result.output
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["event"] for e in events] == ["error", "run_finished"]
    assert events[0]["exit_code"] == EXIT_OUTPUT
    assert events[0]["message"].startswith("cannot write the report ro/runs/")
    assert events[1]["exit_code"] == EXIT_OUTPUT and events[1]["report"] is None
    assert events[1]["status"] == "complete" and events[1]["requests"] == 5


# ---- report, history, compare --html -----------------------------------------------------------


def test_report_into_dev_null(stored: tuple[Path, str]) -> None:
    db, run_id = stored
    result = CliRunner().invoke(cli, ["report", run_id, "--db", str(db), "--out", "/dev/null"])
    assert one_error(result, EXIT_OUTPUT) == (
        f"Error: cannot write the report /dev/null/runs/{run_id}.html (/dev/null is not a "
        "folder): give --out a folder novabench can write to"
    )
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_report_into_a_read_only_folder(stored: tuple[Path, str], tmp_path: Path) -> None:
    db, run_id = stored
    with read_only_folder(tmp_path / "ro") as ro:
        result = CliRunner().invoke(cli, ["report", "--latest", "--db", str(db), "--out", "ro"])
        reason = why_not_writable(ro)
    assert one_error(result, EXIT_OUTPUT) == (
        f"Error: cannot write the report ro/runs/{run_id}.html ({reason}): give --out a folder "
        "novabench can write to"
    )


def test_history_on_a_full_disk(
    stored: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, run_id = stored
    with full_folder(tmp_path / "full", monkeypatch) as full:
        result = CliRunner().invoke(cli, ["history", "--db", str(db), "--out", str(full)])
        left = leftovers(full)
    assert one_error(result, EXIT_OUTPUT) == (
        f"Error: cannot write the report {full}/runs/{run_id}.html (No space left on device): "
        "free some space there, or give --out a folder on another disk"
    )
    assert left == []  # no half-written page
    assert [r["run_id"] for r in Store(db).list_runs()] == [run_id]


def test_compare_html_into_a_read_only_folder(stored: tuple[Path, str], tmp_path: Path) -> None:
    db, run_id = stored
    with read_only_folder(tmp_path / "ro") as ro:
        result = CliRunner().invoke(
            cli, ["compare", run_id, run_id, "--db", str(db), "--html", "--out", "ro"]
        )
        reason = why_not_writable(ro)
    assert one_error(result, EXIT_OUTPUT) == (
        f"Error: cannot write the report ro/compare/{run_id}__{run_id}.html ({reason}): give "
        "--out a folder novabench can write to"
    )
    assert "not significant" in result.stdout  # the comparison itself was printed first


# ---- export ------------------------------------------------------------------------------------


def test_export_into_a_read_only_folder(stored: tuple[Path, str], tmp_path: Path) -> None:
    db, _ = stored
    with read_only_folder(tmp_path / "ro") as ro:
        result = CliRunner().invoke(
            cli, ["export", "--db", str(db), "--format", "csv", "--out", "ro/x.csv"]
        )
        reason = why_not_writable(ro)
    assert one_error(result, EXIT_OUTPUT) == (
        f"Error: cannot write the export ro/x.csv ({reason}): give --out a path in a folder "
        "novabench can write to, on a disk with free space"
    )


def _special(kind: str, path: Path, tmp_path: Path) -> str:
    """Make a `kind` of non-regular file at `path`; the words the refusal uses for it."""
    if kind == "symlink":
        (tmp_path / "real.csv").write_text("keep me\n")
        path.symlink_to(tmp_path / "real.csv")
        return "a symbolic link: an export replaces its target with a new file; give the path it "
    if kind == "fifo":
        os.mkfifo(path)
        return "a FIFO: an export replaces its target with a new file; give the path of a regular"
    # /dev/full's own numbers, in tmp_path: a test must not risk the real node (as root, exports
    # once replaced it with a file).
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 7))
    return "a device: an export replaces its target with a new file; give the path of a regular"


@pytest.mark.parametrize("kind", ["symlink", "fifo", "device"])
def test_export_refuses_a_target_that_is_not_a_regular_file(
    stored: tuple[Path, str], tmp_path: Path, kind: str
) -> None:
    if kind == "device" and os.geteuid() != 0:
        pytest.skip("only root can make a device node")
    db, _ = stored
    target = tmp_path / "target.csv"
    words = _special(kind, target, tmp_path)
    before = target.lstat()
    result = CliRunner().invoke(
        cli, ["export", "--db", str(db), "--format", "csv", "--out", str(target)]
    )
    assert one_error(result, EXIT_OUTPUT).startswith(f"Error: {target} is {words}")
    after = target.lstat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)  # left as it was
    if kind == "symlink":
        assert (tmp_path / "real.csv").read_text() == "keep me\n"
    assert leftovers(tmp_path) == []


def test_export_refuses_a_folder(stored: tuple[Path, str], tmp_path: Path) -> None:
    db, _ = stored
    (tmp_path / "out").mkdir()
    with pytest.raises(OutputError) as refused:  # the command line refuses it before (click)
        export_results(Store(db), tmp_path / "out", "json")
    assert str(refused.value) == (
        f"{tmp_path / 'out'} is a folder: an export replaces its target with a new file; give a "
        f"file inside it, e.g. {tmp_path / 'out' / 'results.json'}"
    )
    assert os.listdir(tmp_path / "out") == []


def test_export_writes_through_a_temporary_file_and_replaces_a_regular_one(
    stored: tuple[Path, str], tmp_path: Path
) -> None:
    db, run_id = stored
    target = tmp_path / "out" / "all.csv"
    target.parent.mkdir()
    target.write_text("an older export\n")
    result = CliRunner().invoke(
        cli, ["export", "--db", str(db), "--format", "csv", "--out", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"5 rows written to {target}\n"  # 4 + a warm-up
    assert target.read_text().startswith("format_version,run_id,")
    assert os.listdir(target.parent) == ["all.csv"]  # the temporary file was renamed, not left
    assert stat.S_IMODE(target.stat().st_mode) & 0o044 == 0o044  # readable like any new file


# ---- the database ------------------------------------------------------------------------------


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "notes.duckdb").write_text("not a database\n")
    result = CliRunner().invoke(cli, ["runs", "--db", "notes.duckdb"])
    line = one_error(result, 1)
    assert line.startswith("Error: notes.duckdb: cannot open the database: ")
    assert line.endswith(
        ": it is not a novabench database: give --db the right file, or a new path"
    )


def test_a_database_on_a_read_only_filesystem(stored: tuple[Path, str], tmp_path: Path) -> None:
    db, _ = stored
    with read_only_view(db.parent, tmp_path / "view") as view:
        result = CliRunner().invoke(cli, ["runs", "--db", str(view / "db.duckdb")])
    line = one_error(result, 1)
    assert line.startswith(f"Error: {view / 'db.duckdb'}: cannot open the database: ")
    assert line.endswith(
        ": novabench writes to the database and to a .wal file beside it: make both writable, "
        "or give --db a copy in a folder you can write to"
    )


def test_a_duckdb_file_of_another_program(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "other.duckdb")) as con:
        con.execute("CREATE TABLE runs (name VARCHAR)")
    result = CliRunner().invoke(cli, ["runs", "--db", "other.duckdb"])
    line = one_error(result, 1)
    assert line == (
        "Error: other.duckdb is a DuckDB database but not a novabench history (it has the tables "
        "runs and no schema_migrations): novabench leaves it as it is; give another --db"
    )


# ---- the terminal ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["runs"], ["validate", "s.yaml"]])
def test_output_to_a_full_disk(stored: tuple[Path, str], command: list[str]) -> None:
    db, _ = stored
    args = [*command, "--db", str(db)] if command[0] == "runs" else command
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "novabench", *args], stdout=full, stderr=subprocess.PIPE
        )
    stderr = done.stderr.decode()
    assert done.returncode == EXIT_OUTPUT, stderr
    assert stderr == (
        "Error: cannot write the output (No space left on device): check where it goes (a file "
        "on a full disk, a pipe or terminal that closed)\n"
    )
