"""The run's results on their way to the store, so that a finished result is never lost.

Two threads, so that neither a DuckDB write nor a wait for the database file ever sits between
two requests on the event loop:

- the journal thread wakes every JOURNAL_INTERVAL_S and writes whatever finished meanwhile
  (results, resource samples, the run's other writes) to a segment file of the run's journal
  (`journal.py`): a run killed outright loses at most that interval, at any request rate;
- the database thread applies the segments to the store in order (DuckDB reads the files
  itself) and deletes each one the database holds.

When the database stops taking writes (a full disk, a lock held past
NOVABENCH_DB_LOCK_TIMEOUT_S, an I/O error) the sink says so at once (`on_failure`), and `spill()`
writes everything the database does not hold to one NDJSON file: the run stops, nothing is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from novabench.engines.storable import make_storable
from novabench.errors import StorageFailure, StoreError
from novabench.records import RequestResult, ResourceSample
from novabench.storage import journal
from novabench.storage.journal import Record
from novabench.storage.store import Store, _remove_journal, utcnow

# How long a finished result may wait before it is in the journal (the kill -9 window).
JOURNAL_INTERVAL_S = 0.02
# A database write takes at most this many segments: a long backlog is applied in pieces.
MAX_SEGMENTS_PER_WRITE = 256
# The file is left free this long between two writes, so that other processes (another suite's
# run, a `novabench report`) get their turn at it during a busy run.
DB_WRITE_GAP_S = 0.05


class ResultSink:
    """Numbers results, journals them within JOURNAL_INTERVAL_S and writes them to the store."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        on_failure: Callable[[StorageFailure], None] | None = None,
    ) -> None:
        self._store = store
        self.run_id = run_id
        self.on_failure = on_failure
        self.results: list[RequestResult] = []
        self.problems: list[str] = []  # records the database changed or left out
        self.failure: StorageFailure | None = None
        self._folder = journal.run_journal(store.path, run_id)
        self._lock = threading.Condition()
        self._pending: list[Record] = []  # not yet in the journal
        self._queued: list[tuple[Path, list[Record]]] = []  # journaled, not yet in the database
        self._submitted = 0  # records handed to the sink so far
        self._committed = 0  # records the database holds
        self._segment = 0
        self._closing = False
        self._urgent = False  # a flush waits: write the journal now
        self._waiters: list[tuple[int, asyncio.Future[None], asyncio.AbstractEventLoop]] = []
        self._journal_thread = threading.Thread(
            target=self._journal_loop, name="novabench-journal", daemon=True
        )
        self._db_thread = threading.Thread(
            target=self._db_loop, name="novabench-store", daemon=True
        )
        self._journal_thread.start()
        self._db_thread.start()

    # ---- what the run hands over (event loop, sampler thread) -----------------------------

    def submit(self, result: RequestResult) -> None:
        """A finished request: numbered in finishing order, journaled soon, then stored."""
        make_storable(result)
        record = {"table": "results", "run_id": self.run_id, "seq": len(self.results)}
        record.update(vars(result))
        self.results.append(result)
        self._add(record)

    def add_sample(self, sample: ResourceSample) -> None:
        """A resource sample (called from the sampler's thread)."""
        self._add({"table": "samples", "run_id": self.run_id, **dataclasses.asdict(sample)})

    def record(self, op: str, **args: Any) -> None:
        """Another write of the run (a phase, a load level, the run's end...), kept in order."""
        self._add({"table": "op", "op": op, "args": {"run_id": self.run_id, **args}})

    def _add(self, record: Record) -> None:
        with self._lock:
            self._pending.append(record)
            self._submitted += 1

    # ---- waiting ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until the database holds everything handed over so far; raise StorageFailure."""
        if self.failure is not None:
            raise self.failure
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._committed >= self._submitted:
                return
            self._waiters.append((self._submitted, future, loop))
            self._urgent = True
            self._lock.notify_all()  # the journal thread writes now rather than in a moment
        await future

    def _settle_waiters(self) -> None:
        """Wake the flushes whose records are stored (or all of them, after a failure)."""
        done = [w for w in self._waiters if self.failure is not None or w[0] <= self._committed]
        self._waiters = [w for w in self._waiters if w not in done]
        for _, future, loop in done:
            loop.call_soon_threadsafe(_resolve, future, self.failure)

    # ---- the journal thread -------------------------------------------------------------------

    def _journal_loop(self) -> None:
        # Written on a fixed cadence, not per result: at a thousand results a second that is a
        # segment every interval, not a thousand files.
        next_at = time.monotonic()
        while True:
            with self._lock:
                while (
                    not self._closing
                    and not self._urgent
                    and (not self._pending or time.monotonic() < next_at)
                ):
                    self._lock.wait(max(0.001, next_at - time.monotonic()))
                self._urgent = False
                if not self._pending:
                    if self._closing:
                        return
                    continue
                batch, self._pending = self._pending, []
                self._segment += 1
                number = self._segment
            next_at = time.monotonic() + JOURNAL_INTERVAL_S
            path = journal.segment_path(self._folder, number)
            try:
                self._folder.mkdir(parents=True, exist_ok=True)
                journal.write_segment(path, [_plain(r) for r in batch])
            except (OSError, ValueError, TypeError) as exc:
                with self._lock:
                    self._queued.append((path, batch))  # kept in memory for the spill
                self._fail(f"cannot write its journal {self._folder}: {_reason(exc)}")
                continue
            with self._lock:
                self._queued.append((path, batch))
                self._lock.notify_all()

    # ---- the database thread ------------------------------------------------------------------

    def _db_loop(self) -> None:
        while True:
            with self._lock:
                while not self._ready_segments() and not (self._closing and self._drained()):
                    self._lock.wait(JOURNAL_INTERVAL_S)
                    if self.failure is not None:
                        return
                if self.failure is not None or (self._closing and self._drained()):
                    return
                taken = self._ready_segments()[:MAX_SEGMENTS_PER_WRITE]
            paths = [path for path, _ in taken]
            records = [r for _, batch in taken for r in batch]
            try:
                problems = self._store.apply_journal(paths, records)
            except StoreError as exc:
                self._fail(str(exc))
                return
            except Exception as exc:  # an unknown failure must stop the run, not the thread
                self._fail(f"{self._store.path}: {_reason(exc)}")
                return
            for path in paths:
                path.unlink(missing_ok=True)
            with self._lock:
                self.problems += problems
                del self._queued[: len(taken)]
                self._committed += len(records)
                self._settle_waiters()
                gap_until = time.monotonic() + DB_WRITE_GAP_S
                while not self._closing and not self._waiters and time.monotonic() < gap_until:
                    self._lock.wait(gap_until - time.monotonic())

    def _ready_segments(self) -> list[tuple[Path, list[Record]]]:
        """Journaled segments the database does not hold yet (only before any failure)."""
        return [] if self.failure is not None else self._queued

    def _drained(self) -> bool:
        return not self._pending and not self._queued

    # ---- failure and the end -----------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self.failure is not None:
                return
            self.failure = StorageFailure(f"cannot store results of run {self.run_id}: {reason}")
            self._settle_waiters()
            self._lock.notify_all()
            failure = self.failure
        if self.on_failure is not None:
            self.on_failure(failure)

    def unstored(self) -> list[Record]:
        """Every record the database does not hold yet, in order."""
        with self._lock:
            return [r for _, batch in self._queued for r in batch] + list(self._pending)

    def spill(self) -> tuple[Path | None, int]:
        """After a failure: write what the database lacks to a spill file; (its path, results).

        The path is None when no spill file could be written anywhere (the journal folder, if
        it could be written, still holds the records).
        """
        self._stop_threads()
        records = [_plain(r) for r in self.unstored()]
        count = sum(1 for r in records if r.get("table") == "results")
        try:
            path, _ = journal.write_spill(self._store.path, self.run_id, records)
        except OSError as exc:
            self.spill_error = str(exc)
            return None, count
        _remove_journal(self._folder)
        return path, count

    spill_error: str | None = None

    def close(self) -> None:
        """Stop the threads once everything is written; drop the journal the database holds."""
        self._stop_threads()
        if self.failure is None and not self.unstored():
            _remove_journal(self._folder)

    def _stop_threads(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._journal_thread.join()
        self._db_thread.join()


def _resolve(future: asyncio.Future[None], failure: StorageFailure | None) -> None:
    if future.done():
        return
    if failure is not None:
        future.set_exception(failure)
    else:
        future.set_result(None)


def _plain(record: Record) -> Record:
    """A record as the journal writes it: times as text, the rest as JSON takes it."""
    return {k: (v.isoformat(sep=" ") if isinstance(v, datetime) else v) for k, v in record.items()}


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


__all__ = ["JOURNAL_INTERVAL_S", "ResultSink", "utcnow"]
