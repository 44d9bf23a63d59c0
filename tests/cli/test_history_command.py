"""`novabench history --rebuild-summaries`: what the history reads is made again from the raw
rows, whatever happened to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from novabench.analysis.history import bring_up_to_date
from novabench.storage.store import Store
from tests.fixtures import make_schema5_db

MADE = ("run_summaries", "run_changes", "level_summaries")


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            name: sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr) for name in MADE
        }


def test_rebuild_summaries_makes_damaged_tables_again(tmp_path: Path) -> None:
    db = make_schema5_db.unpack(tmp_path / "novabench.duckdb")
    bring_up_to_date(Store(db))
    made = _tables(db)
    with duckdb.connect(str(db)) as con:  # what a bug or a hand edit could leave behind
        con.execute("UPDATE run_summaries SET ttft_ms_p50 = -1, n = 0")
        con.execute("DELETE FROM level_summaries")
    out = tmp_path / "out"
    command = ["history", "--db", str(db), "--out", str(out), "--rebuild-summaries"]
    done = subprocess.run(
        [sys.executable, "-m", "novabench", *command],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "summaries: 5 runs made again from their results" in done.stdout
    assert _tables(db) == made
    assert (out / "history.html").exists()
