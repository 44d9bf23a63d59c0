"""`novabench history --out NEWDIR` writes every missing run page and shows its progress on
stderr: one line rewritten on a terminal, plain lines elsewhere; stdout lists the pages."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from novabench.cli import cli
from novabench.console import progress
from novabench.storage.store import Store
from tests.history import FAST, add_run

RUN_IDS = [f"20261127T1{i}0000Z-000{i}" for i in range(3)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "db.duckdb"
    store = Store(path)
    for minute, run_id in enumerate(RUN_IDS):
        add_run(store, run_id, minute * 60, FAST)
    return path


def _history(db: Path, out: Path, stderr: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "novabench", "history", "--db", str(db), "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=300,
    )


def test_plain_progress_when_stderr_is_not_a_terminal(db: Path, tmp_path: Path) -> None:
    done = _history(db, tmp_path / "new", subprocess.PIPE)
    assert done.returncode == 0, done.stderr
    reports = [line for line in done.stdout.splitlines() if line.startswith("report: ")]
    assert len(reports) == len(RUN_IDS)
    assert all((tmp_path / "new" / "runs" / f"{r}.html").is_file() for r in RUN_IDS)
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("run pages: 3 of 3 done in ")
    # nothing missing the second time: no progress at all
    again = _history(db, tmp_path / "new", subprocess.PIPE)
    assert "report: " not in again.stdout and "run pages" not in again.stderr


def test_a_plain_line_every_so_many_pages(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY", 2)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 3600.0)  # by count only, however slow
    result = CliRunner().invoke(cli, ["history", "--db", str(db), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("run pages: 2 of 3 (") and " s each, about " in lines[0]
    assert lines[1].startswith("run pages: 3 of 3 done in ")


def test_a_plain_line_when_pages_are_slow(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)  # every page is slow enough
    result = CliRunner().invoke(cli, ["history", "--db", str(db), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert [line.split(" (")[0] for line in lines[:2]] == [
        "run pages: 1 of 3",
        "run pages: 2 of 3",
    ]
    assert lines[2].startswith("run pages: 3 of 3 done in ") and len(lines) == 3


def test_one_line_rewritten_on_a_terminal(db: Path, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        done = _history(db, tmp_path / "tty", follower)
    finally:
        os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert done.returncode == 0
    text = shown.decode()
    for count in (1, 2, 3):
        assert f"\r\x1b[Krun pages: {count} of 3 (" in text
    # the live line cleared for the final one, the only line that ends
    assert text.rsplit("\r\x1b[K", 1)[1].startswith("run pages: 3 of 3 done in ")
    assert text.count("\n") == 1
