"""Run the clients against the double at each concurrency and compare with the ground truth.

Definitions (both processes read CLOCK_MONOTONIC: time.perf_counter on Linux):

- configured TTFT: the schedule, from the server reading the request to its first token write.
- server TTFT: what the server did, first token write − request read (shows the server slipping).
- true TTFT: first token write (server clock) − the moment the client was called (client clock).
  It is what a perfect client would report for novabench's own definition ("request sent →
  first content chunk"), so TTFT error = measured − true is exactly how late the client noticed
  the first token. measured − server TTFT also counts the send path (client sent → server read).
- true ITL: (last token write − first token write) / (n − 1), as derive() does on arrivals.
- true tokens/s: n / (last token write − first token write), the formula derive() applies to
  the arrival times, so the error is the measurement's and not the formula's.
- delivery lag: client arrival time − server write time, for every token.
- CPU per token: this process's user + system CPU (getrusage: all threads, so the live
  display's refresh thread counts) during the streaming phase only, over the tokens received.
  Paced streams make it mostly the cost of waking up per token, which depends on how the
  streams' ticks line up; the flood phase (tokens back to back, read in batches) measures the
  parsing cost alone.
- active streams: the server's generation time summed over requests, over the wall time: the
  concurrency the server really saw.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import resource
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import psutil

from novabench.analysis.figures import derive, quantile
from tests.perf.clients import CLIENT_NAMES, Sample, make_client
from tests.perf.server import FAST_MODEL, FLOOD_MODEL, MODEL, DoubleProcess

LEVEL_TIMEOUT_S = 600.0
FETCH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PerfConfig:
    """What to run: the schedule, the concurrency levels, the clients and the repetitions."""

    levels: tuple[int, ...] = (1, 16, 64, 256)
    tokens: int = 200
    interval_ms: float = 2.0
    ttft_ms: float = 50.0
    requests_per_level: int | None = None  # None: max(10, 2 × concurrency)
    rounds: int = 3  # each client runs each level this often, taking turns with the others
    clients: tuple[str, ...] = CLIENT_NAMES
    pin_cpus: bool = True  # server on one core, clients on another, when there are two
    flood_streams: int = 8  # 0 skips the flood phase
    flood_requests: int = 16  # per round, FLOOD_TOKENS tokens each
    # The big level(s) on the "fast" schedule: the same TTFT and answer length, one token every
    # fast_interval_ms. 512 streams x 2 ms would offer 256,000 tokens/s, more than any Python
    # process can write or read on one core; 512 x 20 ms is 25,600 tokens/s, still far beyond
    # what a real Ollama box streams (README, "Measurement accuracy"). One request per stream
    # per round: all of them start at once, the hardest moment for TTFT.
    fast_levels: tuple[int, ...] = (512,)
    fast_interval_ms: float = 20.0

    def requests_at(self, concurrency: int) -> int:
        """Requests per round at one level: at least one per stream, so every stream is used."""
        wanted = self.requests_per_level or max(10, 2 * concurrency)
        return max(wanted, concurrency)


@dataclass
class RequestTruth:
    """One request's measured figures beside what the server really did (ms, tokens/s)."""

    ttft_server_ms: float
    ttft_true_ms: float
    ttft_measured_ms: float
    transit_ms: float  # client sent → server read the request
    itl_true_ms: float
    itl_measured_ms: float | None  # None: every token arrived in one read (the flood)
    tps_true: float
    tps_measured: float | None
    lags_ms: list[float]


@dataclass
class RoundRecord:
    """One client at one level, one round: its requests and what the streaming phase cost."""

    requests: int
    tokens: int
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float
    compared: list[RequestTruth] = field(default_factory=list)
    failed: int = 0
    mismatched: int = 0  # token counts differ between client and server
    buffered_writes: int = 0
    server_stream_s: float = 0.0  # Σ (last token write − request read)
    errors: list[str] = field(default_factory=list)

    @property
    def cpu_us_per_token(self) -> float | None:
        return 1e6 * self.client_cpu_s / self.tokens if self.tokens else None


