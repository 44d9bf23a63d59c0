"""m007: a database of an earlier novabench gets its per-run summaries in the migration (SQL), and
its changes and load levels the first time the history needs them; both equal what analysis
computes from the raw rows, and a rebuild gives the same tables."""

from __future__ import annotations

from pathlib import Path

import duckdb

from novabench.analysis.compare import history_changes, stored_changes
from novabench.analysis.history import bring_up_to_date, rebuild
from novabench.analysis.sweeps import load_sweeps
from novabench.records import LOAD_MODE
from novabench.storage.schema import SCHEMA_VERSION
from novabench.storage.store import Store
from tests.fixtures import make_schema1_db, make_schema5_db
from tests.storage.summary_checks import assert_summaries_match_analysis

MADE = ("run_summaries", "run_changes", "level_summaries")


def _state(path: Path) -> list[tuple[str, str, bool, bool]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT s.run_id, s.run_status, s.changes_at IS NOT NULL, s.levels_at IS NOT NULL "
            "FROM summary_state s ORDER BY run_id"
        ).fetchall()
    return [(str(a), str(b), bool(c), bool(d)) for a, b, c, d in rows]


def _tables(store: Store) -> dict[str, list[tuple[object, ...]]]:
    with store.connect() as con:
        return {
            name: sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr) for name in MADE
        }


def test_a_schema_5_database_is_summarized_by_the_migration(tmp_path: Path) -> None:
    db = make_schema5_db.unpack(tmp_path / "novabench.duckdb")
    store = Store(db)
    assert store.schema_version() == SCHEMA_VERSION
    runs = store.list_runs()
    assert len(runs) == 5
    # the migration made the summaries, in SQL; changes and levels wait for analysis
    assert _state(db) == sorted((run.run_id, run.status, False, False) for run in runs)
    assert sum(assert_summaries_match_analysis(store, run.run_id) for run in runs) > 10
    assert {(r.run_id, r.requests, r.errors) for r in store.run_counts()} == {
        (r.run_id, r.requests, r.errors) for r in runs
    }
    made = bring_up_to_date(store)
    assert (made.summaries, made.changes, made.levels) == (0, 5, 5)
    assert all(changes and levels for *_, changes, levels in _state(db))
    assert stored_changes(store) == history_changes(store)
    swept = [run.run_id for run in runs if LOAD_MODE in run.modes]
    assert len(swept) == 1
    assert store.level_summaries() == {
        swept[0]: [lv for levels in load_sweeps(store, swept[0]).values() for lv in levels]
    }
    before = _tables(store)
    assert rebuild(store).summaries == 5
    assert _tables(store) == before
    assert bring_up_to_date(store) == type(made)(0, 0, 0)  # nothing left to make


def test_a_schema_1_database_is_summarized_by_the_migration(tmp_path: Path) -> None:
    db = make_schema1_db.unpack(tmp_path / "novabench.duckdb")
    store = Store(db)
    assert store.schema_version() == SCHEMA_VERSION
    assert _state(db) == [(make_schema1_db.RUN_ID, "complete", False, False)]
    assert assert_summaries_match_analysis(store, make_schema1_db.RUN_ID) >= 4
    [counts] = store.run_counts()
    assert (counts.requests, counts.errors) == (8, 1)  # as list_runs counts them


def test_the_history_page_reads_no_request_once_the_runs_are_summarized(tmp_path: Path) -> None:
    """The raw rows could go (prune --keep-summaries): the history page stays the same."""
    from novabench.report import render_history

    db = make_schema5_db.unpack(tmp_path / "novabench.duckdb")
    store = Store(db)
    first = render_history(store, tmp_path / "a").read_text(encoding="utf-8")
    with store.connect() as con:
        con.execute("DELETE FROM results")
        con.execute("DELETE FROM samples")
    again = render_history(store, tmp_path / "b").read_text(encoding="utf-8")
    assert make_schema5_db.normalise(again) == make_schema5_db.normalise(first)
