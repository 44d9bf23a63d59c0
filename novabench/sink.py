"""The runner's results on their way to the store: numbered as they finish, written from one
thread in batches, so a DuckDB write never sits between two requests on the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from novabench.metrics import RequestResult
from novabench.sampling import ResourceSample
from novabench.store import Store


class ResultSink:
    """Numbers results and writes them to the store from one thread, batching what piles up."""

    def __init__(self, store: Store, run_id: str) -> None:
        self._store = store
        self.run_id = run_id
        self._samples: list[dict[str, Any]] = []
        self._samples_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novabench-store")
        self._pending: list[tuple[int, RequestResult]] = []
        self._writer: asyncio.Task[None] | None = None
        self._failure: Exception | None = None  # the first write that failed
        self.results: list[RequestResult] = []

    def submit(self, result: RequestResult) -> None:
        self._pending.append((len(self.results), result))
        self.results.append(result)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())

    def add_sample(self, sample: ResourceSample) -> None:
        """Keep a resource sample (called from the sampler's thread); written with the results."""
        with self._samples_lock:
            self._samples.append(dataclasses.asdict(sample))

    def _take_samples(self) -> list[dict[str, Any]]:
        with self._samples_lock:
            taken, self._samples = self._samples, []
        return taken

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                samples = self._take_samples()
                await loop.run_in_executor(
                    self._executor, self._store.add_results, self.run_id, batch, samples
                )
        except Exception as exc:
            # Kept for flush() to raise, not left in the task: an exception nobody retrieves is
            # logged when the task is collected, and that can happen at any time.
            self._failure = self._failure or exc

    async def flush(self) -> None:
        """Wait until every result submitted so far is written; raise if a write failed.

        Several sweeps may flush at once (hosts are swept together): each waits for whichever
        writer task is current until none is running.
        """
        while (writer := self._writer) is not None and not writer.done():
            await asyncio.wait([writer])
        samples = self._take_samples()
        if samples:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                self._executor, self._store.add_samples, self.run_id, samples
            )
        if self._failure is not None:
            raise self._failure

    async def call(self, fn: Callable[..., object], *args: object) -> None:
        """Run a store write in the writer thread, after every result submitted so far."""
        await self.flush()
        await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
