"""The load-mode phase of `make perf`: the whole product path against the double's truth.

A real SuiteRunner runs a load suite (one concurrency level per run) with the live display
rendering to /dev/null, the resource sampler on and every result written to a DuckDB file. The
figures are then read back from that file (`Store.results`) and derived as novabench derives
them (`metrics.derive`, `load_stats.sweeps`), and compared with the double's own record of what
it did, keyed by the request's user text: every request gets its own prompt, so each stored row
maps to exactly one server record.

Definitions, beyond the paced levels' (tests/perf/harness.py):

- send time: `runner._t0 + start_offset_s` (perf_counter clock). The runner stamps
  start_offset_s when it creates the request's result, then calls the observer and the backend
  synchronously, and the backend stamps its own send time (the origin of the stored
  token_offsets_s and ttft_s) before its first await: the two stamps are microseconds apart, the
  runner's first. So the true TTFT is at most that much too long, never too short.
- CPU per token: this process's CPU (user + system, all threads: the event loop, the DuckDB
  writer, the resource sampler and the live display's refresh) from the run's start (after the
  preflight and the run row) to the end of the load phase (every result written), over every
  token streamed in that window, warm-up included.
- novabench's level figures: `load_stats.sweeps` on the stored rows, as the report and
  `runs --show` compute them: output tokens/s = Σ output tokens / (last request end − first
  request sent). The truth's aggregate: Σ tokens written / (last token write − first send).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from novabench.analysis.figures import quantile
from novabench.analysis.sweeps import sweeps
from novabench.config.reading import parse_suite
from novabench.config.suite import Suite
from novabench.console.live import LiveObserver
from novabench.run.runner import SuiteRunner
from novabench.storage.store import Store
from tests.perf.clients import Sample
from tests.perf.harness import PerfConfig, RunFigures, compare, fetch_timings, summarize
from tests.perf.server import FAST_MODEL, DoubleProcess

CLIENT = "novabench-load"  # RunFigures.client of the load-mode rows
TITLE = "novabench load mode: SuiteRunner, DuckDB store, live display, resource sampler"
WARMUP_PROMPT_ID = "warm-up"


@dataclass(frozen=True)
class LoadConfig:
    """The load-mode phase: concurrency levels (one run each) on the double's fast schedule."""

    levels: tuple[int, ...] = (512,)
    requests_per_level: int | None = None  # None: 2 × streams (1024 at 512)
    tokens: int = 200
    ttft_ms: float = 50.0
    interval_ms: float = 20.0  # the fast schedule (PerfConfig.fast_interval_ms)
    warmup: int = 1
    sample_interval_s: float = 0.25
    pin_cpus: bool = True
    rounds: int = 3  # runs per level: the spread between repeated runs, not one figure

    def requests_at(self, streams: int) -> int:
        return max(self.requests_per_level or 2 * streams, streams)


@dataclass
class LoadFigures:
    """One load level: truth against what novabench stored, and novabench's own level figures."""

    accuracy: RunFigures  # per-request comparison, as for the paced levels
    run_id: str
    status: str
    phase_wall_s: float  # run start (after preflight) to the load phase's end
    run_wall_s: float  # the whole SuiteRunner.run(), preflight and store included
    unclaimed: int  # server records of measured requests no stored row claimed
    stored_rows: int  # measured load rows read back from the DuckDB file
    samples: int  # resource samples stored during the run
    level_tokens_per_s: float | None  # novabench's output tokens/s of the level (sweeps)
    true_tokens_per_s: float | None  # Σ tokens written / (last write − first send)
    level_tokens_per_s_error_pct: float | None
    level_ttft_p50_ms: float | None  # novabench's own level percentiles
    level_ttft_p95_ms: float | None
    true_ttft_p95_ms: float | None  # the same percentile of the true TTFTs
    level_itl_p50_ms: float | None
    level_requests_per_s: float | None
    sampled_cpu_percent_mean: float | None  # what novabench's sampler saw (machine, server)
    sampled_server_cpu_percent_mean: float | None
    errors: list[str] = field(default_factory=list)

    @property
    def concurrency(self) -> int:
        return self.accuracy.concurrency

    def as_json(self) -> dict[str, Any]:
        out = {key: value for key, value in vars(self).items() if key != "accuracy"}
        out["accuracy"] = self.accuracy.as_json()
        out["errors"] = self.errors[:5]
        return out


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _WindowedObserver(LiveObserver):
    """The live display, also stamping this process's CPU and the server's over the phase."""

    def __init__(self, console: Console, server: psutil.Process) -> None:
        super().__init__(console)
        self.server = server
        self.start: tuple[float, float, float] | None = None  # wall, CPU, server CPU
        self.end: tuple[float, float, float] | None = None

    def _stamp(self) -> tuple[float, float, float]:
        times = self.server.cpu_times()
        return time.perf_counter(), _cpu_s(), float(times.user + times.system)

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        self.start = self._stamp()
        super().run_started(run_id, plan)

    def phase_finished(self, mode: str, wall_s: float) -> None:
        super().phase_finished(mode, wall_s)
        self.end = self._stamp()  # after the phase row, so after every result was written


