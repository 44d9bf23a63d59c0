"""The measured steps: each runs novabench's own command in a child process and makes a row.

`run` overhead: the time from the end of the run's last request to the end of the process. The
end of the last request is what novabench itself stored (results.started_at + e2e_s, UTC wall
clock); the end of the process is when wait4 returned in this process (time.time(), the same
clock). It holds everything `run` does after its last request: the store flush, marking the run
ended, the run page, the history page, the index and the interpreter's exit. The stored run end
(runs.ended_at) splits it into "store" (flush, run marked ended) and "pages" (the rest).
"""

from __future__ import annotations

import math
import shutil
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from tests.scale import child
from tests.scale.table import FAILED, MB, MISSED, NO_TARGET, Row, verdict

REPO = Path(__file__).resolve().parents[2]
STARTUP_TARGET_S = 0.3
RUN_TARGET_S = 2.0
RUN_SAME_SHARE = 0.2  # full-database overhead within 20% of the empty one
RUN_REPEATS = 5  # rounds of `run` overhead figures: medians are compared (the machine is noisy)
HISTORY_TARGET_S, HISTORY_EXTRA_BYTES = 5.0, 2 * MB
PAGE_TARGET_S, PAGE_EXTRA_BYTES = 10.0, 3 * MB
PRUNE_TARGET_S = 10.0
TINY_SUITE = "scale-tiny"
# As a careful cron user runs: against the median of the last five comparable runs.
RUN_ARGS = ("--baseline", "median:5")
STUB_PAGE = "<!doctype html><title>placeholder written by tests/scale</title>\n"


@dataclass
class Bench:
    """Where and within which bounds the steps run."""

    work: Path
    timeout_s: float
    rss_cap_bytes: int
    repeats: int = 5
    once_timeout_s: float = 3600.0  # a command doing one-time work (see full_history)

    def run(self, *args: str, timeout_s: float | None = None) -> child.Outcome:
        limit_s = self.timeout_s if timeout_s is None else timeout_s
        return child.run([*child.novabench(), *args], limit_s, self.rss_cap_bytes, REPO)


def plotly_js_bytes() -> int:
    """The size of the plotly.js that every page with charts inlines."""
    import plotly

    bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if bundled.is_file():
        return bundled.stat().st_size
    import plotly.offline

    return len(plotly.offline.get_plotlyjs().encode())


def startup(bench: Bench) -> list[Row]:
    """`novabench --help` and `validate` of a small suite, median of `repeats` runs each."""
    rows = []
    for label, args in (
        ("`novabench --help`", ["--help"]),
        ("`novabench validate suites/one_sentence.yaml`", ["validate", "suites/one_sentence.yaml"]),
    ):
        outcomes = [bench.run(*args) for _ in range(bench.repeats)]
        failed = [o for o in outcomes if not o.ok]
        median_s = statistics.median(o.wall_s for o in outcomes)
        row = Row(
            label,
            f"{median_s:.3f} s (median of {len(outcomes)})",
            f"< {STARTUP_TARGET_S:g} s",
            FAILED if failed else verdict(median_s < STARTUP_TARGET_S),
            max(o.peak_rss_bytes for o in outcomes),
        )
        if failed:
            row.notes.append(failed[0].failure())
        rows.append(row)
    return rows


def tiny_suite(path: Path, host: str, model: str, name: str = TINY_SUITE) -> Path:
    """The suite each measured `run` runs against the Ollama double: three short requests."""
    path.write_text(
        f"name: {name}\nhost: {host}\nmodels: [{model}]\nprompts: ['Hi.']\n"
        "modes: [sequential]\nrepetitions: 2\nwarmup: 1\n"
    )
    return path


def run_overhead(
    bench: Bench, label: str, db: Path, out: Path, suite: Path, name: str = TINY_SUITE
) -> tuple[Row, float]:
    """One `novabench run` of a tiny suite (named `name`); the row and its overhead (NaN when it
    failed)."""
    outcome = bench.run("run", str(suite), "--db", str(db), "--out", str(out), "--quiet", *RUN_ARGS)
    row = Row(label, "", f"< {RUN_TARGET_S:g} s", broken(outcome), outcome.peak_rss_bytes)
    if outcome.killed is not None or not db.exists():
        row.figure = outcome.failure()
        return row, math.nan
    with duckdb.connect(str(db), read_only=True) as con:
        found = con.execute(
            """
            SELECT r.ended_at,
                   max(x.started_at + to_microseconds((coalesce(x.e2e_s, 0) * 1e6)::BIGINT))
            FROM runs r JOIN results x USING (run_id)
            WHERE r.suite_name = $suite
            GROUP BY r.run_id, r.started_at, r.ended_at ORDER BY r.started_at DESC LIMIT 1
            """,
            {"suite": name},
        ).fetchone()
    if found is None or found[1] is None:
        row.figure = f"no stored requests ({outcome.failure()})"
        return row, math.nan
    ended_at, last_end = (_epoch(found[0]) if found[0] else math.nan), _epoch(found[1])
    overhead_s = outcome.exited_at - last_end
    row.figure = f"{overhead_s:.2f} s"
    row.verdict = verdict(outcome.ok and overhead_s < RUN_TARGET_S)
    row.notes.append(
        f"store {ended_at - last_end:.2f} s + pages and exit {outcome.exited_at - ended_at:.2f} s "
        f"(whole command {outcome.wall_s:.1f} s, exit {outcome.exit_code})"
    )
    return row, overhead_s