@dataclass
class RunFigures:
    """One client at one concurrency, over all rounds: truth against measurement."""

    client: str
    concurrency: int
    flood: bool  # the unpaced phase: only its CPU per token is of interest
    fast: bool  # a fast level (PerfConfig.fast_levels), on the fast schedule
    requests: int
    failed: int
    tokens: int
    cpu_us_per_token: float | None  # median over rounds
    cpu_us_per_token_rounds: list[float]
    client_cpu_pct: float  # client CPU / wall, over all rounds
    server_cpu_pct: float
    active_streams: float  # mean concurrent generations at the server
    ttft_cfg_ms: float
    ttft_server_ms: float | None  # medians over requests from here on
    ttft_true_ms: float | None
    ttft_measured_ms: float | None
    ttft_error_ms: float | None  # median of (measured − true): the first token's delivery lag
    ttft_error_p95_ms: float | None
    ttft_error_pct: float | None  # ttft_error_ms / ttft_true_ms
    ttft_vs_server_ms: float | None  # median of (measured − server TTFT): send path included
    transit_ms: float | None
    itl_cfg_ms: float
    itl_true_ms: float | None
    itl_measured_ms: float | None
    itl_error_pct: float | None  # median of (measured − true) / true
    tps_true: float | None
    tps_measured: float | None
    tps_error_pct: float | None
    lag_p50_ms: float | None  # over every token of every request
    lag_p95_ms: float | None
    buffered_writes: int
    mismatched: int
    errors: list[str] = field(default_factory=list)
    # Each round's own figure (the same definitions over that round's requests): the spread
    # between repeated runs, where the pooled figures above give one number.
    ttft_error_pct_rounds: list[float] = field(default_factory=list)
    itl_error_pct_rounds: list[float] = field(default_factory=list)
    tps_error_pct_rounds: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["errors"] = self.errors[:5]
        return out


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _median(values: Iterable[float]) -> float | None:
    items = list(values)
    return statistics.median(items) if items else None


async def _stream_level(
    client_name: str,
    url: str,
    model: str,
    concurrency: int,
    requests: int,
    tag: str,
    server: psutil.Process,
) -> tuple[list[Sample], float, float, float]:
    """Warm the client up, then stream `requests` with `concurrency` in flight (closed loop).

    Returns the samples, then the wall time, this process's CPU time and the server's CPU time
    of the streaming phase.
    """
    client = make_client(client_name)
    await client.open(url, model, requests)
    try:
        warm = await client.stream(f"{tag} warm-up")
        if warm.error is not None:
            raise RuntimeError(f"{client_name}: the warm-up request failed: {warm.error}")
        numbers = itertools.count()
        samples: list[Sample] = []

        async def worker() -> None:
            while (index := next(numbers)) < requests:
                samples.append(await client.stream(f"{tag} request {index}"))

        gc.collect()
        server_start = _server_cpu_s(server)
        wall_start, cpu_start = time.perf_counter(), _cpu_s()
        async with asyncio.timeout(LEVEL_TIMEOUT_S):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu_s, wall_s = _cpu_s() - cpu_start, time.perf_counter() - wall_start
        server_cpu_s = _server_cpu_s(server) - server_start
    finally:
        await client.close()
    return samples, wall_s, cpu_s, server_cpu_s


def fetch_timings(url: str) -> dict[str, dict[str, Any]]:
    """The double's per-request ground truth by user text, forgetting it on the server."""
    response = httpx.get(f"{url}/_double/timings?clear=1", timeout=FETCH_TIMEOUT_S, trust_env=False)
    response.raise_for_status()
    return {entry["user_text"]: entry for entry in response.json()["requests"]}


