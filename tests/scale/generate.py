"""A synthetic novabench history, bulk-written in DuckDB SQL: 10,000 runs in a few minutes.

The schema is novabench's own: the migrations the generator knows (up to BASE_VERSION) are
applied, the rows inserted, and then novabench's Database opens the file, which applies every
later migration as it would to a user's history (back-filling whatever they derive from the raw
rows). Each block of runs is a handful of INSERT ... SELECT statements over range(): no Python
loop per row. Figures are pseudo-random from DuckDB's hash() of the run and request numbers, so
the same size always gives the same history (random() would differ wherever DuckDB evaluates an
expression twice, e.g. ttft_s against the first token offset).

Layout: hourly runs ending at the last full hour, taking turns over the suites of
tests/scale/suites.py on two hosts; every LOAD_EVERY-th run is a small load sweep; the newest
run is one big load sweep (`page_requests` requests) whose page the benchmark renders. The other
requests are spread evenly over the other runs; about 1% of measured requests fail, and every
INTERRUPTED_EVERY-th run was interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from novabench.records import utcnow
from novabench.storage.database import Database
from novabench.storage.schema import MIGRATIONS
from novabench.version import __version__
from tests.scale import sql
from tests.scale.suites import history_suites, page_suite, suite_params

BASE_VERSION = 6  # the newest migration whose tables the INSERTs below fill
LOAD_EVERY = 20
INTERRUPTED_EVERY = 997
DIGEST_EVERY = 1500  # a model's digest (a new pull) changes every this many runs
ERROR_SHARE = 0.01
BLOCK_REQUESTS = 250_000  # per INSERT: bounds DuckDB's memory for the token arrays
MIN_REQUESTS_PER_RUN = 8


@dataclass(frozen=True)
class Shape:
    """How big the synthetic history is."""

    runs: int = 10_000
    requests: int = 1_000_000
    page_requests: int = 100_000  # the newest run: a load sweep of this many requests

    def check(self) -> None:
        per_run = (self.requests - self.page_requests) / max(self.runs - 1, 1)
        if self.runs < 2 or self.page_requests < 16 or per_run < MIN_REQUESTS_PER_RUN:
            raise ValueError(
                f"{self.runs} runs / {self.requests} requests / {self.page_requests} on the big "
                f"run's page: need at least 2 runs, 16 requests on the page run and "
                f"{MIN_REQUESTS_PER_RUN} requests per other run"
            )


@dataclass
class Built:
    """What was built: the big run's id, the time span, and how long each phase took."""

    page_run_id: str
    first_started_at: datetime
    last_started_at: datetime
    phases_s: dict[str, float]


def build(path: Path, shape: Shape, progress: Callable[[str], None] = print) -> Built:
    """Write the synthetic history to `path` (which must not exist yet)."""
    shape.check()
    phases: dict[str, float] = {}
    started = time.perf_counter()
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")
        _create_schema(con)
        params = _plan(con, shape)
        phases["plan"] = time.perf_counter() - started
        _insert_runs(con, params, phases)
        _insert_results(con, shape, params, progress, phases)
        _insert_derived(con, params, phases)
        con.execute("CHECKPOINT")
        first, last = con.execute("SELECT min(started_at), max(started_at) FROM runs").fetchone()
    finally:
        con.close()
    mark = time.perf_counter()
    database = Database(path)
    with database.connect():  # novabench's own migrations from BASE_VERSION on
        pass
    if database.last_backup is not None:
        database.last_backup.unlink(missing_ok=True)
    phases["later migrations"] = time.perf_counter() - mark
    return Built(params["page_run_id"], first, last, phases)


def _create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """novabench's migrations up to BASE_VERSION, recorded as Database records them."""
    con.execute(
        "CREATE TABLE schema_migrations "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    for version, name, migrate in MIGRATIONS:
        if version > BASE_VERSION:
            break
        migrate(con)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", [version, name, utcnow()])


def _plan(con: duckdb.DuckDBPyConnection, shape: Shape) -> dict[str, Any]:
    """A temporary table with one row per run: number, id, suite, host, start, requests."""
    suites = history_suites(hourly_load_requests=shape.requests // shape.runs)
    suites.append(page_suite(shape.page_requests))
    end = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=shape.runs)
    params: dict[str, Any] = {
        **suite_params(suites),
        "start": start,
        "ordinary": shape.runs - 1,
        "spread": shape.requests - shape.page_requests,
        "page_requests": shape.page_requests,
        "page_suite": len(suites) - 1,
        "n_history_suites": len(suites) - 2,  # the hourly suites before the small load sweep
        "load_suite": len(suites) - 2,
        "load_every": LOAD_EVERY,
        "interrupted_every": INTERRUPTED_EVERY,
        "digest_every": DIGEST_EVERY,
        "error_share": ERROR_SHARE,
        "version": __version__,
    }
    con.execute(sql.PLAN, sql.used(sql.PLAN, params))
    row = con.execute("SELECT run_id FROM plan WHERE i = $i", {"i": shape.runs - 1}).fetchone()
    params["page_run_id"] = row[0]
    return params


def _insert_runs(
    con: duckdb.DuckDBPyConnection, params: dict[str, Any], phases: dict[str, float]
) -> None:
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    for statement in (sql.RUNS, sql.MODELS, sql.PROMPTS):
        con.execute(statement, sql.used(statement, params))
    con.execute("COMMIT")
    phases["runs, models, prompts"] = time.perf_counter() - started


def _insert_results(
    con: duckdb.DuckDBPyConnection,
    shape: Shape,
    params: dict[str, Any],
    progress: Callable[[str], None],
    phases: dict[str, float],
) -> None:
    """The requests, in blocks of runs of about BLOCK_REQUESTS requests each."""
    started = time.perf_counter()
    blocks = con.execute(
        "SELECT min(i), max(i) + 1 FROM (SELECT i, sum(n) OVER (ORDER BY i) // $size AS block "
        "FROM plan) GROUP BY block ORDER BY 1",
        {"size": BLOCK_REQUESTS},
    ).fetchall()
    written = 0
    for low, high in blocks:
        con.execute("BEGIN TRANSACTION")
        con.execute(sql.RESULTS, sql.used(sql.RESULTS, {**params, "lo": low, "hi": high}))
        con.execute("COMMIT")
        written = con.execute("SELECT sum(n) FROM plan WHERE i < $hi", {"hi": high}).fetchone()[0]
        progress(
            f"  requests: {written:,} of {shape.requests:,} ({time.perf_counter() - started:.0f} s)"
        )
    phases["results"] = time.perf_counter() - started


def _insert_derived(
    con: duckdb.DuckDBPyConnection, params: dict[str, Any], phases: dict[str, float]
) -> None:
    """What the runner records from the requests: end times, phases, levels, stops, samples."""
    started = time.perf_counter()
    con.execute("BEGIN TRANSACTION")
    for statement in (sql.ENDED, sql.PHASES, sql.LEVELS, sql.STOPS, sql.SAMPLES):
        con.execute(statement, sql.used(statement, params))
    con.execute("COMMIT")
    phases["phases, levels, samples"] = time.perf_counter() - started
