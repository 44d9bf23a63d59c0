"""The DuckDB history: schema, numbered migrations, writes as results arrive, queries.

A connection is opened for each operation and closed right after, so the file is held only while
it is being read or written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from novabench.errors import StoreError
from novabench.records import FindingRecord, LevelSummary, RequestResult, utcnow
from novabench.storage import apply as store_writes
from novabench.storage import journal, summaries
from novabench.storage.journal import Record
from novabench.storage.reads import MODEL_JSON, RESULT_JSON, RUN_JSON, Reads
from novabench.storage.schema import RUN_STATUSES

log = logging.getLogger(__name__)


class Store(Reads):
    """One DuckDB history file: its writes, the run journal, and (from Reads) its reads."""

    # ---- writes -------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        """Insert the run row (status 'running') with its models and prompts, in one transaction.

        A run without its facts (a caller that does not record them) gets them from its suite
        text here, once, as an older run got them when the database was migrated.
        """
        models = run.pop("models", [])
        prompts = run.pop("prompts", [])
        if run.get("facts") is None:
            from novabench.storage.facts import facts_from_suite_text

            run["facts"] = facts_from_suite_text(run.get("suite_text"), run.get("manifest"))
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            _insert(con, "runs", _jsonify(run, RUN_JSON))
            for model in models:
                _insert(con, "models", {"run_id": run["run_id"], **_jsonify(model, MODEL_JSON)})
            for position, prompt in enumerate(prompts):
                _insert(con, "prompts", {"run_id": run["run_id"], "position": position, **prompt})
            con.execute("COMMIT")

    def add_results(
        self,
        run_id: str,
        numbered: list[tuple[int, RequestResult]],
        samples: list[dict[str, Any]] | None = None,
    ) -> None:
        """Append finished requests (sequence number, result), and any resource samples taken
        meanwhile, in one transaction."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            rows = [
                _jsonify({"run_id": run_id, "seq": seq, **dataclasses.asdict(result)}, RESULT_JSON)
                for seq, result in numbered
            ]
            if rows:
                _insert_many(con, "results", rows)
            if samples:
                _insert_many(con, "samples", [{"run_id": run_id, **s} for s in samples])
            con.execute("COMMIT")

    def add_phase(
        self, run_id: str, mode: str, started_at: datetime, wall_s: float, requests: int
    ) -> None:
        with self.connect() as con:
            _insert(
                con,
                "phases",
                {
                    "run_id": run_id,
                    "mode": mode,
                    "started_at": started_at,
                    "wall_s": wall_s,
                    "requests": requests,
                },
            )

    def add_load_level(self, run_id: str, level: dict[str, Any]) -> None:
        """Record one finished level of a load sweep (a dict with load_levels' columns)."""
        with self.connect() as con:
            _insert(con, "load_levels", {"run_id": run_id, **level})

    def update_model(self, run_id: str, model: str, host: str, **fields: Any) -> None:
        """Set facts learnt about a model during the run (what /api/ps says once it is loaded)."""
        fields = _jsonify(fields, MODEL_JSON)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.connect() as con:
            con.execute(
                f"UPDATE models SET {assignments} WHERE run_id = ? AND model = ? AND host = ?",
                [*fields.values(), run_id, model, host],
            )

    def add_samples(self, run_id: str, samples: list[dict[str, Any]]) -> None:
        """Append resource samples (dicts with the samples table's columns)."""
        if not samples:
            return
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            for sample in samples:
                _insert(con, "samples", {"run_id": run_id, **sample})
            con.execute("COMMIT")

    def add_repetition_stops(self, run_id: str, stops: list[dict[str, Any]]) -> None:
        with self.connect() as con:
            for stop in stops:
                _insert(con, "repetition_stops", {"run_id": run_id, **stop})

    def set_baseline(
        self, run_id: str, baseline: str | None, fail_on_regression_pct: float | None = None
    ) -> None:
        """Record what the run is compared against (`--baseline`) and its regression tolerance."""
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET baseline = ?, fail_on_regression_pct = ? WHERE run_id = ?",
                [baseline, fail_on_regression_pct, run_id],
            )

    def finish_run(self, run_id: str, status: str) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ?",
                [status, utcnow(), run_id],
            )

    def mark_abandoned_runs(self) -> list[str]:
        """Mark 'aborted' the runs still 'running' on this machine whose process is gone.

        A run killed with SIGKILL (or a crash or power loss) cannot mark itself; the next command
        that opens the database does. Runs of other machines are left alone: their processes
        cannot be seen from here. Returns the run ids marked.
        """
        import socket  # imported here: this method is kept apart from the connection code

        hostname = socket.gethostname()
        self.recover_journals()
        with self.connect() as con:
            running = con.execute(
                "SELECT run_id, pid, started_at FROM runs "
                "WHERE status = 'running' AND hostname = ?",
                [hostname],
            ).fetchall()
            abandoned = [
                run_id
                for run_id, pid, started_at in running
                if not _run_process_alive(pid, started_at)
            ]
            for run_id in abandoned:
                con.execute(
                    "UPDATE runs SET status = 'aborted', ended_at = ? "
                    "WHERE run_id = ? AND status = 'running'",
                    [utcnow(), run_id],
                )
        return abandoned

    # ---- per-run aggregates (storage/summaries.py) -------------------------------------------

    def summarize(self, run_ids: Sequence[str] | None = None) -> int:
        """(Re)make the summaries of `run_ids` (every run when None) from their results, in SQL;
        their stored changes and load levels are dropped until analysis makes them again.
        Returns how many runs were summarized."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            count = summaries.summarize_runs(con, run_ids)
            con.execute("COMMIT")
        return count

    def write_changes(self, changes: Mapping[str, Sequence[FindingRecord]]) -> None:
        """Store each run's significant changes (replacing any it had), in one transaction."""
        rows = [
            {
                "run_id": run_id,
                "position": position,
                **{
                    name: list(value) if isinstance(value, tuple) else value
                    for name, value in finding.as_dict().items()
                    if name != "run_id"
                },
            }
            for run_id, findings in changes.items()
            for position, finding in enumerate(findings)
        ]
        self._write_made("run_changes", "changes_at", list(changes), rows)

    def write_level_summaries(self, levels: Mapping[str, Sequence[LevelSummary]]) -> None:
        """Store each run's load levels (replacing any it had; none for a run without a sweep)."""
        rows = [
            {"run_id": run_id, **level.as_dict()}
            for run_id, of_run in levels.items()
            for level in of_run
        ]
        self._write_made("level_summaries", "levels_at", list(levels), rows)

    def _write_made(
        self, table: str, column: str, run_ids: list[str], rows: list[dict[str, Any]]
    ) -> None:
        if not run_ids:
            return
        where, params = summaries.run_filter(run_ids)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute(f"DELETE FROM {table} WHERE {where}", params)
            if rows:
                _insert_many(con, table, rows)
            con.execute(f"UPDATE summary_state SET {column} = ? WHERE {where}", [utcnow(), *params])
            con.execute("COMMIT")

    # ---- the journal ----------------------------------------------------------------------

    def apply_journal(self, paths: Sequence[Path], records: Sequence[Record]) -> list[str]:
        """Apply a run's journal segments (the files, and their records) in one transaction.

        When a record does not fit its column the segments are applied again record by record
        (`store_writes.apply_records`); returns what that changed or left out. Any other failure
        (a full disk, a lock held too long, an I/O error) raises StoreError.
        """
        ops = [r for r in records if r.get("table") == "op"]
        runs = {
            table: {r.get("run_id") for r in records if r.get("table") == table}
            for table in ("results", "samples")
        }
        with self.connect() as con:
            try:
                store_writes.apply_files(con, paths, ops, runs)
            except store_writes.DATA_ERRORS:
                return store_writes.apply_records(con, records)
        return []

    def recover_journals(self) -> list[str]:
        """Add what killed runs left in their journals; the run ids whose journal was applied.

        A journal is left alone while its run's process lives (the run is still writing it).
        """
        root = journal.journal_root(self.path)
        try:
            run_ids = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise StoreError(f"{root}: cannot read the journal folder: {exc.strerror}") from exc
        recovered = []
        for run_id in run_ids:
            folder = root / run_id
            if self._journal_in_use(run_id):
                continue
            paths = journal.segments(folder)
            if paths:
                self.apply_journal(paths, store_writes.records_of(paths))
                self.summarize([run_id])  # rows were added: what was made of them is stale
            _remove_journal(folder)
            recovered.append(run_id)
        return recovered

    def _journal_in_use(self, run_id: str) -> bool:
        import socket

        with self.connect() as con:
            row = con.execute(
                "SELECT status, hostname, pid, started_at FROM runs WHERE run_id = ?", [run_id]
            ).fetchone()
        if row is None:
            return True  # no run row: not ours to apply (another database's, or half-made)
        status, hostname, pid, started_at = row
        return (
            status == "running"
            and hostname == socket.gethostname()
            and _run_process_alive(pid, started_at)
        )

    def import_spill(self, path: Path) -> tuple[str, int, list[str]]:
        """Add a spill file's records: (run id, results in it, what could not be stored)."""
        header = journal.spill_header(path)
        if header is None:
            raise StoreError(
                f"{path}: not a novabench spill file (its first line is not a spill header)"
            )
        run_id = str(header.get("run_id"))
        run = self.get_run(run_id)  # the run row came first: a spill never creates a run
        if run.pruned_at is not None:
            raise StoreError(
                f"{path}: run {run_id} was pruned at {run.pruned_at:%Y-%m-%d %H:%M} UTC (its raw "
                "rows removed, its summaries kept): importing would bring part of them back; "
                "nothing imported"
            )
        records = store_writes.records_of([path])
        problems = self.apply_journal([path], records)
        self.summarize([run_id])  # rows were added: what was made of them is stale
        count = sum(1 for r in records if r.get("table") == "results")
        return run_id, count, problems

    def check_health(self) -> None:
        """Read what a run is about to touch, so a damaged file is refused before it is written.

        The small tables are read whole; of the large ones (results, samples) the rows written
        last, where new rows go. Damage elsewhere in a large table is found when it is read.
        Every value read is hashed inside DuckDB (a damaged block fails as it is read) rather
        than handed to Python: at 10,000 runs that was 0.3 s before every run.
        """
        read_all = "SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM {table}"
        with self.connect() as con:
            for table in ("runs", "models", "prompts", "phases", "load_levels", "repetition_stops"):
                con.execute(read_all.format(table=table)).fetchall()
            for table in ("results", "samples"):
                con.execute(
                    read_all.format(table=table) + " WHERE rowid > "
                    f"(SELECT coalesce(max(rowid), 0) FROM {table}) - 2048"
                ).fetchall()