@dataclass
class RunCase:
    """One way `run` is measured: a suite (named `name`) on a database, each round."""

    label: str
    db: Path
    out: Path
    suite: Path
    name: str = TINY_SUITE
    fresh: bool = False  # each round on a new database, after an unmeasured first run
    measured: list[tuple[Row, float]] = field(default_factory=list)

    def measure(self, bench: Bench) -> None:
        """One round. With `fresh`, the measured run is the suite's second on a new database:
        its first, not measured, makes it do what every later run of a suite does (compare
        itself with the previous run), as the runs measured on the full database do."""
        if self.fresh:
            shutil.rmtree(self.db.parent, ignore_errors=True)
            run_overhead(bench, "first run", self.db, self.out, self.suite, self.name)
        self.measured.append(
            run_overhead(bench, self.label, self.db, self.out, self.suite, self.name)
        )

    def row(self) -> tuple[Row, float]:
        """The row of the median round, every figure in its notes; the median overhead (NaN
        when a round failed)."""
        figures = [overhead_s for _, overhead_s in self.measured]
        if any(math.isnan(f) for f in figures):
            return next(m for m in self.measured if math.isnan(m[1]))
        row, median_s = sorted(self.measured, key=lambda m: m[1])[len(self.measured) // 2]
        row.figure = f"{median_s:.2f} s (median of {len(figures)})"
        row.notes.insert(0, "rounds: " + ", ".join(f"{f:.2f} s" for f in figures))
        row.peak_rss_bytes = max(m[0].peak_rss_bytes or 0 for m in self.measured) or None
        return row, median_s


def run_rounds(bench: Bench, cases: list[RunCase]) -> None:
    """Measure every case once per round, RUN_REPEATS rounds (fewer when the bench repeats
    less): the cases take turns, so that the machine's slower spells hit them alike."""
    for _ in range(min(RUN_REPEATS, bench.repeats)):
        for case in cases:
            case.measure(bench)


def broken(outcome: child.Outcome) -> str:
    """The verdict of a command that did not succeed: killed past a bound, it missed its
    target; ending in an error, it failed (the synthetic history or the harness is wrong)."""
    return MISSED if outcome.killed is not None else FAILED


def same_as_empty(row: Row, full_s: float, empty_s: float) -> None:
    """The full-database run's second target: within RUN_SAME_SHARE of the empty figure."""
    limit_s = empty_s * (1 + RUN_SAME_SHARE)
    row.target += f", <= {limit_s:.2f} s (empty + {RUN_SAME_SHARE:.0%})"
    if row.verdict != FAILED:
        row.verdict = verdict(full_s < RUN_TARGET_S and full_s <= limit_s)


def stub_pages(db: Path, out: Path) -> int:
    """A page for every run that has none, as after hourly runs each wrote its own page; the
    history command then writes only the history and the index. Returns how many were made."""
    with duckdb.connect(str(db), read_only=True) as con:
        run_ids = [row[0] for row in con.execute("SELECT run_id FROM runs").fetchall()]
    pages = out / "runs"
    pages.mkdir(parents=True, exist_ok=True)
    made = 0
    for run_id in run_ids:
        page = pages / f"{run_id}.html"
        if not page.exists():
            page.write_text(STUB_PAGE)
            made += 1
    return made


def history(
    bench: Bench, label: str, db: Path, out: Path, targeted: bool, timeout_s: float | None = None
) -> Row:
    """`novabench history`: its time and the size of history.html."""
    outcome = bench.run("history", "--db", str(db), "--out", str(out), timeout_s=timeout_s)
    page = out / "history.html"
    target = _history_target() if targeted else ""
    row = Row(label, outcome.failure(), target, broken(outcome), outcome.peak_rss_bytes)
    if outcome.ok and page.is_file():
        size = page.stat().st_size
        row.figure = f"{outcome.wall_s:.2f} s, {size / MB:.1f} MB"
        met = outcome.wall_s < HISTORY_TARGET_S and size <= plotly_js_bytes() + HISTORY_EXTRA_BYTES
        row.verdict = verdict(met) if targeted else NO_TARGET
    return row


def full_history(bench: Bench, db: Path, out: Path) -> tuple[Row, Row]:
    """`history` of the full database twice: the first call does any one-time work (a back-fill
    the history makes once and stores in the cached database: it has longer to do it) and draws
    every suite's charts; the second is what a later call costs when no run was added since (it
    takes every suite's charts from where the first kept them)."""
    made = stub_pages(db, out)
    shutil.rmtree(kept_charts(db), ignore_errors=True)
    label = "`history`, full DB, first call (every suite drawn; any one-time back-fill)"
    first = history(bench, label, db, out, False, bench.once_timeout_s)
    label = "`history`, full DB"
    if "killed" in first.figure:
        second = Row(label, "not run: the first call was killed", _history_target(), MISSED)
    else:
        second = history(bench, label, db, out, True)
    second.notes.append(
        f"{made:,} run pages were in place (as after hourly runs, each writing its own), so "
        "`history` writes only history.html and the index"
    )
    return first, second


def kept_charts(db: Path) -> Path:
    """Where novabench keeps the history's charts of each suite drawn from `db`."""
    return db.with_name(db.name + ".history-cache")


def _history_target() -> str:
    return f"< {HISTORY_TARGET_S:g} s, <= {(plotly_js_bytes() + HISTORY_EXTRA_BYTES) / MB:.1f} MB"


def run_page(bench: Bench, db: Path, out: Path, run_id: str, requests: int) -> Row:
    """`novabench report RUN_ID` of the big load run: its time and the page's size."""
    outcome = bench.run("report", run_id, "--db", str(db), "--out", str(out))
    page = out / "runs" / f"{run_id}.html"
    limit = plotly_js_bytes() + PAGE_EXTRA_BYTES
    label = f"run page of a {requests:,}-request load run (`report`)"
    row = Row(label, outcome.failure(), f"< {PAGE_TARGET_S:g} s, <= {limit / MB:.1f} MB")
    row.verdict, row.peak_rss_bytes = broken(outcome), outcome.peak_rss_bytes
    if outcome.ok and page.is_file():
        size = page.stat().st_size
        row.figure = f"{outcome.wall_s:.2f} s, {size / MB:.1f} MB"
        row.verdict = verdict(outcome.wall_s < PAGE_TARGET_S and size <= limit)
    return row


def prune_half(bench: Bench, db: Path, out: Path) -> Row:
    """`novabench prune --older-than` the middle of the history, with --yes."""
    label = "`novabench prune` of half the history"
    target = f"< {PRUNE_TARGET_S:g} s"
    usage = bench.run("prune", "--help")
    if not usage.ok:
        return Row(label, "prune: not available", target, NO_TARGET)
    counted = "SELECT count(*), min(started_at), max(started_at) FROM runs"
    with duckdb.connect(str(db), read_only=True) as con:
        runs_before, first, last = con.execute(counted).fetchone()
    middle = first + (last - first) / 2
    days = max(1, math.ceil((_now() - middle) / timedelta(days=1)))
    size_before = _db_bytes(db)
    args = ["prune", "--db", str(db), "--older-than", f"{days}d", "--yes"]
    if "--out" in usage.stdout:
        args += ["--out", str(out)]
    outcome = bench.run(*args)
    row = Row(label, outcome.failure(), target, broken(outcome), outcome.peak_rss_bytes)
    if outcome.ok:
        with duckdb.connect(str(db), read_only=True) as con:
            runs_after = con.execute(counted).fetchone()[0]
        row.figure = (
            f"{outcome.wall_s:.2f} s, DB {size_before / MB:,.0f} -> {_db_bytes(db) / MB:,.0f} MB"
        )
        row.verdict = verdict(outcome.wall_s < PRUNE_TARGET_S)
        row.notes.append(
            f"--older-than {days}d removed {runs_before - runs_after:,} of {runs_before:,} runs"
        )
    return row


def memory_row(label: str, full: Row, empty: Row) -> Row:
    """Peak memory at the full size against the empty one (it must not grow with the rows)."""
    row = Row(label, "", f"<= empty + {RUN_SAME_SHARE:.0%}")
    unfinished = [r for r in (full, empty) if r.verdict == FAILED or "killed" in r.figure]
    if unfinished or full.peak_rss_bytes is None or empty.peak_rss_bytes is None:
        row.figure = "not measured (a step did not finish)"
        row.verdict = FAILED if any(r.verdict == FAILED for r in unfinished) else MISSED
        return row
    ratio = full.peak_rss_bytes / empty.peak_rss_bytes
    row.figure = f"{full.memory} full / {empty.memory} empty = {ratio:.2f}x"
    row.verdict = verdict(ratio <= 1 + RUN_SAME_SHARE)
    return row


def _db_bytes(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _epoch(stored: datetime) -> float:
    """A stored timestamp (naive UTC) as seconds since the epoch."""
    return stored.replace(tzinfo=UTC).timestamp()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
