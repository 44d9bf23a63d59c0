"""The runner's result writer: results written in order from one thread, flushes from several
sweeps at once, and a failed write never passing silently."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from novabench.metrics import RequestResult
from novabench.sink import ResultSink


class SlowStore:
    """Takes 20 ms per write, from one thread at a time; can be told to fail."""

    def __init__(self, fail: bool = False) -> None:
        self.written: list[int] = []
        self.fail = fail
        self.busy = threading.Lock()

    def add_results(
        self, run_id: str, batch: list[tuple[int, RequestResult]], samples: Any
    ) -> None:
        assert self.busy.acquire(blocking=False), "two writes at once"
        try:
            time.sleep(0.02)
            if self.fail:
                raise OSError("disk full")
            self.written.extend(seq for seq, _ in batch)
        finally:
            self.busy.release()

    def add_samples(self, run_id: str, samples: Any) -> None:
        pass


def result(n: int) -> RequestResult:
    return RequestResult("load", "m", "h", "p", n, False, datetime.now(UTC))


def test_concurrent_flushes_wait_for_every_result_submitted_meanwhile() -> None:
    store = SlowStore()

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


def test_a_failed_write_is_raised_by_every_later_flush() -> None:
    store = SlowStore(fail=True)

    async def main() -> list[str]:
        sink = ResultSink(store, "run")  # type: ignore[arg-type]
        sink.submit(result(0))
        raised = []
        for _ in range(2):
            with pytest.raises(OSError) as error:
                await sink.flush()
            raised.append(str(error.value))
        sink.close()
        return raised

    assert asyncio.run(main()) == ["disk full", "disk full"]
