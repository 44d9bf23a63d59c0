"""The benchmark's tables, the verdict on each target, and reports/perf.json."""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tests.perf.clients import make_client
from tests.perf.harness import PerfConfig, RunFigures
from tests.perf.loadmode import CLIENT as CLIENT_LOAD
from tests.perf.loadmode import TITLE as LOAD_TITLE
from tests.perf.loadmode import LoadConfig, LoadFigures
from tests.perf.looplag import LagFigures, lag_table
from tests.perf.server import FLOOD_TOKENS
from tests.perf.spread import as_accurate_as_peer, spread_table

FORMAT_VERSION = 1
# The targets.
TTFT_ERROR_MS_AT_1 = 1.0
TTFT_ERROR_PCT_AT_256 = 5.0
TPS_ERROR_PCT_AT_1 = 1.0
CPU_RATIO_TO_OLLAMA = 1.5
# The fast level's target: TTFT, ITL and tokens/s each within this of the truth.
TIMING_ERROR_PCT_FAST = 5.0
TARGET_CLIENT = "novabench-live"  # novabench as `novabench run` uses it: live display on
# The load-mode phase's target: the whole product path at this many streams, errors within 5%.
LOAD_TARGET_STREAMS = 512

DEFINITIONS = {
    "ttft_server": "server: first token write − request read (what the double did)",
    "ttft_true": "server first token write − client sent (a perfect client's TTFT)",
    "ttft_error": "measured − true, median over requests: the first token's delivery lag",
    "ttft_vs_server": "measured − server TTFT: also counts the send path (sent → server read)",
    "itl_true": "(server last token write − first token write) / (n − 1)",
    "tps_true": "n / (server last token write − first token write), derive()'s formula",
    "lag": "client arrival − server write, every token",
    "cpu_per_token": "client process CPU (user + system, all threads) / tokens, streaming only",
    "flood": "tokens written back to back (no schedule), read in batches: parsing cost alone",
    "active_streams": "Σ server generation time (request read → last token) / wall time",
    "load_sent": "load mode: runner._t0 + stored start_offset_s (perf_counter clock); the runner "
    "stamps it synchronously, microseconds before the backend's own send stamp",
    "load_cpu_per_token": "load mode: whole process CPU (event loop, DuckDB writer, sampler, live "
    "display) from run start (after preflight) to the phase's end, / every token incl. warm-up",
    "load_level_tps": "load mode: novabench's level output tokens/s (load_stats.sweeps on the "
    "stored rows) against Σ tokens written / (last token write − first send)",
}


@dataclass
class Verdict:
    """One target: met or not, with the figure that decides it."""

    target: str
    met: bool | None  # None: the run had no level for it
    figure: str

    def line(self) -> str:
        state = {True: "[green]met    [/]", False: "[red]missed [/]", None: "[yellow]not run[/]"}
        return f"  {state[self.met]} {self.target}: {self.figure}"