def user_text(streams: int, number: int) -> str:
    return f"perf load c{streams} request {number}"


def load_suite_text(url: str, streams: int, requests: int, config: LoadConfig) -> str:
    """A load suite with one prompt per request, plus its own warm-up prompt."""
    ids = [f"r{number:05d}" for number in range(requests)]
    prompts = [f'  - {{id: {WARMUP_PROMPT_ID}, text: "perf load c{streams} warm-up"}}']
    prompts += [
        f'  - {{id: {prompt_id}, text: "{user_text(streams, number)}"}}'
        for number, prompt_id in enumerate(ids)
    ]
    return "\n".join(
        [
            f"name: perf-load-{streams}",
            f"host: {url}",
            f"models: [{FAST_MODEL}]",
            "modes: [load]",
            f"warmup: {config.warmup}",
            f"sample_interval_s: {config.sample_interval_s:g}",
            "load:",
            f"  concurrency: [{streams}]",
            f"  requests_per_level: {requests}",
            f"  prompts: [{', '.join(ids)}]",
            "prompts:",
            *prompts,
            "",
        ]
    )


def _run_level(
    suite: Suite, store: Store, server: psutil.Process
) -> tuple[SuiteRunner, _WindowedObserver, float]:
    with open(os.devnull, "w") as devnull:
        console = Console(file=devnull, force_terminal=True, width=120)
        observer = _WindowedObserver(console, server)
        with observer:
            runner = SuiteRunner(suite, store, observer=observer)
            started = time.perf_counter()
            asyncio.run(runner.run())
            return runner, observer, time.perf_counter() - started


