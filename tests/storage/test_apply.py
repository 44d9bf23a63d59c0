"""Journal segments applied to the database (storage/apply.py): applying one twice stores nothing
twice, and looking for rows already stored reads only the segment's own runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from novabench.storage import apply
from novabench.storage.store import Store
from tests.history import make_run, result

RUN_A, RUN_B = "20261201T100000Z-aaaa", "20261201T110000Z-bbbb"


def _sample(run_id: str, offset_s: float) -> dict[str, Any]:
    return {
        "table": "samples",
        "run_id": run_id,
        "offset_s": offset_s,
        "taken_at": "2026-12-01 10:00:01",
        "cpu_percent": 12.5,
    }


def _result(run_id: str, seq: int) -> dict[str, Any]:
    row = {"table": "results", "run_id": run_id, "seq": seq, **asdict(result(ttft_s=0.1))}
    return json.loads(json.dumps(row, default=str))


def _segment(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _counts(store: Store) -> dict[str, list[tuple[str, int]]]:
    with store.connect() as con:
        return {
            table: con.execute(
                f"SELECT run_id, count(*) FROM {table} GROUP BY run_id ORDER BY run_id"
            ).fetchall()
            for table in ("results", "samples")
        }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "db.duckdb")
    make_run(store, RUN_A)
    make_run(store, RUN_B)
    return store


def test_a_segment_applied_twice_stores_each_row_once(store: Store, tmp_path: Path) -> None:
    records = [_result(RUN_A, 0), _sample(RUN_A, 1.0), _sample(RUN_A, 2.0), _result(RUN_A, 1)]
    segment = _segment(tmp_path / "00000001.ndjson", records)
    for _ in range(2):  # as after a crash between the database's commit and the journal's removal
        assert store.apply_journal([segment], apply.records_of([segment])) == []
    assert _counts(store) == {"results": [(RUN_A, 2)], "samples": [(RUN_A, 2)]}


def test_a_sample_at_the_same_offset_as_another_runs_is_stored(
    store: Store, tmp_path: Path
) -> None:
    """Rows already stored are looked for among the segment's runs only: another run's sample
    at the same offset is not one of them."""
    first = _segment(tmp_path / "a.ndjson", [_sample(RUN_B, 1.0)])
    store.apply_journal([first], apply.records_of([first]))
    second = _segment(tmp_path / "b.ndjson", [_sample(RUN_A, 1.0), _sample(RUN_B, 1.0)])
    store.apply_journal([second], apply.records_of([second]))
    assert _counts(store)["samples"] == [(RUN_A, 1), (RUN_B, 1)]


def test_without_knowing_the_runs_every_stored_row_is_looked_at(
    store: Store, tmp_path: Path
) -> None:
    segment = _segment(tmp_path / "s.ndjson", [_sample(RUN_A, 1.0), _result(RUN_A, 0)])
    for _ in range(2):
        with store.connect() as con:
            apply.apply_files(con, [segment], [])
    assert _counts(store) == {"results": [(RUN_A, 1)], "samples": [(RUN_A, 1)]}


def test_the_check_for_stored_samples_names_the_runs_as_constants() -> None:
    """Constants let DuckDB skip the row groups of other runs (zone maps); a record without a
    run id falls back to looking everywhere."""
    condition, params = apply._keep_new("samples", "s", {RUN_A})
    assert "x.run_id IN (?)" in condition and params == [RUN_A]
    condition, params = apply._keep_new("samples", "s", {RUN_A, None})
    assert "x.run_id IN" not in condition and params == []
    assert apply._keep_new("results", "s", {RUN_A}) == ("", [])  # its primary key does it
    with duckdb.connect() as con:  # the condition is valid SQL with its parameters
        con.execute("CREATE TABLE samples (run_id VARCHAR, offset_s DOUBLE)")
        condition, params = apply._keep_new("samples", "s", {RUN_A})
        found = con.execute(
            f"SELECT count(*) FROM (SELECT ? AS run_id, 1.0 AS offset_s) s WHERE true{condition}",
            [RUN_A, *params],
        ).fetchone()
        assert found == (1,)
