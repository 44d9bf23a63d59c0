"""The database file: opened for each operation and closed right after (so the file is held only
while it is read or written), waiting for another process that holds it, migrated on first use
with a backup made first, and every DuckDB error said in one line."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from novabench.errors import StoreError
from novabench.records import utcnow
from novabench.storage.schema import MIGRATIONS, SCHEMA_VERSION
from novabench.storage.settings import DEFAULT_DB

log = logging.getLogger(__name__)

# DuckDB lets one process at a time open a file for writing; others get this error on open.
LOCK_TIMEOUT_ENV = "NOVABENCH_DB_LOCK_TIMEOUT_S"
DEFAULT_LOCK_TIMEOUT_S = 60.0
_LOCK_BACKOFF_FIRST_S = 0.01
_LOCK_BACKOFF_MAX_S = 0.5
_LOCKED = re.compile(r"Could not set lock on file")
_LOCK_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


class Database:
    """One DuckDB history file: opened for each operation, migrated on first use."""

    def __init__(self, path: str | Path = DEFAULT_DB, lock_timeout_s: float | None = None) -> None:
        self.path = Path(path)
        self.lock_timeout_s = _lock_timeout_s() if lock_timeout_s is None else lock_timeout_s
        self.last_backup: Path | None = None  # the copy made before the last migration, if any
        self.lock_waits_s: list[float] = []  # how long each open waited for another process
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._held: duckdb.DuckDBPyConnection | None = None  # see holding()
        self._held_by: int | None = None  # the thread that holds it

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Keep one connection open for the operations inside (on this thread): a batch of
        reads and writes then opens the file once instead of once each (~60 ms an open)."""
        if self._held is not None:
            yield
            return
        with self.connect() as con:
            self._held, self._held_by = con, threading.get_ident()
            try:
                yield
            finally:
                self._held, self._held_by = None, None

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (creating and migrating it on first use), yield a connection, close it.

        While another process holds the file, retry with backoff for up to `lock_timeout_s`.
        Only the open is retried, never a statement, so a write cannot happen twice.
        """
        if self._held is not None and self._held_by == threading.get_ident():
            held = self._held
            try:
                yield held
            except BaseException as exc:
                # a transaction left open would swallow the next operations: closing the
                # connection would have rolled it back
                with contextlib.suppress(duckdb.Error):
                    held.execute("ROLLBACK")
                if isinstance(exc, duckdb.Error):
                    raise StoreError(describe_database_error(self.path, exc)) from exc
                raise
            return
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