def compare(
    samples: list[Sample],
    truth: dict[str, dict[str, Any]],
    wall_s: float,
    client_cpu_s: float,
    server_cpu_s: float,
) -> RoundRecord:
    """Each request's measured figures (from derive()) against what the server really did."""
    record = RoundRecord(len(samples), 0, wall_s, client_cpu_s, server_cpu_s)
    for sample in samples:
        offsets: list[float] = sample.row.get("token_offsets_s") or []
        record.tokens += len(offsets)
        server = truth.get(sample.user_text)
        if sample.error is not None or server is None:
            record.failed += 1
            record.errors.append(sample.error or f"no server record of {sample.user_text!r}")
            continue
        writes: list[int] = server["token_write_ns"]
        record.buffered_writes += server["buffered_writes"]
        if writes:
            record.server_stream_s += (writes[-1] - server["received_ns"]) / 1e9
        if len(writes) != len(offsets) or len(writes) < 2:
            record.mismatched += 1
            continue
        figures = derive(timed(sample.row))
        sent_ns = sample.sent_ns
        span_ns = writes[-1] - writes[0]
        itl_true_ms = span_ns / 1e6 / (len(writes) - 1)
        record.compared.append(
            RequestTruth(
                ttft_server_ms=(writes[0] - server["received_ns"]) / 1e6,
                ttft_true_ms=(writes[0] - sent_ns) / 1e6,
                ttft_measured_ms=figures["ttft_ms"],
                transit_ms=(server["received_ns"] - sent_ns) / 1e6,
                itl_true_ms=itl_true_ms,
                itl_measured_ms=figures["itl_ms"],
                tps_true=len(writes) * 1e9 / span_ns,
                tps_measured=figures["client_tokens_per_s"],
                lags_ms=[
                    (sent_ns + offset * 1e9 - written) / 1e6
                    for offset, written in zip(offsets, writes, strict=True)
                ],
            )
        )
    return record


def timed(row: dict[str, Any]) -> SimpleNamespace:
    """A client's row (RequestResult field names) as derive() reads it: absent facts are None."""
    facts = dict.fromkeys(
        ("ttft_s", "e2e_s", "eval_count", "eval_duration_ns", "prompt_eval_count")
        + ("prompt_eval_duration_ns", "load_duration_ns", "total_duration_ns")
    )
    return SimpleNamespace(**{**facts, "token_offsets_s": [], **row})


def error_pcts(compared: list[RequestTruth]) -> tuple[float | None, float | None, float | None]:
    """TTFT, ITL and tokens/s error (%) of these requests, as RunFigures defines them."""
    spanned = [t for t in compared if t.itl_measured_ms is not None and t.tps_measured]
    ttft_true = _median(t.ttft_true_ms for t in compared)
    ttft_error = _median(t.ttft_measured_ms - t.ttft_true_ms for t in compared)
    ttft_pct = 100.0 * ttft_error / ttft_true if ttft_error is not None and ttft_true else None
    itl_pct = _median(
        100.0 * (t.itl_measured_ms - t.itl_true_ms) / t.itl_true_ms
        for t in spanned
        if t.itl_measured_ms is not None
    )
    tps_pct = _median(
        100.0 * (t.tps_measured - t.tps_true) / t.tps_true for t in spanned if t.tps_measured
    )
    return ttft_pct, itl_pct, tps_pct


