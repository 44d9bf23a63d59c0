"""`novabench prune`: the dry run changes nothing, --yes leaves no orphan row or page, a run in
progress is never pruned, and bad usage is one line."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from novabench.cli import cli
from novabench.errors import SuiteRunningError
from novabench.records import utcnow
from novabench.run.lock import SuiteLock
from novabench.storage.store import Store
from tests.conftest import wait_until_running, write_suite
from tests.ollama_double import FakeModel, OllamaDouble
from tests.pruning import RUN_TABLES, file_digest, folder_state, full_run, orphans, row_counts

OLD = ("mini-100", "other-100", "mini-050")  # older than 30 days
NEW = ("mini-010", "mini-002", "mini-001", "other-001")


def _history(tmp_path: Path) -> Path:
    """The runs of tests/pruning (ages counted from now), their pages, history and index."""
    db = tmp_path / "db.duckdb"
    store = Store(db)
    for run_id in OLD + NEW:
        suite, days = run_id.split("-")
        full_run(store, run_id, int(days), suite=suite)
    _ok(_prune(["history"], db))  # the reports, as after the runs
    return db


def _prune(args: list[str], db: Path) -> Result:
    return CliRunner().invoke(cli, [*args, "--db", str(db)])


def _ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(autouse=True)
def _now_is_the_tests_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/pruning dates runs from a fixed NOW; the CLI counts ages from the real clock."""
    from tests import pruning

    monkeypatch.setattr(pruning, "NOW", utcnow())


@pytest.mark.parametrize(
    "args",
    [[], ["--suite", "mini"], ["--yes"], ["--keep-summaries", "--yes"]],
    ids=["nothing", "suite", "yes", "summaries"],
)
def test_without_a_rule_prune_refuses_in_one_line(tmp_path: Path, args: list[str]) -> None:
    db = _history(tmp_path)
    digest = file_digest(db)
    result = _prune(["prune", *args], db)
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: give --older-than AGE, --keep-last N or both: prune removes nothing without a "
        "rule (older_than, keep_last)\n"
    )
    assert file_digest(db) == digest


@pytest.mark.parametrize("age", ["90", "90m", "d", "-1d", "1.5d", "90 days", "123456d", ""])
def test_a_bad_age_is_one_line_naming_it(tmp_path: Path, age: str) -> None:
    result = CliRunner().invoke(cli, ["prune", "--older-than", age, "--db", "nowhere.duckdb"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '--older-than': {age!r} is not an age: give a whole number "
        "of hours, days or weeks: Nh, Nd or Nw (e.g. 36h, 90d, 2w)"
    )


def test_a_negative_count_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["prune", "--keep-last", "-1"])
    assert result.exit_code == 2
    assert "Invalid value for '--keep-last'" in result.stderr


def test_the_dry_run_lists_the_runs_and_changes_nothing(tmp_path: Path) -> None:
    db = _history(tmp_path)
    digest, counts, pages = file_digest(db), row_counts(Store(db)), folder_state(tmp_path)
    result = _ok(_prune(["prune", "--older-than", "30d"], db))
    listed = [line.split("│")[1].strip() for line in result.stdout.splitlines() if "│" in line]
    assert listed == ["mini-100", "other-100", "mini-050"]  # oldest first
    assert result.stdout.splitlines()[-1] == (
        "total: 3 of 7 runs, 12 requests: run again with --yes to remove them"
    )
    assert file_digest(db) == digest
    assert row_counts(Store(db)) == counts
    assert folder_state(tmp_path) == pages


def test_yes_removes_every_row_and_page_of_the_runs_and_unlinks_them(tmp_path: Path) -> None:
    db = _history(tmp_path)
    before = row_counts(Store(db))
    result = _ok(_prune(["prune", "--older-than", "30d", "--yes"], db))
    assert result.stdout.splitlines()[-2] == "total: 3 of 7 runs, 12 requests"
    assert result.stdout.splitlines()[-1].startswith(
        f"removed 3 runs and 3 run pages: {sum(before[t][r] for t in RUN_TABLES for r in OLD)} "
        f"rows; {db}: "
    )
    store = Store(db)
    after = row_counts(store)
    assert {run_id for per_run in after.values() for run_id in per_run} == set(NEW)
    assert orphans(store) == dict.fromkeys(RUN_TABLES, 0)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        f"{run_id}.html" for run_id in NEW
    )
    for page in ("history.html", "index.html"):
        text = (tmp_path / page).read_text()
        assert not any(run_id in text for run_id in OLD), page
        assert all(run_id in text for run_id in NEW if page == "index.html"), page
    again = _ok(_prune(["prune", "--older-than", "30d", "--yes"], db))
    assert again.stdout == "nothing to prune: no run matches --older-than 30d (4 runs considered)\n"


def test_keep_last_and_suite_combine_with_older_than(tmp_path: Path) -> None:
    db = _history(tmp_path)
    # mini: older than 5 days are 100, 50 and 10; beyond its newest 4 only 100; other untouched
    _ok(_prune(["prune", "--older-than", "5d", "--keep-last", "4", "--suite", "mini", "--yes"], db))
    assert {r.run_id for r in Store(db).list_runs()} == set(OLD + NEW) - {"mini-100"}


