"""Load mode: sweep concurrency levels (closed loop) or arrival rates (open loop, Poisson).

A concurrency level keeps N streams busy: each sends its next request as soon as its last one
ends. A rate level sends requests at Poisson arrival times whatever the server does, so a server
that cannot keep up builds a queue (capped at `max_in_flight`; arrivals beyond it wait and are
counted as delayed). Each level's requests are stored as they finish, like any others.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from novabench.analysis.sweeps import (
    failing,
    level_record,
    saturated_at,
    summarize_level,
    with_stop_reason,
)
from novabench.config.suite import PromptSpec
from novabench.config.workload import LoadSpec
from novabench.records import LevelRecord, LevelSummary, RequestResult, utcnow

# Sends one request: (prompt, sequence number in the level, level index) -> its result.
Send = Callable[[PromptSpec, int, int], Awaitable[RequestResult]]


@dataclass
class LevelOutcome:
    """The requests of one level and how many arrivals had to wait for a free slot."""

    results: list[RequestResult]
    delayed_arrivals: int = 0


async def closed_loop(
    send: Send,
    streams: int,
    prompts: Sequence[PromptSpec],
    level_index: int,
    count: int | None,
    duration_s: float | None,
    results: list[RequestResult],
) -> LevelOutcome:
    """Keep `streams` requests in flight until `count` are sent or `duration_s` has passed.

    Finished requests are appended to `results` as they end (kept if the level is cancelled).
    """
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
            results.append(await send(prompts[number % len(prompts)], number, level_index))

    await asyncio.gather(*(stream() for _ in range(streams)))
    return LevelOutcome(results)


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


async def open_loop(
    send: Send,
    arrivals_s: Sequence[float],
    prompts: Sequence[PromptSpec],
    level_index: int,
    max_in_flight: int,
    results: list[RequestResult],
) -> LevelOutcome:
    """Send a request at each arrival time, never more than `max_in_flight` at once.

    Finished requests are appended to `results` as they end (kept if the level is cancelled).
    """
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(max_in_flight)
    delayed = 0
    start = loop.time()

    async def one(number: int) -> None:
        try:
            results.append(await send(prompts[number % len(prompts)], number, level_index))
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
    return LevelOutcome(results, delayed)


async def sweep(
    spec: LoadSpec,
    prompts: Sequence[PromptSpec],
    send: Send,
    now_offset_s: Callable[[], float],
    record_level: Callable[[LevelRecord, LevelSummary], Awaitable[None]],
    model: str,
    host: str,
) -> list[LevelSummary]:
    """Run the levels in order for one model; stop early on saturation or failure.

    `record_level(level, summary)` stores a finished level (its results are already submitted).
    Returns the level summaries.
    """
    limits = spec.slo_limits()
    summaries: list[LevelSummary] = []
    for index, value in enumerate(spec.levels):
        count = spec.requests_at(value)
        started_at, started_offset_s = utcnow(), now_offset_s()
        finished: list[RequestResult] = []

        level = functools.partial(
            level_record, model, host, index, spec.kind, value,
            started_offset_s=started_offset_s, started_at=started_at,
        )  # fmt: skip

        try:
            if spec.kind == "concurrency":
                outcome = await closed_loop(
                    send, int(value), prompts, index, count, spec.duration_s, finished
                )
            else:
                arrivals = arrival_offsets_s(value, spec.seed, index, count, spec.duration_s)
                outcome = await open_loop(
                    send, arrivals, prompts, index, spec.max_in_flight, finished
                )
        except asyncio.CancelledError:
            # Interrupted: the requests that finished are stored; so is the level they belong to.
            if finished:
                record = level(finished, stop_reason="interrupted")
                summary = summarize_level(record, finished, limits)
                await asyncio.shield(record_level(record, summary))
            raise
        record = level(outcome.results, delayed_arrivals=outcome.delayed_arrivals)
        summaries.append(summarize_level(record, outcome.results, limits))
        stop = None
        if failing(summaries[-1]):
            stop = "failing"
        elif spec.early_stop and index < len(spec.levels) - 1 and saturated_at(summaries):
            stop = "saturated"
        summaries[-1] = with_stop_reason(summaries[-1], stop)
        await record_level(replace(record, stop_reason=stop), summaries[-1])
        if stop:
            break
    return summaries
