"""python -m tests.perf: the measurement-accuracy benchmark (`make perf`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console

from tests.perf.clients import CLIENT_NAMES
from tests.perf.harness import PerfConfig, run_perf
from tests.perf.loadmode import LoadConfig, run_load_phase
from tests.perf.looplag import LagConfig, run_lag
from tests.perf.report import print_report, write_json

DEFAULT_JSON = Path("reports/perf.json")
# Wide enough for the accuracy tables when the output is a file or a pipe.
PIPE_WIDTH = 170


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every level must be at least 1")
    return values


def _fast_levels(text: str) -> tuple[int, ...]:
    return () if text.strip().lower() in ("", "none") else _int_list(text)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in CLIENT_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown client {', '.join(map(repr, unknown)) or '(none)'}; "
            f"choose from {', '.join(CLIENT_NAMES)}"
        )
    return names


def _positive(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.perf",
        description="novabench's timing accuracy and CPU cost per token, against the Ollama "
        "double's own record of what it did (the double runs in a child process).",
    )
    parser.add_argument("--levels", type=_int_list, default=(1, 16, 64, 256))
    parser.add_argument(
        "--fast-levels",
        type=_fast_levels,
        default=(512,),
        help="levels on the fast schedule, one request per stream per round ('none' skips)",
    )
    parser.add_argument("--fast-interval-ms", type=_positive(float), default=20.0)
    parser.add_argument(
        "--load-levels",
        type=_fast_levels,
        default=(512,),
        help="load-mode phase: a real SuiteRunner run per level, on the fast schedule, "
        "storing to DuckDB with the live display on ('none' skips)",
    )
    parser.add_argument(
        "--load-requests",
        type=_positive(int),
        default=None,
        help="requests per load-mode level (default: 2 × streams)",
    )
    parser.add_argument(
        "--load-rounds",
        type=_positive(int),
        default=3,
        help="runs per load-mode level: the spread between repeated runs",
    )
    parser.add_argument(
        "--lag-levels",
        type=_fast_levels,
        default=(8, 64, 256, 512),
        help="event-loop lag phase, display off and on: levels up to 256 on the paced "
        "schedule, above it on the fast one ('none' skips)",
    )
    parser.add_argument("--lag-rounds", type=_positive(int), default=3)
    parser.add_argument("--tokens", type=_positive(int), default=200)
    parser.add_argument("--interval-ms", type=_positive(float), default=2.0)
    parser.add_argument("--ttft-ms", type=_positive(float), default=50.0)
    parser.add_argument(
        "--requests-per-level",
        type=_positive(int),
        default=None,
        help="requests per round at each level (default: max(10, 2 × streams))",
    )
    parser.add_argument("--rounds", type=_positive(int), default=3)
    parser.add_argument("--clients", type=_names, default=CLIENT_NAMES)
    parser.add_argument(
        "--flood-streams",
        type=int,
        default=8,
        help="streams in the unpaced CPU-cost phase (0 skips it)",
    )
    parser.add_argument("--flood-requests", type=_positive(int), default=16)
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and client")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where the figures go")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if set(args.levels) & set(args.fast_levels):
        raise SystemExit("error: a level cannot be in both --levels and --fast-levels")
    config = PerfConfig(
        levels=args.levels,
        tokens=args.tokens,
        interval_ms=args.interval_ms,
        ttft_ms=args.ttft_ms,
        requests_per_level=args.requests_per_level,
        rounds=args.rounds,
        clients=args.clients,
        pin_cpus=not args.no_pin,
        flood_streams=max(0, args.flood_streams),
        flood_requests=args.flood_requests,
        fast_levels=args.fast_levels,
        fast_interval_ms=args.fast_interval_ms,
    )
    load_config = LoadConfig(
        levels=args.load_levels,
        requests_per_level=args.load_requests,
        tokens=args.tokens,
        ttft_ms=args.ttft_ms,
        interval_ms=args.fast_interval_ms,
        pin_cpus=not args.no_pin,
        rounds=args.load_rounds,
    )
    lag_config = LagConfig(
        levels=args.lag_levels,
        rounds=args.lag_rounds,
        tokens=args.tokens,
        ttft_ms=args.ttft_ms,
        interval_ms=args.interval_ms,
        fast_interval_ms=args.fast_interval_ms,
        pin_cpus=not args.no_pin,
    )
    console = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH)
    loadavg_before = os.getloadavg()
    started = time.perf_counter()

    def progress(message: str) -> None:
        console.print(f"[dim]{message}[/]")

    figures = run_perf(config, progress=progress)
    load = run_load_phase(load_config, progress=progress)
    lag = run_lag(lag_config, progress=progress)
    wall_s = time.perf_counter() - started
    found = print_report(console, config, figures, wall_s, loadavg_before, load, load_config, lag)
    write_json(args.json, config, figures, found, wall_s, loadavg_before, load, load_config, lag)
    console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
