"""The DuckDB store: schema and migrations, writes as results arrive, queries."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from novabench.errors import RunNotFoundError, StoreError
from novabench.storage.schema import MIGRATIONS, SCHEMA_VERSION
from novabench.storage.store import Store
from tests.history import make_run, result


def test_new_database_is_migrated_to_the_latest_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "sub" / "db.duckdb")
    assert store.schema_version() == SCHEMA_VERSION
    with duckdb.connect(str(store.path), read_only=True) as con:
        names = [
            r[0]
            for r in con.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()
        ]
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert names == [name for _, name, _ in MIGRATIONS]
    assert {"runs", "models", "prompts", "results", "phases", "schema_migrations"} <= tables


def test_migrations_run_once(tmp_path: Path) -> None:
    Store(tmp_path / "db.duckdb").schema_version()
    Store(tmp_path / "db.duckdb").schema_version()
    with duckdb.connect(str(tmp_path / "db.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchone() == (SCHEMA_VERSION,)


def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    Store(path).schema_version()
    with duckdb.connect(str(path)) as con:
        con.execute("INSERT INTO schema_migrations VALUES (999, 'm999_future', now())")
    with pytest.raises(StoreError, match="schema version 999 is newer than this novabench"):
        Store(path).schema_version()


def test_results_are_stored_with_their_chunk_times(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    run_id = make_run(store)
    store.add_results(
        run_id,
        [
            (
                0,
                result(
                    ttft_s=0.1,
                    e2e_s=0.5,
                    token_offsets_s=[0.1, 0.2, 0.3],
                    eval_count=3,
                    eval_duration_ns=200_000_000,
                    response_text="a b c",
                    done_reason="stop",
                ),
            ),
            (1, result(repetition=1, error="HTTP 500: boom", http_status=500)),
        ],
    )
    rows = store.results(run_id)
    assert [r["seq"] for r in rows] == [0, 1]
    assert rows[0]["token_offsets_s"] == [0.1, 0.2, 0.3]
    assert rows[0]["eval_duration_ns"] == 200_000_000
    assert rows[1]["error"] == "HTTP 500: boom"
    listed = store.list_runs()
    assert listed[0]["requests"] == 2 and listed[0]["errors"] == 1


def test_run_lifecycle_and_lookups(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    make_run(store, "20261127T100000Z-aaaa")
    make_run(store, "20261127T110000Z-bbbb")
    assert store.latest_run_id() == "20261127T110000Z-bbbb"
    store.finish_run("20261127T100000Z-aaaa", "complete")
    run = store.get_run("20261127T100000Z-aaaa")
    assert run["status"] == "complete" and run["ended_at"] is not None
    assert run["system"] == {"os": "Linux"}  # JSON comes back as a dict
    assert store.models("20261127T100000Z-aaaa")[0]["options"] == {"seed": 1}
    assert store.prompts("20261127T100000Z-aaaa")[0]["text"] == "Hi."
    with pytest.raises(ValueError):
        store.finish_run("20261127T100000Z-aaaa", "weird")


def test_unknown_run_and_empty_database(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    with pytest.raises(RunNotFoundError, match="no runs in"):
        store.latest_run_id()
    with pytest.raises(RunNotFoundError, match="no run 'x'"):
        store.get_run("x")


def test_history_excludes_warmups_and_errors(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    run_id = make_run(store)
    store.add_results(
        run_id,
        [
            (0, result(is_warmup=True, ttft_s=9.0)),
            (1, result(ttft_s=0.1)),
            (2, result(error="x")),
        ],
    )
    history = store.history()
    assert [h["ttft_s"] for h in history] == [0.1]
    assert history[0]["digest"] == "d" * 64


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(blocker / "db.duckdb").schema_version()