def test_a_page_that_is_a_link_loses_the_link_never_its_target(tmp_path: Path) -> None:
    db = _history(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    target = outside / "kept.html"
    target.write_text("not novabench's")
    page = tmp_path / "runs" / "mini-100.html"
    page.unlink()
    page.symlink_to(target)
    _ok(_prune(["prune", "--older-than", "30d", "--yes"], db))
    assert not page.is_symlink() and not page.exists()
    assert target.read_text() == "not novabench's"


def test_a_runs_folder_leading_outside_is_left_alone(tmp_path: Path) -> None:
    db = _history(tmp_path)
    outside = tmp_path.parent / f"{tmp_path.name}-pages"
    (tmp_path / "runs").rename(outside)
    (tmp_path / "runs").symlink_to(outside)
    before = folder_state(outside)
    result = _ok(_prune(["prune", "--older-than", "30d", "--yes"], db))
    assert f"note: {tmp_path / 'runs'} leads to {outside}, outside {tmp_path}" in result.stdout
    assert "removed 3 runs and 0 run pages" in result.stdout
    assert folder_state(outside) == before
    assert {r.run_id for r in Store(db).list_runs()} == set(NEW)


# ---- runs in progress ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_a_run_in_progress_is_never_pruned_and_completes(tmp_path: Path) -> None:
    db = _history(tmp_path)
    slow = FakeModel("slow", reply=" ".join(["word"] * 10), token_interval_s=0.05)
    with OllamaDouble(models=[slow]) as double:
        suite = write_suite(
            tmp_path / "mini.yaml",
            double.url,
            models="[slow]",
            prompts="[hi]",
            modes="[sequential]",
            repetitions=8,
            warmup=0,
            sample_interval_s=0,
        )
        running = subprocess.Popen(
            [sys.executable, "-m", "novabench", "run", str(suite), "--db", str(db), "--quiet"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run_id = str(wait_until_running(running, tmp_path / "locks" / "mini.lock")["run_id"])
        assert Store(db).get_run(run_id).status == "running"
        result = _ok(_prune(["prune", "--keep-last", "0", "--suite", "mini", "--yes"], db))
        assert result.stdout.splitlines()[0] == (
            f"kept: run {run_id} (mini) is still running; a run in progress is never pruned"
        )
        assert "removed 5 runs and 5 run pages" in result.stdout
        with pytest.raises(SuiteRunningError):  # the run still holds its suite's lock
            SuiteLock(tmp_path / "locks", "mini").acquire()
        out, err = running.communicate(timeout=120)
        assert running.returncode == 0, err
    store = Store(db)
    assert {r.run_id: r.status for r in store.list_runs()} == {
        run_id: "complete",
        "other-100": "complete",
        "other-001": "complete",
    }
    assert len(store.results(run_id)) == 8
    assert orphans(store) == dict.fromkeys(RUN_TABLES, 0)
    assert (tmp_path / "runs" / f"{run_id}.html").exists()


def test_a_running_run_whose_process_is_gone_is_marked_aborted_then_pruned(tmp_path: Path) -> None:
    db = _history(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = Store(db)
    here, elsewhere = socket.gethostname(), "another-machine"
    full_run(store, "mini-200-dead", 200, status="running", hostname=here, pid=dead.pid)
    full_run(store, "mini-200-elsewhere", 200, status="running", hostname=elsewhere, pid=1)
    result = _ok(_prune(["prune", "--older-than", "30d", "--yes"], db))
    assert result.stdout.splitlines()[0] == (
        "kept: run mini-200-elsewhere (mini) is still running; a run in progress is never pruned"
    )
    assert "removed 4 runs" in result.stdout
    assert {r.run_id for r in Store(db).list_runs()} == set(NEW) | {"mini-200-elsewhere"}


# ---- --keep-summaries ---------------------------------------------------------------------------


def test_keep_summaries_keeps_the_run_and_its_page_and_other_commands_say_so(
    tmp_path: Path,
) -> None:
    db = _history(tmp_path)
    pages = folder_state(tmp_path / "runs")
    history_lines = (tmp_path / "history.html").read_text().count("mini-100")
    result = _ok(_prune(["prune", "--older-than", "30d", "--keep-summaries", "--yes"], db))
    assert "total: the raw rows of 3 of 7 runs, 12 requests" in result.stdout
    assert "removed the raw rows of 3 runs (their summaries are kept): 15 rows" in result.stdout
    assert folder_state(tmp_path / "runs") == pages
    store = Store(db)
    assert orphans(store) == dict.fromkeys(RUN_TABLES, 0)
    assert all(store.get_run(run_id).pruned_at is not None for run_id in OLD)

    _ok(_prune(["history"], db))  # the history, from the summaries, still shows the runs
    assert (tmp_path / "history.html").read_text().count("mini-100") == history_lines > 0

    listed = _ok(_prune(["runs"], db)).stdout
    assert "complete, pruned" in next(line for line in listed.splitlines() if "mini-100" in line)
    assert "pruned" not in next(line for line in listed.splitlines() if "mini-001" in line)

    report = _prune(["report", "mini-100"], db)
    assert report.exit_code == 1
    assert report.stderr.startswith(
        "Error: run mini-100: its raw rows (requests, resource samples) were pruned on "
    )
    assert report.stderr.endswith(
        " UTC (novabench prune --keep-summaries), so its report cannot be made again; its "
        "summaries stay in history.html\n"
    )
    # `history` into a new folder writes every page it can, and none for the pruned runs
    fresh = tmp_path / "fresh"
    _ok(CliRunner().invoke(cli, ["history", "--db", str(db), "--out", str(fresh)]))
    assert sorted(p.stem for p in (fresh / "runs").iterdir()) == sorted(NEW)
