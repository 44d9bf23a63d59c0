"""Histories for the prune tests: runs with a row in every table keyed by run id, and what a
database holds, counted per table and hashed, to show what pruning changed."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

from novabench.storage.prune import tables_keyed_by_run
from novabench.storage.store import Store
from tests.history import HOST, make_run, result

# Every table keyed by run id as of m008; the tests check the schema has no other.
RUN_TABLES = {
    "runs",
    "models",
    "prompts",
    "results",
    "phases",
    "samples",
    "repetition_stops",
    "load_levels",
    "run_summaries",  # m007: what the history keeps of a run
    "run_changes",
    "level_summaries",
    "summary_state",
}
NOW = datetime(2026, 12, 1, 12, 0, 0)


def full_run(
    store: Store,
    run_id: str,
    days_ago: float,
    suite: str = "mini",
    status: str = "complete",
    requests: int = 4,
    text: str = "ok",
    **run: object,
) -> str:
    """A run of `suite` started `days_ago` before NOW, with rows in every table keyed by run id;
    `run` sets columns of its row (hostname, pid)."""
    started = NOW - timedelta(days=days_ago)
    make_run(store, run_id, started_at=started, suite_name=suite, **run)
    store.add_results(
        run_id,
        [
            (seq, result(repetition=seq, ttft_s=0.1, e2e_s=0.5, response_text=text))
            for seq in range(requests)
        ],
        samples=[{"offset_s": 0.5, "taken_at": started, "cpu_percent": 12.0}],
    )
    store.add_phase(run_id, "sequential", started, 1.0, requests)
    store.add_repetition_stops(
        run_id,
        [
            {
                "mode": "sequential",
                "model": "m",
                "host": HOST,
                "prompt_id": "p1",
                "repetitions": requests,
                "reason": "fixed",
            }
        ],
    )
    store.add_load_level(
        run_id,
        {
            "model": "m",
            "host": HOST,
            "level_index": 0,
            "kind": "concurrency",
            "level": 1.0,
            "started_at": started,
            "started_offset_s": 0.0,
            "wall_s": 1.0,
            "requests": requests,
            "delayed_arrivals": 0,
        },
    )
    if status != "running":
        store.finish_run(run_id, status)
    _aggregates(store, run_id, requests)
    return run_id


def _aggregates(store: Store, run_id: str, requests: int) -> None:
    """The run's summaries (made from its rows), and a change and a level summary of its own, as
    if analysis had found them, so that every aggregate table has a row of it."""
    store.summarize([run_id])
    with store.connect() as con:
        con.execute(
            "INSERT INTO run_changes (run_id, position, mode, model, host, prompt_id, metric, "
            "baseline_run_ids, n_a, n_b, median_a, median_b, verdict, notes) VALUES "
            "(?, 0, 'sequential', 'm', ?, 'p1', 'ttft_ms', [], 4, 4, 100, 120, 'regression', [])",
            [run_id, HOST],
        )
        con.execute(
            "INSERT INTO level_summaries (run_id, model, host, level_index, kind, level, "
            "requests, ok, errors) VALUES (?, 'm', ?, 0, 'concurrency', 1, ?, ?, 0)",
            [run_id, HOST, requests, requests],
        )
        con.execute(
            "UPDATE summary_state SET changes_at = now(), levels_at = now() WHERE run_id = ?",
            [run_id],
        )


def row_counts(store: Store) -> dict[str, dict[str, int]]:
    """Rows per run id in every table keyed by run id."""
    counts: dict[str, dict[str, int]] = {}
    with store.connect() as con:
        for table in tables_keyed_by_run(con):
            rows = con.execute(f"SELECT run_id, count(*) FROM {table} GROUP BY run_id").fetchall()
            counts[table] = {run_id: int(n) for run_id, n in rows}
    return counts


def orphans(store: Store) -> dict[str, int]:
    """Rows in each table keyed by run id whose run has no row in `runs` (none expected)."""
    found: dict[str, int] = {}
    with store.connect() as con:
        for table in tables_keyed_by_run(con):
            row = con.execute(
                f"SELECT count(*) FROM {table} WHERE run_id NOT IN (SELECT run_id FROM runs)"
            ).fetchone()
            found[table] = int(row[0]) if row else 0
    return found


def file_digest(path: Path) -> str:
    """The file's bytes (and its write-ahead log's, if any), hashed."""
    digest = hashlib.sha256(path.read_bytes())
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        digest.update(wal.read_bytes())
    return digest.hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its bytes hashed."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def bulk_results(store: Store, per_run: int, run_prefix: str = "") -> None:
    """`per_run` more results for every run, written by DuckDB itself (fast), a run at a time and
    oldest first, as runs write them."""
    with store.connect() as con:
        order = "SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY started_at"
        run_ids = [row[0] for row in con.execute(order, [run_prefix]).fetchall()]
        for run_id in run_ids:
            con.execute(
                """
                INSERT INTO results (run_id, seq, mode, model, host, prompt_id, repetition,
                    is_warmup, started_at, start_offset_s, ttft_s, e2e_s, chunk_count,
                    response_bytes, token_offsets_s, response_text, thinking_text)
                SELECT r.run_id, 1000 + i, 'sequential', 'm', ?, 'p1', i, false, r.started_at,
                       i * 0.5, 0.1, 0.5, 20, 100, [0.1 * j for j in range(20)],
                       md5(r.run_id || i::VARCHAR) || ' an answer', ''
                FROM runs r, range(?) t(i) WHERE r.run_id = ?
                """,
                [HOST, per_run, run_id],
            )