def _f(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def client_title(name: str) -> str:
    return make_client(name).title


def accuracy_table(name: str, figures: list[RunFigures], title: str | None = None) -> Table:
    """One client: truth against measurement at each concurrency."""
    table = Table(title=title or client_title(name), title_justify="left", padding=(0, 1))
    for header in (
        "streams",
        "reqs",
        "tokens",
        "TTFT\ntrue ms",
        "TTFT\nmeas ms",
        "TTFT err\nms",
        "TTFT\nerr %",
        "vs srv\nms",
        "ITL\ntrue ms",
        "ITL\nmeas ms",
        "ITL\nerr %",
        "tok/s\ntrue",
        "tok/s\nmeas",
        "tok/s\nerr %",
        "lag ms\np50/p95",
        "CPU\nµs/tok",
    ):
        table.add_column(header, justify="right")
    for run in figures:
        failed = f" ({run.failed} failed)" if run.failed else ""
        table.add_row(
            _level_label(run),
            f"{run.requests}{failed}",
            str(run.tokens),
            _f(run.ttft_true_ms),
            _f(run.ttft_measured_ms),
            _f(run.ttft_error_ms, 3),
            _pct(run.ttft_error_pct),
            _f(run.ttft_vs_server_ms),
            _f(run.itl_true_ms, 3),
            _f(run.itl_measured_ms, 3),
            _pct(run.itl_error_pct),
            _f(run.tps_true, 1),
            _f(run.tps_measured, 1),
            _pct(run.tps_error_pct),
            f"{_f(run.lag_p50_ms)}/{_f(run.lag_p95_ms)}",
            _f(run.cpu_us_per_token, 1),
        )
    return table


def server_table(config: PerfConfig, figures: list[RunFigures]) -> Table:
    """What the double was asked to do and what it did, and how busy both processes were."""
    table = Table(
        title="The schedule, what the double did, and how busy each side was",
        title_justify="left",
        padding=(0, 1),
    )
    for header in (
        "streams",
        "client",
        "TTFT cfg\nms",
        "TTFT srv\nms",
        "send path\nms",
        "active\nstreams",
        "ITL cfg\nms",
        "ITL srv\nms",
        "server\nCPU %",
        "client\nCPU %",
        "buffered\nwrites",
        "token\nmismatch",
    ):
        table.add_column(header, justify="right")
    for run in figures:
        if run.flood:
            continue
        table.add_row(
            _level_label(run),
            run.client,
            _f(config.ttft_ms),
            _f(run.ttft_server_ms),
            _f(run.transit_ms),
            _f(run.active_streams, 1),
            _f(run.itl_cfg_ms, 3),
            _f(run.itl_true_ms, 3),
            _f(run.server_cpu_pct, 0),
            _f(run.client_cpu_pct, 0),
            str(run.buffered_writes),
            str(run.mismatched),
        )
    return table


def cpu_table(config: PerfConfig, figures: list[RunFigures]) -> Table:
    """CPU µs per streamed token, side by side: novabench, the peer and the floor."""
    by_key = _by_key(figures)
    table = Table(
        title="Client CPU per streamed token, µs (median of rounds; min–max)",
        title_justify="left",
        padding=(0, 1),
    )
    table.add_column("streams", justify="right")
    for name in config.clients:
        table.add_column(client_title(name), justify="right")
    ratios = [n for n in ("novabench-live", "ollama") if n in config.clients] == [
        "novabench-live",
        "ollama",
    ]
    if ratios:
        table.add_column("live ÷ ollama", justify="right")
    rows = [(level, False) for level in config.levels + config.fast_levels]
    if config.flood_streams:
        rows.append((config.flood_streams, True))
    for level, flood in rows:
        fast = " fast" if level in config.fast_levels else ""
        cells = [f"{level}, flood" if flood else f"{level}{fast}"]
        for name in config.clients:
            run = by_key[(name, level, flood)]
            spread = run.cpu_us_per_token_rounds
            cells.append(
                f"{_f(run.cpu_us_per_token, 1)} ({min(spread):.0f}–{max(spread):.0f})"
                if spread
                else "–"
            )
        if ratios:
            cells.append(_f(cpu_ratio(by_key, level, flood)))
        table.add_row(*cells)
    return table


Key = tuple[str, int, bool]


def _level_label(run: RunFigures) -> str:
    return f"{run.concurrency} fast" if run.fast else str(run.concurrency)


def _by_key(figures: list[RunFigures]) -> dict[Key, RunFigures]:
    return {(run.client, run.concurrency, run.flood): run for run in figures}


def cpu_ratio(by_key: dict[Key, RunFigures], level: int, flood: bool = False) -> float | None:
    ours = by_key.get((TARGET_CLIENT, level, flood))
    peer = by_key.get(("ollama", level, flood))
    if ours is None or peer is None or not ours.cpu_us_per_token or not peer.cpu_us_per_token:
        return None
    return ours.cpu_us_per_token / peer.cpu_us_per_token


def load_table(load: list[LoadFigures]) -> Table:
    """Load mode: novabench's own level figures (from the DuckDB rows) beside the truth's."""
    table = Table(
        title="Load mode, level figures as novabench stored and computed them (load_stats)",
        title_justify="left",
        padding=(0, 1),
    )
    for header in (
        "streams",
        "run",
        "stored\nrows",
        "out tok/s\nnovabench",
        "out tok/s\ntrue",
        "err %",
        "TTFT p50\nnovabench",
        "TTFT p95\nnovabench",
        "TTFT p95\ntrue",
        "req/s",
        "samples",
        "sampled CPU %\nmachine/server",
        "server\nCPU %",
        "client\nCPU %",
        "phase\ns",
        "run\ns",
    ):
        table.add_column(header, justify="right")
    for level in load:
        run = level.accuracy
        table.add_row(
            str(level.concurrency),
            level.status,
            str(level.stored_rows),
            _f(level.level_tokens_per_s, 0),
            _f(level.true_tokens_per_s, 0),
            _pct(level.level_tokens_per_s_error_pct),
            _f(level.level_ttft_p50_ms),
            _f(level.level_ttft_p95_ms),
            _f(level.true_ttft_p95_ms),
            _f(level.level_requests_per_s, 1),
            str(level.samples),
            f"{_f(level.sampled_cpu_percent_mean, 0)}/"
            f"{_f(level.sampled_server_cpu_percent_mean, 0)}",
            _f(run.server_cpu_pct, 0),
            _f(run.client_cpu_pct, 0),
            _f(level.phase_wall_s, 1),
            _f(level.run_wall_s, 1),
        )
    return table


def verdicts(
    config: PerfConfig,
    figures: list[RunFigures],
    load: list[LoadFigures] | None = None,
    load_config: LoadConfig | None = None,
) -> list[Verdict]:
    """The issue's targets, judged on novabench with its live display on."""
    by_key = _by_key(figures)
    quiet = "novabench"

    def also(level: int, attribute: str, unit: str) -> str:
        run = by_key.get((quiet, level, False))
        value = getattr(run, attribute) if run is not None else None
        return f"; display off {value:+.3f}{unit}" if value is not None else ""

    out: list[Verdict] = []
    one = by_key.get((TARGET_CLIENT, 1, False))
    if one is None or one.ttft_error_ms is None:
        out.append(Verdict(f"TTFT error < {TTFT_ERROR_MS_AT_1:g} ms at 1 stream", None, "–"))
    else:
        out.append(
            Verdict(
                f"TTFT error < {TTFT_ERROR_MS_AT_1:g} ms at 1 stream",
                abs(one.ttft_error_ms) < TTFT_ERROR_MS_AT_1,
                f"{one.ttft_error_ms:.3f} ms (p95 {_f(one.ttft_error_p95_ms, 3)})"
                + also(1, "ttft_error_ms", " ms")
                + f"; counting the send path too: {_f(one.ttft_vs_server_ms, 3)} ms",
            )
        )
    top = by_key.get((TARGET_CLIENT, 256, False))
    if top is None or top.ttft_error_pct is None:
        out.append(Verdict(f"TTFT error < {TTFT_ERROR_PCT_AT_256:g}% at 256 streams", None, "–"))
    else:
        out.append(
            Verdict(
                f"TTFT error < {TTFT_ERROR_PCT_AT_256:g}% at 256 streams",
                abs(top.ttft_error_pct) < TTFT_ERROR_PCT_AT_256,
                f"{top.ttft_error_pct:+.1f}% ({_f(top.ttft_error_ms)} ms of "
                f"{_f(top.ttft_true_ms)} ms)"
                + also(256, "ttft_error_pct", "%")
                + _floor_note(by_key, 256)
                + f"; counting the send path too: {_f(top.ttft_vs_server_ms)} ms",
            )
        )
    if one is None or one.tps_error_pct is None:
        out.append(Verdict(f"tokens/s error < {TPS_ERROR_PCT_AT_1:g}% at 1 stream", None, "–"))
    else:
        out.append(
            Verdict(
                f"tokens/s error < {TPS_ERROR_PCT_AT_1:g}% at 1 stream",
                abs(one.tps_error_pct) < TPS_ERROR_PCT_AT_1,
                f"{one.tps_error_pct:+.3f}%" + also(1, "tps_error_pct", "%"),
            )
        )
    out.extend(_fast_verdicts(config, by_key))
    out.extend(_load_verdicts(load or [], load_config))
    out.append(Verdict(*as_accurate_as_peer(config, figures)))
    ratios = {
        f"{level} streams": cpu_ratio(by_key, level) for level in config.levels + config.fast_levels
    }
    if config.flood_streams:
        ratios["flood"] = cpu_ratio(by_key, config.flood_streams, True)
    known = {label: ratio for label, ratio in ratios.items() if ratio is not None}
    target = f"CPU per token (live display) ≤ {CPU_RATIO_TO_OLLAMA:g}× the ollama client's"
    if not known:
        out.append(Verdict(target, None, "–"))
    else:
        worst = max(known, key=lambda label: known[label])
        out.append(
            Verdict(
                target,
                known[worst] <= CPU_RATIO_TO_OLLAMA,
                ", ".join(f"{label} {ratio:.2f}×" for label, ratio in known.items())
                + f" (worst: {worst})",
            )
        )
    return out


def _fast_verdicts(config: PerfConfig, by_key: dict[Key, RunFigures]) -> list[Verdict]:
    """The big level on the fast schedule: TTFT, ITL and tokens/s all within 5%, none failed."""
    target = (
        f"timing error < {TIMING_ERROR_PCT_FAST:g}% (TTFT, ITL, tokens/s) at "
        f"{{level}} streams, {config.fast_interval_ms:g} ms/token"
    )
    if not config.fast_levels:
        return [Verdict(target.format(level=512), None, "–")]
    out = []
    for level in config.fast_levels:
        run = by_key.get((TARGET_CLIENT, level, False))
        errors = (
            [run.ttft_error_pct, run.itl_error_pct, run.tps_error_pct] if run is not None else []
        )
        if run is None or any(error is None for error in errors):
            out.append(Verdict(target.format(level=level), None, "–"))
            continue
        quiet = by_key.get(("novabench", level, False))
        peer = by_key.get(("ollama", level, False))
        notes = [
            f"{label} TTFT {other.ttft_error_pct:+.1f}%, tokens/s {other.tps_error_pct:+.1f}%"
            for label, other in (("display off", quiet), ("ollama", peer))
            if other is not None
            and other.ttft_error_pct is not None
            and other.tps_error_pct is not None
        ]
        out.append(
            Verdict(
                target.format(level=level),
                run.failed == 0
                and all(
                    abs(error) < TIMING_ERROR_PCT_FAST for error in errors if error is not None
                ),
                f"TTFT {run.ttft_error_pct:+.2f}% ({_f(run.ttft_error_ms)} ms of "
                f"{_f(run.ttft_true_ms)} ms), ITL {run.itl_error_pct:+.2f}%, tokens/s "
                f"{run.tps_error_pct:+.2f}%, {run.failed} failed"
                + "".join(f"; {note}" for note in notes),
            )
        )
    return out


def _load_verdicts(load: list[LoadFigures], load_config: LoadConfig | None) -> list[Verdict]:
    """Load mode through SuiteRunner: every error < 5%, nothing failed, every request matched."""
    target = (
        "load mode (runner, DuckDB, live display) sustains {level} streams with TTFT, ITL and "
        f"tokens/s errors each < {TIMING_ERROR_PCT_FAST:g}%"
    )
    levels = load_config.levels if load_config is not None else ()
    if not levels:
        return [Verdict(target.format(level=LOAD_TARGET_STREAMS), None, "–")]
    out = []
    for streams in levels:
        judged = [_load_round(level) for level in load if level.concurrency == streams]
        if not judged or any(met is None for met, _ in judged):
            out.append(Verdict(target.format(level=streams), None, "–"))
            continue
        figure = judged[0][1]
        if len(judged) > 1:  # every round must meet it
            figure = " | ".join(f"round {n}: {text}" for n, (_, text) in enumerate(judged, 1))
        out.append(Verdict(target.format(level=streams), all(met for met, _ in judged), figure))
    return out


def _load_round(level: LoadFigures) -> tuple[bool | None, str]:
    """One load-mode run: met or not (None: a figure is missing), and its figures."""
    run = level.accuracy
    errors = [run.ttft_error_pct, run.itl_error_pct, run.tps_error_pct]
    if any(error is None for error in errors):
        return None, "–"
    complete = (
        level.status == "complete"
        and run.failed == 0
        and run.mismatched == 0
        and level.unclaimed == 0
        and level.stored_rows == run.requests
    )
    met = complete and all(
        abs(error) < TIMING_ERROR_PCT_FAST for error in errors if error is not None
    )
    return met, (
        f"TTFT {run.ttft_error_pct:+.2f}% ({_f(run.ttft_error_ms)} ms of "
        f"{_f(run.ttft_true_ms)} ms), ITL {run.itl_error_pct:+.2f}%, tokens/s "
        f"{run.tps_error_pct:+.2f}%; {run.requests} requests stored, {run.failed} failed, "
        f"{run.mismatched + level.unclaimed} unmatched; level tokens/s "
        f"{_f(level.level_tokens_per_s, 0)} (true {_f(level.true_tokens_per_s, 0)}, "
        f"{_pct(level.level_tokens_per_s_error_pct)}%); CPU "
        f"{_f(run.cpu_us_per_token, 1)} µs/token"
    )


def _floor_note(by_key: dict[Key, RunFigures], level: int) -> str:
    floor = by_key.get(("httpx", level, False))
    peer = by_key.get(("ollama", level, False))
    parts = []
    if peer is not None and peer.ttft_error_pct is not None:
        parts.append(f"ollama {peer.ttft_error_pct:+.1f}%")
    if floor is not None and floor.ttft_error_pct is not None:
        parts.append(f"bare httpx {floor.ttft_error_pct:+.1f}%")
    return f"; {', '.join(parts)}" if parts else ""


def print_report(
    console: Console,
    config: PerfConfig,
    figures: list[RunFigures],
    wall_s: float,
    loadavg_before: tuple[float, float, float],
    load: list[LoadFigures] | None = None,
    load_config: LoadConfig | None = None,
    lag: list[LagFigures] | None = None,
) -> list[Verdict]:
    """All tables, then the verdicts; returns the verdicts."""
    console.print(
        f"[bold]novabench measurement accuracy[/]: TTFT {config.ttft_ms:g} ms, "
        f"{config.tokens} tokens every {config.interval_ms:g} ms, streams "
        f"{', '.join(map(str, config.levels))}"
        + (
            f"; fast schedule ({config.fast_interval_ms:g} ms/token) at "
            f"{', '.join(map(str, config.fast_levels))} streams"
            if config.fast_levels
            else ""
        )
        + (
            f"; load mode (SuiteRunner) at {', '.join(map(str, load_config.levels))} streams"
            if load_config is not None and load_config.levels
            else ""
        )
        + f", {config.rounds} round(s); "
        f"medians over requests; {wall_s:.0f} s; {os.cpu_count()} CPUs, load average "
        f"{loadavg_before[0]:.2f} before and {os.getloadavg()[0]:.2f} after"
    )
    console.print(
        "true = the double's own write times (CLOCK_MONOTONIC, shared with this process); "
        "TTFT err = measured − (server first write − client sent) = the first token's delivery "
        "lag; vs srv = measured − (server first write − server read), i.e. also the send path; "
        "lag = client arrival − server write of every token. CPU per token: paced streams "
        "cost mostly a wake-up per token; the flood row streams "
        f"{FLOOD_TOKENS} tokens back to back per request, so it is the parsing cost alone."
    )
    for name in config.clients:
        paced = [run for run in figures if run.client == name and not run.flood]
        console.print(accuracy_table(name, paced))
    console.print(server_table(config, figures))
    console.print(cpu_table(config, figures))
    if load:
        console.print(
            "Load mode: a real SuiteRunner (load suite, one prompt per request, resource "
            "sampler on, live display rendering to /dev/null) against the double's fast "
            "schedule; figures read back from its DuckDB file and derived as novabench does. "
            "sent = runner._t0 + stored start_offset_s (stamped synchronously, microseconds "
            "before the backend's own send stamp). CPU = the whole process (DuckDB writer, "
            "sampler, display) from run start to the phase's end, warm-up tokens included."
        )
        console.print(accuracy_table(CLIENT_LOAD, [level.accuracy for level in load], LOAD_TITLE))
        console.print(load_table(load))
    console.print(spread_table(config, figures, load))
    if lag:
        console.print(lag_table(lag))
    found = verdicts(config, figures, load, load_config)
    console.print("[bold]Targets[/] (novabench with its live display on, as `novabench run`):")
    for verdict in found:
        console.print(verdict.line())
    return found


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def write_json(
    path: Path,
    config: PerfConfig,
    figures: list[RunFigures],
    found: list[Verdict],
    wall_s: float,
    loadavg_before: tuple[float, float, float],
    load: list[LoadFigures] | None = None,
    load_config: LoadConfig | None = None,
    lag: list[LagFigures] | None = None,
) -> None:
    """The figures, definitions and verdicts, for the README and for comparing runs."""
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(config),
        "load_config": asdict(load_config) if load_config is not None else None,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_before": loadavg_before,
            "loadavg_after": os.getloadavg(),
        },
        "versions": {
            name: _version(name) for name in ("novabench", "httpx", "httpcore", "ollama", "rich")
        },
        "wall_s": wall_s,
        "definitions": DEFINITIONS,
        "results": [run.as_json() for run in figures],
        "load_mode": [level.as_json() for level in load or []],
        "loop_lag": [row.as_json() for row in lag or []],
        "verdicts": [asdict(verdict) for verdict in found],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
