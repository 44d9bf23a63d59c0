"""Retention: which runs a rule removes (a plan, changing nothing), and removing them.

A run is removed with every row keyed by its run id, in every table that has a `run_id` column
(found in the schema, so a table added by a later migration is never left with orphans), in one
transaction. With `keep_summaries` only the raw rows go (RAW_TABLES: one row per request or per
resource sample, what grows with a run's length); the run's row, its per-run facts and its
summaries stay, and `runs.pruned_at` says when the rest went.

A run whose status is 'running' is never removed. The run's process holds its suite's lock for
as long as it lives, and the command that opens the database first marks 'aborted' the runs of
this machine whose process is gone (Store.mark_abandoned_runs); a run still 'running' after that
is either in progress here or was started on another machine, whose processes cannot be seen.
The suite lock itself is not probed: taking it even for a moment would make a run starting at
that instant exit 5.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from novabench.errors import PruneRuleError
from novabench.records import utcnow
from novabench.storage.database import Database

RAW_TABLES = ("results", "samples")


@dataclass(frozen=True)
class PruneRule:
    """What to remove: runs older than `older_than` AND beyond the `keep_last` newest of their
    suite (a rule left None says yes), of one suite or all. At least one rule is needed."""

    older_than: timedelta | None = None
    keep_last: int | None = None
    suite: str | None = None
    keep_summaries: bool = False

    def __post_init__(self) -> None:
        if self.older_than is None and self.keep_last is None:
            raise PruneRuleError(
                "give --older-than AGE, --keep-last N or both: prune removes nothing without a "
                "rule (older_than, keep_last)"
            )
        if self.keep_last is not None and self.keep_last < 0:
            raise PruneRuleError(f"keep_last={self.keep_last}: must be 0 or more")


@dataclass(frozen=True)
class PruneCandidate:
    """A run as the plan lists it: `requests` counts its rows in `results` (warm-ups included)."""

    run_id: str
    suite_name: str
    started_at: datetime  # UTC
    status: str
    requests: int


@dataclass(frozen=True)
class PrunePlan:
    """What a rule would remove now (oldest first), and the runs in progress it leaves alone."""

    rule: PruneRule
    now: datetime  # UTC: ages are counted from here
    runs: tuple[PruneCandidate, ...]
    in_progress: tuple[PruneCandidate, ...]  # 'running' runs the rule would otherwise remove
    runs_considered: int  # runs of the suite (or all), in progress ones included

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs)


@dataclass(frozen=True)
class DatabaseSize:
    """A database file's size on disk and the part of it that holds data."""

    file_bytes: int  # the file and its write-ahead log
    used_bytes: int  # blocks in use; freed blocks are reused by later writes


@dataclass(frozen=True)
class PruneOutcome:
    """What pruning did: the runs removed (or reduced to their summaries), rows per table."""

    run_ids: tuple[str, ...]
    rows_deleted: dict[str, int]
    keep_summaries: bool
    before: DatabaseSize
    after: DatabaseSize


def plan_prune(store: Database, rule: PruneRule, now: datetime | None = None) -> PrunePlan:
    """The runs `rule` removes, newest kept first per suite; reads only, changes nothing."""
    now = utcnow() if now is None else now
    with store.connect() as con:
        rows = con.execute(
            """
            SELECT r.run_id, r.suite_name, r.started_at, r.status, r.pruned_at IS NOT NULL,
                   coalesce(x.requests, 0)
            FROM runs r
            LEFT JOIN (SELECT run_id, count(*) AS requests FROM results GROUP BY run_id) x
                USING (run_id)
            WHERE ? IS NULL OR r.suite_name = ?
            ORDER BY r.started_at DESC, r.run_id DESC
            """,
            [rule.suite, rule.suite],
        ).fetchall()
    chosen: list[PruneCandidate] = []
    in_progress: list[PruneCandidate] = []
    newer_in_suite: dict[str, int] = {}
    for run_id, suite_name, started_at, status, pruned, requests in rows:
        candidate = PruneCandidate(run_id, suite_name, started_at, status, int(requests))
        old_enough = rule.older_than is None or started_at < now - rule.older_than
        if status == "running":  # kept, and not counted among the newest finished runs
            if old_enough:
                in_progress.append(candidate)
            continue
        rank = newer_in_suite.get(suite_name, 0)
        newer_in_suite[suite_name] = rank + 1
        beyond_last = rule.keep_last is None or rank >= rule.keep_last
        if old_enough and beyond_last and not (rule.keep_summaries and pruned):
            chosen.append(candidate)
    return PrunePlan(
        rule=rule,
        now=now,
        runs=tuple(reversed(chosen)),
        in_progress=tuple(reversed(in_progress)),
        runs_considered=len(rows),
    )


