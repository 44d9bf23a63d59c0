"""The DuckDB history: schema, numbered migrations, writes as results arrive, queries.

A connection is opened for each operation and closed right after, so the file is held only while
it is being read or written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from novabench.errors import RunNotFoundError, StoreError
from novabench.records import RequestResult, utcnow
from novabench.storage import apply as store_writes
from novabench.storage import journal
from novabench.storage.journal import Record

DEFAULT_DB = Path("reports") / "novabench.duckdb"

RUN_STATUSES = ("running", "complete", "interrupted", "aborted")

# DuckDB lets one process at a time open a file for writing; others get this error on open.
LOCK_TIMEOUT_ENV = "NOVABENCH_DB_LOCK_TIMEOUT_S"
DEFAULT_LOCK_TIMEOUT_S = 60.0
_LOCK_BACKOFF_FIRST_S = 0.01
_LOCK_BACKOFF_MAX_S = 0.5
_LOCKED = re.compile(r"Could not set lock on file")
_LOCK_HOLDER_PID = re.compile(r"\(PID (\d+)\)")

log = logging.getLogger(__name__)


def _m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,      -- UTC
            ended_at TIMESTAMP,                 -- UTC
            status VARCHAR NOT NULL,            -- running / complete / interrupted / aborted
            suite_name VARCHAR NOT NULL,
            suite_path VARCHAR,
            suite_text VARCHAR NOT NULL,
            suite_sha256 VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            ollama_version VARCHAR,
            host_versions JSON,                 -- {host: version} for every host the suite uses
            novabench_version VARCHAR NOT NULL,
            modes VARCHAR[] NOT NULL,
            repetitions INTEGER NOT NULL,
            warmup INTEGER NOT NULL,
            options JSON,
            system JSON,                        -- OS, CPU, RAM, Python, hostname
            hostname VARCHAR,
            pid INTEGER
        )
        """
    )
    con.execute(
        """
        CREATE TABLE models (
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            found BOOLEAN NOT NULL,
            digest VARCHAR,
            size_bytes BIGINT,
            family VARCHAR,
            parameter_size VARCHAR,
            quantization VARCHAR,
            options JSON,                       -- effective options sent with every request
            PRIMARY KEY (run_id, model, host)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE prompts (
            run_id VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            text VARCHAR NOT NULL,
            system VARCHAR,
            PRIMARY KEY (run_id, prompt_id)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE results (
            run_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,               -- order in which requests finished
            mode VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            repetition INTEGER NOT NULL,
            is_warmup BOOLEAN NOT NULL,
            started_at TIMESTAMP NOT NULL,      -- UTC
            start_offset_s DOUBLE NOT NULL,     -- request sent, seconds after the run started
            ttft_s DOUBLE,
            e2e_s DOUBLE,
            chunk_count INTEGER NOT NULL,
            response_bytes BIGINT NOT NULL,
            token_offsets_s DOUBLE[],           -- content/thinking chunk arrivals, s after send
            prompt_eval_count INTEGER,
            prompt_eval_duration_ns BIGINT,
            eval_count INTEGER,
            eval_duration_ns BIGINT,
            load_duration_ns BIGINT,
            total_duration_ns BIGINT,
            done_reason VARCHAR,
            response_text VARCHAR NOT NULL,
            thinking_text VARCHAR NOT NULL,
            error VARCHAR,
            http_status INTEGER,
            PRIMARY KEY (run_id, seq)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE phases (
            run_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL,      -- UTC
            wall_s DOUBLE NOT NULL,             -- measured requests only, warm-up excluded
            requests INTEGER NOT NULL,
            PRIMARY KEY (run_id, mode)
        )
        """
    )


