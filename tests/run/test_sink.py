"""The runner's result writer: results written in order from one thread, flushes from several
sweeps at once, and a failed write never passing silently."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from novabench.errors import StorageFailure, StoreError
from novabench.records import RequestResult
from novabench.run.sink import ResultSink


class SlowStore:
    """Takes 20 ms per write, from one thread at a time; can be told to fail."""

    def __init__(self, path: Path, fail: bool = False) -> None:
        self.path = path
        self.written: list[int] = []
        self.fail = fail
        self.busy = threading.Lock()

    def apply_journal(self, paths: list[Path], records: list[dict[str, Any]]) -> list[str]:
        assert self.busy.acquire(blocking=False), "two writes at once"
        try:
            time.sleep(0.02)
            assert all(p.exists() for p in paths), "segments are journaled before the write"
            if self.fail:
                raise StoreError("disk full")
            self.written.extend(r["seq"] for r in records if r["table"] == "results")
        finally:
            self.busy.release()
        return []


def result(n: int) -> RequestResult:
    return RequestResult("load", "m", "h", "p", n, False, datetime.now(UTC))


def test_concurrent_flushes_wait_for_every_result_submitted_meanwhile(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "db.duckdb")

    async def main() -> None:
        sink = ResultSink(store, "run")  # type: ignore[arg-type]

        async def sweep(first: int) -> None:
            for n in range(first, first + 5):
                sink.submit(result(n))
                await asyncio.sleep(0.005)
                await sink.flush()

        await asyncio.gather(sweep(0), sweep(100), sweep(200))
        await sink.flush()
        sink.close()

    asyncio.run(main())
    assert len(store.written) == 15 and sorted(store.written) == list(range(15))


def test_a_failed_write_is_raised_by_every_later_flush(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "db.duckdb", fail=True)

    async def main() -> list[str]:
        sink = ResultSink(store, "run")  # type: ignore[arg-type]
        sink.submit(result(0))
        raised = []
        for _ in range(2):
            with pytest.raises(StorageFailure) as error:
                await sink.flush()
            raised.append(str(error.value))
        sink.close()
        return raised

    assert asyncio.run(main()) == ["cannot store results of run run: disk full"] * 2