def measure_level(
    config: LoadConfig, url: str, streams: int, store: Store, server: psutil.Process
) -> LoadFigures:
    """Run one level through SuiteRunner, read its rows back and compare them with the truth."""
    requests = config.requests_at(streams)
    suite = parse_suite(load_suite_text(url, streams, requests, config), f"<perf load {streams}>")
    text_by_id = {prompt.id: prompt.text for prompt in suite.prompts}
    fetch_timings(url)  # forget anything earlier
    runner, observer, run_wall_s = _run_level(suite, store, server)
    truth = fetch_timings(url)
    outcome = runner.outcome
    assert outcome is not None and observer.start is not None and observer.end is not None
    rows = store.results(outcome.run_id)
    measured = [row for row in rows if not row["is_warmup"] and not row["is_cold"]]
    samples = [
        Sample(
            user_text=text_by_id[row["prompt_id"]],
            # The runner's stamp on the perf_counter clock, which the double's truth shares.
            sent_ns=round((runner._t0 + row["start_offset_s"]) * 1e9),
            row=row,
            error=row["error"],
        )
        for row in measured
    ]
    wall_s = observer.end[0] - observer.start[0]
    record = compare(
        samples,
        truth,
        wall_s,
        observer.end[1] - observer.start[1],
        observer.end[2] - observer.start[2],
    )
    # CPU per token counts every token streamed in the window, the warm-up's too.
    record.tokens += sum(len(row["token_offsets_s"] or []) for row in rows if row["is_warmup"])
    perf = PerfConfig(ttft_ms=config.ttft_ms, fast_interval_ms=config.interval_ms)
    accuracy = summarize(perf, CLIENT, streams, [record], flood=False, fast=True)

    claimed = {sample.user_text for sample in samples}
    wanted = {user_text(streams, number) for number in range(requests)}
    level = _level_figures(store, outcome.run_id)
    true_tps = _true_aggregate_tokens_per_s(samples, truth)
    level_tps = level.get("output_tokens_per_s")
    true_ttfts = [t.ttft_true_ms for t in record.compared]
    return LoadFigures(
        accuracy=accuracy,
        run_id=outcome.run_id,
        status=outcome.status,
        phase_wall_s=wall_s,
        run_wall_s=run_wall_s,
        unclaimed=len((set(truth) & wanted) - claimed),
        stored_rows=len(measured),
        samples=len(store.samples(outcome.run_id)),
        level_tokens_per_s=level_tps,
        true_tokens_per_s=true_tps,
        level_tokens_per_s_error_pct=(
            100.0 * (level_tps - true_tps) / true_tps if level_tps and true_tps else None
        ),
        level_ttft_p50_ms=level.get("ttft_ms_p50"),
        level_ttft_p95_ms=level.get("ttft_ms_p95"),
        true_ttft_p95_ms=quantile(true_ttfts, 0.95),
        level_itl_p50_ms=level.get("itl_ms_p50"),
        level_requests_per_s=level.get("requests_per_s"),
        sampled_cpu_percent_mean=level.get("cpu_percent_mean"),
        sampled_server_cpu_percent_mean=level.get("server_cpu_percent_mean"),
        errors=record.errors,
    )


def _level_figures(store: Store, run_id: str) -> dict[str, Any]:
    """novabench's own summary of the run's single level, from what it stored."""
    facts = store.get_run(run_id).facts or {}
    found = sweeps(
        store.load_levels(run_id),
        store.results(run_id),
        samples=store.samples(run_id),
        load=facts.get("load"),
    )
    levels = [summary for summaries in found.values() for summary in summaries]
    return levels[0].as_dict() if len(levels) == 1 else {}


def _true_aggregate_tokens_per_s(
    samples: list[Sample], truth: dict[str, dict[str, Any]]
) -> float | None:
    """Σ tokens the server wrote / (its last token write − the first request's send)."""
    records = [truth[s.user_text] for s in samples if s.user_text in truth and s.error is None]
    writes = [record["token_write_ns"] for record in records if record["token_write_ns"]]
    if not writes or not samples:
        return None
    span_ns = max(w[-1] for w in writes) - min(s.sent_ns for s in samples)
    return sum(len(w) for w in writes) * 1e9 / span_ns if span_ns > 0 else None


def run_load_phase(
    config: LoadConfig, progress: Callable[[str], None] | None = None
) -> list[LoadFigures]:
    """Start the double, run each level as its own load suite, and return the figures."""
    if not config.levels:
        return []
    cpus = sorted(os.sched_getaffinity(0))
    pin = config.pin_cpus and len(cpus) >= 2
    figures: list[LoadFigures] = []
    with (
        tempfile.TemporaryDirectory(prefix="novabench-perf-") as folder,
        DoubleProcess(
            config.tokens,
            config.ttft_ms,
            config.interval_ms,
            num_parallel=max(config.levels),
            cpu=cpus[-1] if pin else None,
            fast_interval_ms=config.interval_ms,
        ) as double,
    ):
        server = psutil.Process(double.pid)
        store = Store(Path(folder) / "db.duckdb")
        try:
            if pin:
                # Before the runner starts its threads (DuckDB, sampler, display): they inherit it.
                os.sched_setaffinity(0, {cpus[0]})
            for streams, number in itertools.product(config.levels, range(config.rounds)):
                if progress is not None:
                    progress(
                        f"load mode, {streams} streams, round {number + 1}/{config.rounds}: "
                        f"SuiteRunner, {config.requests_at(streams)} requests, "
                        f"{config.interval_ms:g} ms/token"
                    )
                figures.append(measure_level(config, double.url, streams, store, server))
        finally:
            if pin:
                os.sched_setaffinity(0, set(cpus))
    return figures