def _m002_measurement(con: duckdb.DuckDBPyConnection) -> None:
    """Cold starts, checks, resource samples, auto-repetition stops and the run manifest."""
    con.execute("ALTER TABLE results ADD COLUMN is_cold BOOLEAN DEFAULT false")
    con.execute("ALTER TABLE results ADD COLUMN checks JSON")  # {check name: passed}
    con.execute("ALTER TABLE runs ADD COLUMN manifest JSON")  # git, GPUs, effective settings
    con.execute("ALTER TABLE models ADD COLUMN context_length INTEGER")
    con.execute("ALTER TABLE models ADD COLUMN show_info JSON")  # /api/show: details, parameters
    con.execute("ALTER TABLE models ADD COLUMN loaded_size_bytes BIGINT")  # /api/ps size
    con.execute("ALTER TABLE models ADD COLUMN loaded_vram_bytes BIGINT")  # /api/ps size_vram
    con.execute(
        """
        CREATE TABLE samples (
            run_id VARCHAR NOT NULL,
            offset_s DOUBLE NOT NULL,           -- seconds after the run started
            taken_at TIMESTAMP NOT NULL,        -- UTC
            cpu_percent DOUBLE,
            per_core_percent DOUBLE[],
            ram_used_bytes BIGINT,
            ram_percent DOUBLE,
            swap_used_bytes BIGINT,
            server_cpu_percent DOUBLE,          -- the Ollama server and its runners, when local
            server_rss_bytes BIGINT,
            gpu_util_percent DOUBLE,
            gpu_mem_used_bytes BIGINT,
            gpu_power_w DOUBLE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE repetition_stops (
            run_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            repetitions INTEGER NOT NULL,
            reason VARCHAR NOT NULL,            -- target_reached / max_repetitions / fixed
            ci_half_width_ratio DOUBLE          -- of the median of the target figure
        )
        """
    )


def _m003_baseline(con: duckdb.DuckDBPyConnection) -> None:
    """What a run was compared against; the comparison itself is recomputed on read."""
    con.execute("ALTER TABLE runs ADD COLUMN baseline VARCHAR")  # last / RUN_ID / median:N
    con.execute("ALTER TABLE runs ADD COLUMN fail_on_regression_pct DOUBLE")


def _m004_backends(con: duckdb.DuckDBPyConnection) -> None:
    """Which engine served each model and request; the engine's own model id."""
    con.execute("ALTER TABLE results ADD COLUMN backend VARCHAR DEFAULT 'ollama'")
    con.execute("ALTER TABLE models ADD COLUMN backend VARCHAR DEFAULT 'ollama'")
    con.execute("ALTER TABLE models ADD COLUMN engine_model VARCHAR")  # id sent to the engine


def _m005_load(con: duckdb.DuckDBPyConnection) -> None:
    """Load sweeps: the level each request was sent at, and each level's own facts."""
    con.execute("ALTER TABLE results ADD COLUMN load_level INTEGER")  # index into load_levels
    con.execute(
        """
        CREATE TABLE load_levels (
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            level_index INTEGER NOT NULL,       -- position in the suite's list of levels
            kind VARCHAR NOT NULL,              -- concurrency / rate
            level DOUBLE NOT NULL,              -- concurrent streams, or requests/s offered
            started_at TIMESTAMP NOT NULL,      -- UTC
            started_offset_s DOUBLE NOT NULL,   -- first request sent, seconds after run start
            wall_s DOUBLE NOT NULL,             -- first request sent to last request ended
            requests INTEGER NOT NULL,          -- sent at this level
            delayed_arrivals INTEGER NOT NULL,  -- rate levels: arrivals that waited for a slot
            stop_reason VARCHAR,                -- last level run: saturated/failing/interrupted
            PRIMARY KEY (run_id, model, host, level_index)
        )
        """
    )


# Append-only: never edit a migration that has shipped; add the next number instead.
MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
    (1, "m001_initial", _m001_initial),
    (2, "m002_measurement", _m002_measurement),
    (3, "m003_baseline", _m003_baseline),
    (4, "m004_backends", _m004_backends),
    (5, "m005_load", _m005_load),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

RUN_JSON = ("host_versions", "options", "system", "manifest")
MODEL_JSON = ("options", "show_info")
RESULT_JSON = ("checks",)