def summarize(
    config: PerfConfig,
    client: str,
    concurrency: int,
    rounds: list[RoundRecord],
    flood: bool,
    fast: bool = False,
) -> RunFigures:
    """Pool the rounds' requests; CPU per token is the median of the rounds'."""
    compared = [truth for record in rounds for truth in record.compared]
    # In the flood a whole answer can arrive in one read: no span, so no ITL or tokens/s.
    spanned = [t for t in compared if t.itl_measured_ms is not None and t.tps_measured]
    lags = [lag for truth in compared for lag in truth.lags_ms]
    ttft_errors = [t.ttft_measured_ms - t.ttft_true_ms for t in compared]
    ttft_true = _median(t.ttft_true_ms for t in compared)
    ttft_error = _median(ttft_errors)
    ttft_pct, itl_pct, tps_pct = error_pcts(compared)
    per_round = [error_pcts(record.compared) for record in rounds]
    wall_s = sum(record.wall_s for record in rounds)
    cpu_rounds = [r.cpu_us_per_token for r in rounds if r.cpu_us_per_token is not None]
    return RunFigures(
        client=client,
        concurrency=concurrency,
        flood=flood,
        fast=fast,
        requests=sum(record.requests for record in rounds),
        failed=sum(record.failed for record in rounds),
        tokens=sum(record.tokens for record in rounds),
        cpu_us_per_token=_median(cpu_rounds),
        cpu_us_per_token_rounds=cpu_rounds,
        client_cpu_pct=100.0 * sum(r.client_cpu_s for r in rounds) / wall_s if wall_s else 0.0,
        server_cpu_pct=100.0 * sum(r.server_cpu_s for r in rounds) / wall_s if wall_s else 0.0,
        active_streams=sum(r.server_stream_s for r in rounds) / wall_s if wall_s else 0.0,
        ttft_cfg_ms=config.ttft_ms,
        ttft_server_ms=_median(t.ttft_server_ms for t in compared),
        ttft_true_ms=ttft_true,
        ttft_measured_ms=_median(t.ttft_measured_ms for t in compared),
        ttft_error_ms=ttft_error,
        ttft_error_p95_ms=quantile(ttft_errors, 0.95),
        ttft_error_pct=ttft_pct,
        ttft_vs_server_ms=_median(t.ttft_measured_ms - t.ttft_server_ms for t in compared),
        transit_ms=_median(t.transit_ms for t in compared),
        itl_cfg_ms=config.fast_interval_ms if fast else config.interval_ms,
        itl_true_ms=_median(t.itl_true_ms for t in compared),
        itl_measured_ms=_median(t.itl_measured_ms for t in spanned if t.itl_measured_ms),
        itl_error_pct=itl_pct,
        tps_true=_median(t.tps_true for t in compared),
        tps_measured=_median(t.tps_measured for t in spanned if t.tps_measured),
        tps_error_pct=tps_pct,
        lag_p50_ms=quantile(lags, 0.50),
        lag_p95_ms=quantile(lags, 0.95),
        buffered_writes=sum(record.buffered_writes for record in rounds),
        mismatched=sum(record.mismatched for record in rounds),
        errors=[error for record in rounds for error in record.errors],
        ttft_error_pct_rounds=[ttft for ttft, _, _ in per_round if ttft is not None],
        itl_error_pct_rounds=[itl for _, itl, _ in per_round if itl is not None],
        tps_error_pct_rounds=[tps for _, _, tps in per_round if tps is not None],
    )


def run_perf(config: PerfConfig, progress: Callable[[str], None] | None = None) -> list[RunFigures]:
    """Start the double, run every client at every level, and return the figures.

    Within a level the clients take turns, round after round, so drift on the machine touches
    them all alike. `progress(message)` is called before each run when given.
    """
    for name in config.clients:
        make_client(name)  # an unknown name fails here, before the double starts
    cpus = sorted(os.sched_getaffinity(0))
    pin = config.pin_cpus and len(cpus) >= 2
    figures: list[RunFigures] = []
    with DoubleProcess(
        config.tokens,
        config.ttft_ms,
        config.interval_ms,
        num_parallel=max(config.levels + config.fast_levels),
        cpu=cpus[-1] if pin else None,
        fast_interval_ms=config.fast_interval_ms,
    ) as double:
        server = psutil.Process(double.pid)
        try:
            if pin:
                os.sched_setaffinity(0, {cpus[0]})
            phases = [
                (level, MODEL, config.requests_at(level), False, False) for level in config.levels
            ]
            phases += [(level, FAST_MODEL, level, False, True) for level in config.fast_levels]
            if config.flood_streams:
                phases.append(
                    (config.flood_streams, FLOOD_MODEL, config.flood_requests, True, False)
                )
            for concurrency, model, requests, flood, fast in phases:
                label = f"{concurrency} streams"
                if flood:
                    label = f"flood, {label}"
                elif fast:
                    label = f"{label}, fast schedule ({config.fast_interval_ms:g} ms/token)"
                rounds: dict[str, list[RoundRecord]] = {name: [] for name in config.clients}
                for round_index, name in itertools.product(range(config.rounds), config.clients):
                    if progress is not None:
                        progress(
                            f"{label}, round {round_index + 1}/{config.rounds}: "
                            f"{name}, {requests} requests"
                        )
                    fetch_timings(double.url)  # forget anything earlier
                    tag = f"perf {name} {model} c{concurrency} r{round_index}"
                    samples, wall_s, cpu_s, server_cpu_s = asyncio.run(
                        _stream_level(name, double.url, model, concurrency, requests, tag, server)
                    )
                    truth = fetch_timings(double.url)
                    rounds[name].append(compare(samples, truth, wall_s, cpu_s, server_cpu_s))
                for name in config.clients:
                    figures.append(summarize(config, name, concurrency, rounds[name], flood, fast))
        finally:
            if pin:
                os.sched_setaffinity(0, set(cpus))
    return figures
