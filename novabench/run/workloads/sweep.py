"""Load mode: sweep concurrency levels (closed loop) or arrival rates (open loop, Poisson).

A concurrency level keeps N streams busy: each sends its next request as soon as its last one
ends. A rate level sends requests at Poisson arrival times whatever the server does, so a server
that cannot keep up builds a queue (capped at `max_in_flight`; arrivals beyond it wait and are
counted as delayed). The two are strategies of one sweep: the level loop, the early stop on
saturation or failure and the load_levels rows are the same for both. Each level's requests are
stored as they finish, like any others.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from novabench.analysis.sweeps import (
    failing,
    level_record,
    saturated_at,
    summarize_level,
    with_stop_reason,
)
from novabench.config.suite import PromptSpec, Suite
from novabench.config.workload import LoadSpec
from novabench.records import LevelRecord, LevelSummary, RequestResult, utcnow
from novabench.run.targets import Target
from novabench.run.workloads.base import Workload, WorkloadContext, WorkloadOutcome

# Sends one request of a level: (prompt, sequence number in the level) -> its result.
LevelSend = Callable[[PromptSpec, int], Awaitable[RequestResult]]


class LevelStrategy(ABC):
    """How one level's requests are sent: the part closed and open loops do differently."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec

    @abstractmethod
    def max_in_flight(self) -> int:
        """The most requests in flight at once over the whole sweep."""

    @abstractmethod
    async def run_level(
        self,
        send: LevelSend,
        prompts: Sequence[PromptSpec],
        level_index: int,
        count: int | None,
        results: list[RequestResult],
    ) -> int:
        """Send one level's requests, appending each to `results` as it ends (kept if the level
        is cancelled); return how many arrivals had to wait for a free slot."""


class ClosedLoop(LevelStrategy):
    """Concurrency levels: N streams, each sending its next request when its last one ends."""

    def max_in_flight(self) -> int:
        return int(max(self.spec.levels))

    async def run_level(
        self,
        send: LevelSend,
        prompts: Sequence[PromptSpec],
        level_index: int,
        count: int | None,
        results: list[RequestResult],
    ) -> int:
        """Keep the level's streams busy until `count` are sent or duration_s has passed."""
        streams = int(self.spec.levels[level_index])
        duration_s = self.spec.duration_s
        loop = asyncio.get_running_loop()
        ends_by = loop.time() + duration_s if duration_s is not None else None
        sequence = itertools.count()

        async def stream() -> None:
            while True:
                number = next(sequence)
                if count is not None and number >= count:
                    return
                if ends_by is not None and loop.time() >= ends_by:
                    return
                results.append(await send(prompts[number % len(prompts)], number))

        await asyncio.gather(*(stream() for _ in range(streams)))
        return 0


