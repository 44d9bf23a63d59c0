"""How long the event loop is held up while novabench streams, with the live display on and off.

A probe task sleeps 1 ms on the event loop again and again and records how late it wakes (the
overshoot); novabench's OllamaBackend streams from the double at each level meanwhile, with a
real rich live display rendering to /dev/null or without one. Whatever holds the loop (the
client's own work on tokens, the display's refresh thread holding the GIL, anything else on
the core) shows in the overshoot; display on − off is the display's share. Each refresh of the
display is timed too: its wall time and the CPU time of the refresh thread (time.thread_time),
which is how long it held the GIL at most.

`make perf` runs it after the accuracy levels (`--lag-levels`); `python -m tests.perf.looplag`
runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from novabench.analysis.figures import quantile
from tests.perf.clients import NovabenchClient
from tests.perf.harness import LEVEL_TIMEOUT_S, fetch_timings
from tests.perf.server import FAST_MODEL, MODEL, DoubleProcess

PROBE_SLEEP_S = 0.001
STALL_MS = 1.0  # an overshoot above this counts as a stall


@dataclass(frozen=True)
class LagConfig:
    """Levels on the 2 ms schedule up to 256 streams, the fast (20 ms) one above, as make perf."""

    levels: tuple[int, ...] = (8, 64, 256, 512)
    fast_above: int = 256  # levels above this stream on the fast schedule, one request each
    rounds: int = 3
    tokens: int = 200
    ttft_ms: float = 50.0
    interval_ms: float = 2.0
    fast_interval_ms: float = 20.0
    pin_cpus: bool = True

    def requests_at(self, streams: int) -> int:
        return streams if streams > self.fast_above else max(10, 2 * streams)


@dataclass
class LagRound:
    """One round at one level, display on or off: every probe overshoot and every refresh."""

    overshoot_ms: list[float]
    wall_s: float
    refresh_wall_ms: list[float] = field(default_factory=list)
    refresh_cpu_ms: list[float] = field(default_factory=list)
    failed: int = 0


@dataclass
class LagFigures:
    """One level with the display on or off, pooled over the rounds (milliseconds)."""

    streams: int
    display: bool
    rounds: int
    probes: int
    overshoot_p50_ms: float | None
    overshoot_p99_ms: float | None
    overshoot_p999_ms: float | None
    overshoot_max_ms: float | None
    stalls_per_s: float  # overshoots above STALL_MS per second of streaming
    p99_rounds_ms: list[float]  # each round's own p99: the spread between rounds
    refreshes: int
    refresh_wall_p50_ms: float | None
    refresh_wall_max_ms: float | None
    refresh_cpu_p50_ms: float | None
    refresh_cpu_max_ms: float | None
    failed: int

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def _time_refreshes(client: NovabenchClient, record: LagRound) -> None:
    """Time every refresh of the client's live display (rich's refresh thread calls it)."""
    assert client.observer is not None
    live = client.observer.live
    refresh = live.refresh

    def timed_refresh() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        refresh()
        record.refresh_cpu_ms.append(1e3 * (time.thread_time() - cpu))
        record.refresh_wall_ms.append(1e3 * (time.perf_counter() - wall))

    live.refresh = timed_refresh  # type: ignore[method-assign]


async def _probe(overshoots_ms: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(PROBE_SLEEP_S)
        overshoots_ms.append(1e3 * (time.perf_counter() - started - PROBE_SLEEP_S))


async def _round(
    url: str, model: str, streams: int, requests: int, display: bool, tag: str
) -> LagRound:
    client = NovabenchClient(live_display=display)
    await client.open(url, model, requests)
    record = LagRound([], 0.0)
    try:
        warm = await client.stream(f"{tag} warm-up")
        if warm.error is not None:
            raise RuntimeError(f"the warm-up request failed: {warm.error}")
        if display:
            _time_refreshes(client, record)
        numbers = itertools.count()

        async def worker() -> None:
            while (index := next(numbers)) < requests:
                sample = await client.stream(f"{tag} request {index}")
                record.failed += sample.error is not None

        stop = asyncio.Event()
        probe = asyncio.create_task(_probe(record.overshoot_ms, stop))
        started = time.perf_counter()
        async with asyncio.timeout(LEVEL_TIMEOUT_S):
            await asyncio.gather(*(worker() for _ in range(streams)))
        record.wall_s = time.perf_counter() - started
        stop.set()
        await probe
    finally:
        await client.close()
    return record


def _ms(values: list[float], q: float) -> float | None:
    return quantile(values, q)


def summarize_lag(streams: int, display: bool, rounds: list[LagRound]) -> LagFigures:
    overshoots = [value for record in rounds for value in record.overshoot_ms]
    walls = [value for record in rounds for value in record.refresh_wall_ms]
    cpus = [value for record in rounds for value in record.refresh_cpu_ms]
    wall_s = sum(record.wall_s for record in rounds)
    p99s = [_ms(record.overshoot_ms, 0.99) for record in rounds]
    return LagFigures(
        streams=streams,
        display=display,
        rounds=len(rounds),
        probes=len(overshoots),
        overshoot_p50_ms=_ms(overshoots, 0.50),
        overshoot_p99_ms=_ms(overshoots, 0.99),
        overshoot_p999_ms=_ms(overshoots, 0.999),
        overshoot_max_ms=max(overshoots, default=None),
        stalls_per_s=sum(value > STALL_MS for value in overshoots) / wall_s if wall_s else 0.0,
        p99_rounds_ms=[value for value in p99s if value is not None],
        refreshes=len(walls),
        refresh_wall_p50_ms=_ms(walls, 0.50),
        refresh_wall_max_ms=max(walls, default=None),
        refresh_cpu_p50_ms=_ms(cpus, 0.50),
        refresh_cpu_max_ms=max(cpus, default=None),
        failed=sum(record.failed for record in rounds),
    )


def run_lag(config: LagConfig, progress: Callable[[str], None] | None = None) -> list[LagFigures]:
    """Start the double; at each level, display off and on take turns, round after round."""
    if not config.levels:
        return []
    cpus = sorted(os.sched_getaffinity(0))
    pin = config.pin_cpus and len(cpus) >= 2
    figures: list[LagFigures] = []
    with DoubleProcess(
        config.tokens,
        config.ttft_ms,
        config.interval_ms,
        num_parallel=max(config.levels),
        cpu=cpus[-1] if pin else None,
        fast_interval_ms=config.fast_interval_ms,
    ) as double:
        try:
            if pin:
                os.sched_setaffinity(0, {cpus[0]})
            for streams in config.levels:
                model = FAST_MODEL if streams > config.fast_above else MODEL
                requests = config.requests_at(streams)
                rounds: dict[bool, list[LagRound]] = {False: [], True: []}
                for number, display in itertools.product(range(config.rounds), (False, True)):
                    if progress is not None:
                        progress(
                            f"loop lag, {streams} streams ({model}), round "
                            f"{number + 1}/{config.rounds}: display {'on' if display else 'off'}"
                        )
                    fetch_timings(double.url)  # the double forgets earlier requests
                    tag = f"lag {streams} {display} r{number}"
                    rounds[display].append(
                        asyncio.run(_round(double.url, model, streams, requests, display, tag))
                    )
                for display in (False, True):
                    figures.append(summarize_lag(streams, display, rounds[display]))
        finally:
            if pin:
                os.sched_setaffinity(0, set(cpus))
    return figures


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _spread(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def lag_table(figures: list[LagFigures]) -> Table:
    """Overshoot of a 1 ms sleep on the event loop, and the display's refreshes, per level."""
    table = Table(
        title=f"Event-loop lag: overshoot of a {PROBE_SLEEP_S * 1e3:g} ms sleep while streaming "
        "(ms), display off and on; refreshes timed on rich's thread",
        title_justify="left",
        padding=(0, 1),
    )
    for header in (
        "streams",
        "display",
        "probes",
        "p50",
        "p99",
        "p99.9",
        "max",
        f"stalls > {STALL_MS:g} ms\nper s",
        "p99 of each round\nmin / median / max",
        "refreshes",
        "refresh wall\np50 / max",
        "refresh CPU\np50 / max",
    ):
        table.add_column(header, justify="right")
    for row in figures:
        failed = f" ({row.failed} failed)" if row.failed else ""
        table.add_row(
            str(row.streams),
            ("on" if row.display else "off") + failed,
            str(row.probes),
            _f(row.overshoot_p50_ms, 3),
            _f(row.overshoot_p99_ms),
            _f(row.overshoot_p999_ms),
            _f(row.overshoot_max_ms),
            _f(row.stalls_per_s, 1),
            _spread(row.p99_rounds_ms),
            str(row.refreshes) if row.display else "–",
            f"{_f(row.refresh_wall_p50_ms, 3)} / {_f(row.refresh_wall_max_ms)}"
            if row.display
            else "–",
            f"{_f(row.refresh_cpu_p50_ms, 3)} / {_f(row.refresh_cpu_max_ms)}"
            if row.display
            else "–",
        )
    return table


def main(argv: list[str] | None = None) -> int:
    from tests.perf.__main__ import _fast_levels, _positive  # the same argument checks

    parser = argparse.ArgumentParser(
        prog="python -m tests.perf.looplag",
        description="How late a 1 ms sleep on the event loop wakes while novabench streams from "
        "the double, with the live display on and off.",
    )
    parser.add_argument("--levels", type=_fast_levels, default=LagConfig.levels)
    parser.add_argument("--rounds", type=_positive(int), default=LagConfig.rounds)
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    args = parser.parse_args(argv)
    config = LagConfig(levels=args.levels, rounds=args.rounds, pin_cpus=not args.no_pin)
    console = Console(width=None if sys.stdout.isatty() else 170)
    load_before = os.getloadavg()[0]
    figures = run_lag(config, progress=lambda message: console.print(f"[dim]{message}[/]"))
    console.print(lag_table(figures))
    console.print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