class Store:
    """One DuckDB history file."""

    def __init__(self, path: str | Path = DEFAULT_DB, lock_timeout_s: float | None = None) -> None:
        self.path = Path(path)
        self.lock_timeout_s = _lock_timeout_s() if lock_timeout_s is None else lock_timeout_s
        self.last_backup: Path | None = None  # the copy made before the last migration, if any
        self.lock_waits_s: list[float] = []  # how long each open waited for another process
        self._migrated = False
        self._migrate_lock = threading.Lock()

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (creating and migrating it on first use), yield a connection, close it.

        While another process holds the file, retry with backoff for up to `lock_timeout_s`.
        Only the open is retried, never a statement, so a write cannot happen twice.
        """
        con = self._open()
        try:
            if not self._migrated:
                with self._migrate_lock:
                    if not self._migrated:
                        self._migrate(con)
                        self._migrated = True
            yield con
        except duckdb.Error as exc:
            raise StoreError(describe_database_error(self.path, exc)) from exc
        finally:
            # closing checkpoints; a full disk fails it, and the error above said so
            with contextlib.suppress(duckdb.Error):
                con.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc
        started = time.monotonic()
        delay_s = _LOCK_BACKOFF_FIRST_S
        tries = 0
        while True:
            tries += 1
            try:
                con = duckdb.connect(str(self.path))
            except duckdb.IOException as exc:
                if not _LOCKED.search(str(exc)):
                    raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc
                waited_s = time.monotonic() - started
                if waited_s >= self.lock_timeout_s:
                    holder = _LOCK_HOLDER_PID.search(str(exc))
                    pid = f" (pid {holder.group(1)})" if holder else ""
                    raise StoreError(
                        f"{self.path} is locked by another process{pid} for more than "
                        f"{self.lock_timeout_s:g} s: wait for it to finish, or set "
                        f"{LOCK_TIMEOUT_ENV} to wait longer"
                    ) from exc
                # Jitter keeps processes that collided once from colliding again in step.
                pause_s = delay_s * random.uniform(0.5, 1.5)
                time.sleep(min(pause_s, max(self.lock_timeout_s - waited_s, 0.0)))
                delay_s = min(delay_s * 2, _LOCK_BACKOFF_MAX_S)
                continue
            except (duckdb.Error, OSError) as exc:
                raise StoreError(f"{self.path}: cannot open the database: {exc}") from exc
            if tries > 1:
                waited_s = time.monotonic() - started
                self.lock_waits_s.append(waited_s)
                log.debug("%s: waited %.3f s (%d tries) for the lock", self.path, waited_s, tries)
            return con

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                "ORDER BY table_name"
            ).fetchall()
        ]
        if tables and "schema_migrations" not in tables:
            shown = ", ".join(tables[:6]) + (", ..." if len(tables) > 6 else "")
            raise StoreError(
                f"{self.path} is a DuckDB database but not a novabench history (it has the "
                f"tables {shown} and no schema_migrations): novabench leaves it as it is; "
                "give another --db"
            )
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
        current = (row[0] if row else None) or 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema version {current} is newer than this novabench "
                f"understands ({SCHEMA_VERSION}): upgrade novabench or use another --db"
            )
        if 0 < current < SCHEMA_VERSION:
            self.last_backup = self._backup(con, current)
        for version, name, migrate in MIGRATIONS:
            if version <= current:
                continue
            con.execute("BEGIN TRANSACTION")
            try:
                migrate(con)
                con.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, utcnow()]
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise

    def _backup(self, con: duckdb.DuckDBPyConnection, version: int) -> Path:
        """Copy the file as it is before migrating it: <name>.v<version>-backup-<UTC>.duckdb.

        The copy is made while this process holds DuckDB's lock (no other process can write),
        after a checkpoint has moved everything from the write-ahead log into the file.
        """
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = self.path.with_name(f"{self.path.stem}.v{version}-backup-{stamp}.duckdb")
        n = 1
        while backup.exists():
            n += 1
            backup = self.path.with_name(f"{self.path.stem}.v{version}-backup-{stamp}-{n}.duckdb")
        partial = backup.with_name(backup.name + ".partial")
        try:
            con.execute("CHECKPOINT")
            shutil.copyfile(self.path, partial)
            os.replace(partial, backup)
        except (duckdb.Error, OSError) as exc:
            partial.unlink(missing_ok=True)
            raise StoreError(
                f"{self.path}: cannot back up the database before migrating it from schema "
                f"version {version} to {SCHEMA_VERSION} ({exc}): free space next to it or "
                "check its folder's permissions"
            ) from exc
        return backup

    def schema_version(self) -> int:
        with self.connect() as con:
            row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
            return int(row[0]) if row and row[0] is not None else 0

    # ---- writes -------------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> None:
        """Insert the run row (status 'running') with its models and prompts, in one transaction."""
        models = run.pop("models", [])
        prompts = run.pop("prompts", [])
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

    # ---- the journal ----------------------------------------------------------------------

    def apply_journal(self, paths: Sequence[Path], records: Sequence[Record]) -> list[str]:
        """Apply a run's journal segments (the files, and their records) in one transaction.

        When a record does not fit its column the segments are applied again record by record
        (`store_writes.apply_records`); returns what that changed or left out. Any other failure
        (a full disk, a lock held too long, an I/O error) raises StoreError.
        """
        ops = [r for r in records if r.get("table") == "op"]
        with self.connect() as con:
            try:
                store_writes.apply_files(con, paths, ops)
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
        self.get_run(run_id)  # the run row came first: a spill never creates a run
        records = store_writes.records_of([path])
        problems = self.apply_journal([path], records)
        count = sum(1 for r in records if r.get("table") == "results")
        return run_id, count, problems

    def check_health(self) -> None:
        """Read what a run is about to touch, so a damaged file is refused before it is written.

        The small tables are read whole; of the large ones (results, samples) the rows written
        last, where new rows go. Damage elsewhere in a large table is found when it is read.
        """
        with self.connect() as con:
            for table in ("runs", "models", "prompts", "phases", "load_levels", "repetition_stops"):
                con.execute(f"SELECT * FROM {table}").fetchall()
            for table in ("results", "samples"):
                con.execute(
                    f"SELECT * FROM {table} WHERE rowid > "
                    f"(SELECT coalesce(max(rowid), 0) FROM {table}) - 2048"
                ).fetchall()

    # ---- reads --------------------------------------------------------------------------

    def list_runs(self, suite: str | None = None) -> list[dict[str, Any]]:
        """Every run, newest first, with request and error counts."""
        sql = """
            SELECT r.run_id, r.started_at, r.ended_at, r.status, r.suite_name, r.host,
                   r.ollama_version, r.novabench_version, r.modes,
                   count(x.seq) FILTER (WHERE NOT x.is_warmup AND NOT x.is_cold) AS requests,
                   count(x.seq) FILTER (
                       WHERE NOT x.is_warmup AND NOT x.is_cold AND x.error IS NOT NULL
                   ) AS errors
            FROM runs r LEFT JOIN results x USING (run_id)
            WHERE ? IS NULL OR r.suite_name = ?
            GROUP BY ALL ORDER BY r.started_at DESC, r.run_id DESC
        """
        with self.connect() as con:
            return _dicts(con.execute(sql, [suite, suite]))

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self.connect() as con:
            rows = _dicts(con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]))
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}: 'novabench runs' lists them")
        return _unjson(rows[0], RUN_JSON)

    def latest_run_id(self) -> str:
        with self.connect() as con:
            row = con.execute(
                "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            raise RunNotFoundError(f"no runs in {self.path} yet: 'novabench run SUITE' makes one")
        return str(row[0])

    def models(self, run_id: str) -> list[dict[str, Any]]:
        with self.connect() as con:
            rows = _dicts(
                con.execute("SELECT * FROM models WHERE run_id = ? ORDER BY model, host", [run_id])
            )
        return [_unjson(row, MODEL_JSON) for row in rows]

    def prompts(self, run_id: str) -> list[dict[str, Any]]:
        with self.connect() as con:
            return _dicts(
                con.execute("SELECT * FROM prompts WHERE run_id = ? ORDER BY position", [run_id])
            )

    def results(self, run_id: str) -> list[dict[str, Any]]:
        with self.connect() as con:
            rows = _dicts(
                con.execute("SELECT * FROM results WHERE run_id = ? ORDER BY seq", [run_id])
            )
        return [_unjson(row, RESULT_JSON) for row in rows]

    def phases(self, run_id: str) -> list[dict[str, Any]]:
        with self.connect() as con:
            return _dicts(
                con.execute("SELECT * FROM phases WHERE run_id = ? ORDER BY started_at", [run_id])
            )

    def samples(self, run_id: str) -> list[dict[str, Any]]:
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT * EXCLUDE (run_id) FROM samples WHERE run_id = ? ORDER BY offset_s",
                    [run_id],
                )
            )

    def load_levels(self, run_id: str) -> list[dict[str, Any]]:
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT * EXCLUDE (run_id) FROM load_levels WHERE run_id = ? "
                    "ORDER BY model, host, level_index",
                    [run_id],
                )
            )

    def repetition_stops(self, run_id: str) -> list[dict[str, Any]]:
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT * EXCLUDE (run_id) FROM repetition_stops WHERE run_id = ? "
                    "ORDER BY mode, model, host, prompt_id",
                    [run_id],
                )
            )

    def history(
        self, suite: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Every measured, successful request with its run's context (no texts), oldest first.

        `suite` keeps one suite name's runs, `run_ids` only those runs. `host_version` is the
        Ollama version of the request's own host (a suite may use several).
        """
        conditions = ["NOT x.is_warmup", "NOT x.is_cold", "x.error IS NULL"]
        params: list[Any] = []
        if suite is not None:
            conditions.append("r.suite_name = ?")
            params.append(suite)
        if run_ids is not None:
            conditions.append("list_contains(?::VARCHAR[], x.run_id)")
            params.append(list(run_ids))
        sql = f"""
            SELECT r.run_id, r.started_at AS run_started_at, r.suite_name, r.status,
                   r.novabench_version, r.ollama_version,
                   coalesce(json_extract_string(
                       r.host_versions, '/' || replace(replace(x.host, '~', '~0'), '/', '~1')
                   ), r.ollama_version) AS host_version,
                   x.mode, x.model, x.host, x.prompt_id,
                   m.digest, x.ttft_s, x.e2e_s, x.token_offsets_s, x.eval_count,
                   x.eval_duration_ns, x.prompt_eval_count, x.prompt_eval_duration_ns,
                   x.load_duration_ns, x.total_duration_ns
            FROM results x JOIN runs r USING (run_id)
            LEFT JOIN models m ON m.run_id = x.run_id AND m.model = x.model AND m.host = x.host
            WHERE {" AND ".join(conditions)}
            ORDER BY r.started_at, r.run_id, x.seq
        """
        with self.connect() as con:
            return _dicts(con.execute(sql, params))