def _remove_journal(folder: Path) -> None:
    """Delete a run's journal once the database holds all of it."""
    for path in journal.segments(folder):
        path.unlink(missing_ok=True)
    for leftover in folder.glob("*.partial"):
        leftover.unlink(missing_ok=True)
    try:
        folder.rmdir()
        folder.parent.rmdir()  # the journal root, when no other run has one
    except OSError:
        pass


def _insert(con: duckdb.DuckDBPyConnection, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    placeholders = ", ".join("?" for _ in row)
    con.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values()))


# Rows per multi-row INSERT: one statement per row costs DuckDB ~1.2 ms of CPU for a result row
# (binding is per statement), VALUES lists of this many ~0.4 ms: the writer thread shares the
# client's core, so this is CPU the streams do not get.
_ROWS_PER_INSERT = 64


def _insert_many(
    con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert rows with the same keys, many per statement."""
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        columns = list(part[0])
        one = "(" + ", ".join("?" for _ in columns) + ")"
        values = [row[column] for row in part for column in columns]
        con.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * len(part))}",
            values,
        )


def _jsonify(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {
        k: (json.dumps(v, default=str) if k in keys and v is not None else v)
        for k, v in row.items()
    }


# psutil's create time on Linux is rounded to the boot time's whole second; the run row is
# written after the process started, so a process created this long after it cannot be the run's.
_PID_REUSE_SLACK_S = 2.0


def _run_process_alive(pid: int | None, started_at: datetime) -> bool:
    """Whether the process that wrote a run (naive UTC `started_at`) still exists.

    A live process with that pid created after the run started is another program that reused it.
    """
    import psutil

    if pid is None:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # dead, not yet reaped by its parent
            return False
        created = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # it exists, but we may not look at it: leave the run alone
    return created <= started_at.replace(tzinfo=UTC).timestamp() + _PID_REUSE_SLACK_S