def apply_prune(store: Database, plan: PrunePlan) -> PruneOutcome:
    """Remove the plan's runs in one transaction, then checkpoint so their blocks are freed.

    A run that is 'running' by now (it cannot be: a finished run never runs again) or that is
    gone already is skipped, so applying a plan twice removes nothing twice.
    """
    keep_summaries = plan.rule.keep_summaries
    before = database_size(store)
    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            run_ids = _still_prunable(con, [run.run_id for run in plan.runs], keep_summaries)
            rows_deleted = _delete_rows(con, run_ids, keep_summaries)
            if keep_summaries:
                con.execute(
                    "UPDATE runs SET pruned_at = ? WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                    [utcnow(), run_ids],
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        # Frees the emptied row groups' blocks for the next writes (the file may not shrink).
        con.execute("CHECKPOINT")
    return PruneOutcome(
        run_ids=tuple(run_ids),
        rows_deleted=rows_deleted,
        keep_summaries=keep_summaries,
        before=before,
        after=database_size(store),
    )


def tables_keyed_by_run(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table with a run_id column, `runs` last (its row goes after everything it keys)."""
    names = [
        row[0]
        for row in con.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "AND column_name = 'run_id' ORDER BY table_name"
        ).fetchall()
    ]
    return sorted(names, key=lambda name: name == "runs")


def database_size(store: Database) -> DatabaseSize:
    """The file's bytes (with its write-ahead log) and the bytes its used blocks hold."""
    with store.connect() as con:
        row = con.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size() "
            "WHERE database_name = current_database()"
        ).fetchone()
    used_bytes = int(row[0]) * int(row[1]) if row else 0
    return DatabaseSize(file_bytes=_file_bytes(store.path), used_bytes=used_bytes)


def _still_prunable(
    con: duckdb.DuckDBPyConnection, run_ids: Sequence[str], keep_summaries: bool
) -> list[str]:
    """Of `run_ids`, those that can still be removed, read inside the deleting transaction."""
    rows = con.execute(
        "SELECT run_id FROM runs WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
        "AND status <> 'running'"
        + (" AND pruned_at IS NULL" if keep_summaries else "")
        + " ORDER BY started_at, run_id",
        [list(run_ids)],
    ).fetchall()
    return [row[0] for row in rows]


def _delete_rows(
    con: duckdb.DuckDBPyConnection, run_ids: Sequence[str], keep_summaries: bool
) -> dict[str, int]:
    deleted: dict[str, int] = {}
    for table in tables_keyed_by_run(con):
        if keep_summaries and table not in RAW_TABLES:
            continue
        groups = _row_groups(con, table)
        row = con.execute(
            f'DELETE FROM "{table}" WHERE run_id IN (SELECT unnest(?::VARCHAR[]))',
            [list(run_ids)],
        ).fetchone()
        deleted[table] = int(row[0]) if row else 0
        if deleted[table]:
            _compact(con, table, groups)
    return deleted


def _row_groups(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[int, int]]:
    """The rowid range [first, end) of each of the table's row groups, deleted rows included."""
    counts = con.execute(
        "SELECT row_group_id, sum(count) FROM pragma_storage_info(?) "
        "WHERE column_path = '[0]' GROUP BY row_group_id ORDER BY row_group_id",
        [table],
    ).fetchall()
    ranges, first = [], 0
    for _, rows in counts:
        ranges.append((first, first + int(rows)))
        first += int(rows)
    return ranges


def _compact(con: duckdb.DuckDBPyConnection, table: str, groups: list[tuple[int, int]]) -> int:
    """Move the rows left in row groups now at most half full to the table's end; return how many.

    DuckDB frees a block only once no row of its row group is left, and runs are stored in the
    order they ran, so removing old runs leaves a row group part full where the kept runs begin
    (and more of them when the runs removed alternate with kept ones, as --keep-last per suite
    does). Emptied, those groups are freed at the checkpoint. Moving only groups at most half
    full bounds the rows moved by the rows deleted.
    """
    if not groups:
        return 0
    survivors = con.execute(
        f"""
        WITH g AS (SELECT unnest(?::BIGINT[]) AS lo, unnest(?::BIGINT[]) AS hi)
        SELECT g.lo, g.hi, count(t.rowid) FROM g
        LEFT JOIN "{table}" t ON t.rowid >= g.lo AND t.rowid < g.hi
        GROUP BY ALL
        """,
        [[lo for lo, _ in groups], [hi for _, hi in groups]],
    ).fetchall()
    sparse = [(lo, hi) for lo, hi, kept in survivors if kept > 0 and kept * 2 <= hi - lo]
    if not sparse:
        return 0
    where = " OR ".join("(rowid >= ? AND rowid < ?)" for _ in sparse)
    bounds = [bound for pair in sparse for bound in pair]
    con.execute(
        f'CREATE TEMPORARY TABLE novabench_moved AS SELECT * FROM "{table}" WHERE {where}', bounds
    )
    con.execute(f'DELETE FROM "{table}" WHERE {where}', bounds)
    row = con.execute(f'INSERT INTO "{table}" SELECT * FROM novabench_moved').fetchone()
    con.execute("DROP TABLE novabench_moved")
    return int(row[0]) if row else 0


def _file_bytes(path: Path) -> int:
    total = 0
    for part in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(part).st_size
    return total


def unpruned_run_ids(store: Database) -> list[str]:
    """The runs that still have their raw rows, oldest first."""
    with store.connect() as con:
        rows = con.execute(
            "SELECT run_id FROM runs WHERE pruned_at IS NULL ORDER BY started_at, run_id"
        ).fetchall()
    return [row[0] for row in rows]