class OpenLoop(LevelStrategy):
    """Rate levels: Poisson arrivals, never more than max_in_flight requests at once."""

    def max_in_flight(self) -> int:
        return self.spec.max_in_flight

    async def run_level(
        self,
        send: LevelSend,
        prompts: Sequence[PromptSpec],
        level_index: int,
        count: int | None,
        results: list[RequestResult],
    ) -> int:
        """Send a request at each arrival time; an arrival finding every slot busy waits."""
        spec = self.spec
        rate = spec.levels[level_index]
        arrivals_s = arrival_offsets_s(rate, spec.seed, level_index, count, spec.duration_s)
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(spec.max_in_flight)
        delayed = 0
        start = loop.time()

        async def one(number: int) -> None:
            try:
                results.append(await send(prompts[number % len(prompts)], number))
            finally:
                slots.release()

        tasks = []
        for number, at in enumerate(arrivals_s):
            wait_s = start + at - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if slots.locked():
                delayed += 1
            await slots.acquire()
            tasks.append(asyncio.create_task(one(number)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        return delayed


STRATEGIES: dict[str, type[LevelStrategy]] = {"concurrency": ClosedLoop, "rate": OpenLoop}


def arrival_offsets_s(
    rate: float, seed: int, level_index: int, count: int | None, duration_s: float | None
) -> list[float]:
    """Poisson arrival times (s after the level starts): the first at 0, then exponential gaps.

    Seeded by the suite's seed and the level, so a suite replays the same arrivals.
    """
    rng = random.Random(f"novabench-load:{seed}:{level_index}")
    offsets: list[float] = []
    at = 0.0
    while count is None or len(offsets) < count:
        if duration_s is not None and at >= duration_s:
            break
        offsets.append(at)
        at += rng.expovariate(rate)
    return offsets


class LoadSweep(Workload):
    """`modes: [load]`: each model's levels in order, until the last, saturation or failure.

    Models sharing a host are swept one after the other, so that one curve is not bent by
    another model's requests; separate hosts are independent machines, swept together.
    """

    mode = "load"

    def __init__(self, suite: Suite) -> None:
        super().__init__(suite)
        assert suite.load is not None  # the suite's validator requires it with modes: [load]
        self.spec = suite.load
        self.strategy = STRATEGIES[self.spec.kind](self.spec)
        self._prompts = suite.load_prompts()

    @property
    def prompts(self) -> Sequence[PromptSpec]:
        return self._prompts

    def planned(self) -> int | None:
        counts = [self.spec.requests_at(level) for level in self.spec.levels]
        return None if None in counts else sum(c for c in counts if c is not None)

    def max_in_flight(self) -> int:
        return self.strategy.max_in_flight()

    async def run(self, ctx: WorkloadContext) -> WorkloadOutcome:
        by_host: dict[str, list[Target]] = {}
        for target in ctx.targets:
            by_host.setdefault(target.host, []).append(target)

        async def sweep_host(targets: list[Target]) -> int:
            return sum([await self._sweep_model(ctx, target) for target in targets])

        counts = await asyncio.gather(*(sweep_host(ts) for ts in by_host.values()))
        return WorkloadOutcome(requests=sum(counts))

    async def _sweep_model(self, ctx: WorkloadContext, target: Target) -> int:
        """Run one model's levels in order; stop early on saturation or failure.

        Each finished level is stored (its results already are) and told to the observer.
        Returns how many requests the finished levels sent.
        """
        spec, limits = self.spec, self.spec.slo_limits()

        def record(level: LevelRecord, summary: LevelSummary) -> None:
            ctx.record("load_level", **level.as_dict())
            ctx.observer.level_finished(target.spec.name, target.host, summary)

        summaries: list[LevelSummary] = []
        for index in range(len(spec.levels)):
            level, finished = await self._level(ctx, target, index, record)
            summaries.append(summarize_level(level, finished, limits))
            stop = None
            if failing(summaries[-1]):
                stop = "failing"
            elif spec.early_stop and index < len(spec.levels) - 1 and saturated_at(summaries):
                stop = "saturated"
            summaries[-1] = with_stop_reason(summaries[-1], stop)
            record(replace(level, stop_reason=stop), summaries[-1])
            if stop:
                break
        return sum(s.requests for s in summaries)

    async def _level(
        self,
        ctx: WorkloadContext,
        target: Target,
        index: int,
        record: Callable[[LevelRecord, LevelSummary], None],
    ) -> tuple[LevelRecord, list[RequestResult]]:
        """Run one level: its record and its requests' results.

        Interrupted, the requests that finished are stored; so is the level they belong to.
        """
        spec = self.spec
        started_at, started_offset_s = utcnow(), ctx.now_offset_s()
        finished: list[RequestResult] = []
        level = functools.partial(
            level_record, target.spec.name, target.host, index, spec.kind, spec.levels[index],
            started_offset_s=started_offset_s, started_at=started_at,
        )  # fmt: skip

        async def send(prompt: PromptSpec, number: int) -> RequestResult:
            return await ctx.send(target, prompt, number, load_level=index)

        count = spec.requests_at(spec.levels[index])
        try:
            delayed = await self.strategy.run_level(send, self.prompts, index, count, finished)
        except asyncio.CancelledError:
            if finished:
                interrupted = level(finished, stop_reason="interrupted")
                record(interrupted, summarize_level(interrupted, finished, spec.slo_limits()))
            raise
        return level(finished, delayed_arrivals=delayed), finished
