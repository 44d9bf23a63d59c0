"""python -m tests.scale (`make scale`): novabench on a big history, beside the issue's targets.

Builds (or reuses) a synthetic history with the real schema, then runs novabench's own commands
on it in child processes: start-up, `run` overhead on an empty and on the full database,
`history`, a big run's page, `prune`, and the peak memory of each. Prints the table and writes
it as Markdown (reports/scale/latest.md) for the README.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from novabench.storage.database import Database
from tests.perf.server import MODEL, DoubleProcess
from tests.scale import steps, table
from tests.scale.generate import Shape, build
from tests.scale.history import SUITES
from tests.scale.suites import page_suite

# The suite of the synthetic history a measured run adds a run to (a cron user's suite).
LONG_SUITE = SUITES[0]

GENERATOR = 1  # bump when the generator changes: cached histories are then rebuilt
DEFAULT_DIR = Path("reports/scale")
Progress = Callable[[str], None]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.scale", description=__doc__)
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the history")
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests in all")
    parser.add_argument(
        "--page-requests",
        type=int,
        default=None,
        help="requests of the big load run whose page is timed "
        "(default: 100,000, at most a tenth of --requests)",
    )
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cache, scratch, table")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached history")
    parser.add_argument(
        "--repeats", type=int, default=5, help="start-up: median of this many (and of up to 3 runs)"
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per command")
    parser.add_argument(
        "--once-timeout",
        type=float,
        default=3600.0,
        help="seconds for the first `history` of a new cached database (one-time back-fills)",
    )
    parser.add_argument(
        "--memory-cap-gb", type=float, default=6.0, help="kill a command above this RSS"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    page_requests = args.page_requests or min(100_000, args.requests // 10)
    shape = Shape(args.runs, args.requests, page_requests)
    try:
        shape.check()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    cache, phases = cached_history(args.dir / "cache", shape, args.rebuild, progress)
    work = args.dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bench = steps.Bench(
        work, args.timeout, int(args.memory_cap_gb * 2**30), args.repeats, args.once_timeout
    )
    rows = measure(bench, cache, shape, progress)
    total_s = time.perf_counter() - started
    facts = [
        f"{table.today()}; {table.machine()}",
        f"novabench {_commit()}; history of {shape.runs:,} runs / {shape.requests:,} requests "
        f"({cache.stat().st_size / table.MB:,.0f} MB DuckDB file)",
        "synthetic history: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items()),
        f"whole benchmark {total_s:.0f} s; each command in its own process, "
        f"killed past {args.timeout:g} s or {args.memory_cap_gb:g} GiB; peak RSS: its VmHWM",
        "`run` overhead: the process's exit minus the end of its last request as stored "
        "(started_at + e2e_s); a tiny suite (3 requests, `--baseline median:5`) against the "
        "Ollama double",
    ]
    print()
    print("\n".join(facts))
    print()
    print(table.plain(rows), end="")
    markdown = args.dir / "latest.md"
    markdown.write_text(table.markdown(rows, "`make scale`", facts))
    print(f"\ntable written to {markdown}")
    return 1 if any(row.verdict == table.FAILED for row in rows) else 0


def cached_history(
    folder: Path, shape: Shape, rebuild: bool, progress: Progress
) -> tuple[Path, dict[str, float]]:
    """The synthetic history of this shape: built once, then reused (and migrated if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"history-{shape.runs}r-{shape.requests}q-{shape.page_requests}p-g{GENERATOR}"
    path = folder / f"{name}.duckdb"
    if path.exists() and not rebuild:
        progress(f"reusing {path} (--rebuild builds it again)")
        mark = time.perf_counter()
        with Database(path).connect():  # a newer novabench migrates it here, not in a step
            pass
        return path, {"reused, opened": time.perf_counter() - mark}
    progress(f"building {shape.runs:,} runs / {shape.requests:,} requests in {path}")
    partial = folder / f"{name}.partial.duckdb"
    for stale in (partial, partial.with_name(partial.name + ".wal")):
        stale.unlink(missing_ok=True)
    built = build(partial, shape, progress)
    os.replace(partial, path)
    for phase, seconds in built.phases_s.items():
        progress(f"  {phase}: {seconds:.1f} s")
    return path, {**built.phases_s, "built in all": sum(built.phases_s.values())}


def measure(bench: steps.Bench, cache: Path, shape: Shape, progress: Progress) -> list[table.Row]:
    """Every step, in the order that lets later ones reuse earlier ones' files."""
    progress("start-up: --help and validate")
    rows = steps.startup(bench)
    empty, full = bench.work / "empty", bench.work / "full"
    progress("history of the full database (twice)")
    history_first, history_full = steps.full_history(bench, cache, full / "pages")
    progress(f"the page of the {shape.page_requests:,}-request load run")
    page = steps.run_page(bench, cache, full / "pages", page_run_id(cache), shape.page_requests)
    copy = full / "history.duckdb"
    shutil.copyfile(cache, copy)
    shutil.rmtree(steps.kept_charts(copy), ignore_errors=True)
    if steps.kept_charts(cache).is_dir():  # else `history` failed: its row says so
        shutil.copytree(steps.kept_charts(cache), steps.kept_charts(copy))
    long_runs = runs_of(cache, LONG_SUITE)
    with DoubleProcess(tokens=8, ttft_ms=5, interval_ms=1, num_parallel=2) as double:
        suite = steps.tiny_suite(bench.work / "tiny.yaml", double.url, MODEL)
        long = steps.tiny_suite(bench.work / "long.yaml", double.url, MODEL, LONG_SUITE)
        # The bulk build never checkpointed a small write: the first run would make DuckDB load
        # and rewrite each table's whole primary-key index once (+0.6 s, +200 MB at 1,000,000
        # requests), which a file written by hourly runs is long past. One unmeasured run first,
        # as an hourly run follows the previous one.
        steps.run_overhead(bench, "warm-up", copy, full / "pages", suite)
        cases = [
            steps.RunCase(
                "`run` overhead, empty DB (its suite's 2nd run)",
                empty / "history.duckdb", empty / "pages", suite, fresh=True,
            ),
            steps.RunCase(
                f"`run` overhead, full DB ({shape.requests:,} requests)",
                copy, full / "pages", suite,
            ),
            steps.RunCase(
                f"`run` overhead, full DB, a suite with {long_runs:,} runs",
                copy, full / "pages", long, LONG_SUITE,
            ),
        ]  # fmt: skip
        progress("runs: on an empty database, on the full one, of its long suite, in turns")
        steps.run_rounds(bench, cases)
        progress("history of a database of one run")
        shutil.rmtree(empty, ignore_errors=True)
        steps.run_overhead(bench, "one run", empty / "history.duckdb", empty / "pages", suite)
    (run_empty, empty_s), (run_full, full_s), (run_long, long_s) = (c.row() for c in cases)
    steps.same_as_empty(run_full, full_s, empty_s)
    steps.same_as_empty(run_long, long_s, empty_s)
    history_empty = steps.history(
        bench, "`history`, DB of one run", empty / "history.duckdb", empty / "pages", False
    )
    progress("prune half of that copy")
    prune = steps.prune_half(bench, full / "history.duckdb", full / "pages")
    return [
        *rows,
        run_empty,
        run_full,
        run_long,
        history_empty,
        history_first,
        history_full,
        page,
        prune,
        steps.memory_row(
            "peak memory of `run`, full vs empty",
            max(run_full, run_long, key=lambda r: r.peak_rss_bytes or 0),
            run_empty,
        ),
        steps.memory_row("peak memory of `history`, full vs one run", history_full, history_empty),
    ]


def runs_of(db: Path, suite: str) -> int:
    """How many runs of `suite` the database holds."""
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute("SELECT count(*) FROM runs WHERE suite_name = ?", [suite]).fetchone()
    return int(found[0]) if found else 0


def page_run_id(db: Path) -> str:
    """The big load run of the synthetic history."""
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT run_id FROM runs WHERE suite_name = $name", {"name": page_suite(1).name}
        ).fetchone()
    if row is None:
        raise SystemExit(f"error: {db} has no {page_suite(1).name!r} run: rerun with --rebuild")
    return str(row[0])


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=steps.REPO,
        )
    except (OSError, subprocess.CalledProcessError):
        return "(no git)"
    return found.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