def describe_database_error(path: Path, exc: BaseException) -> str:
    """A DuckDB error as one line that says what happened to the file and what to do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    if "corrupt" in lowered or "checksum" in lowered:
        return (
            f"{path} is damaged ({text[:160]}): novabench writes nothing more to it; move it "
            "aside and start a new history with --db (a copy made before an upgrade sits beside "
            "it as *.v<N>-backup-*.duckdb)"
        )
    if "no space left" in lowered:
        return f"{path}: no space left on its disk ({text[:160]}): free some space"
    if "read-only" in lowered or "permission denied" in lowered:
        return f"{path}: cannot write the database ({text[:160]}): check its permissions"
    return f"{path}: database error: {text[:300]}"


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


def _lock_timeout_s() -> float:
    """How long to wait for another process's lock: NOVABENCH_DB_LOCK_TIMEOUT_S, else 60 s."""
    value = os.environ.get(LOCK_TIMEOUT_ENV)
    if value is None or not value.strip():
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise StoreError(
            f"{LOCK_TIMEOUT_ENV}={value!r}: expected a number of seconds (0 or more), "
            f"e.g. {DEFAULT_LOCK_TIMEOUT_S:g}"
        )
    return seconds


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


def _unjson(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: (json.loads(v) if k in keys and isinstance(v, str) else v) for k, v in row.items()}


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


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
