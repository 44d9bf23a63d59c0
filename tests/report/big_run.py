"""A synthetic big load run, written with the real Store and bulk DuckDB SQL.

Every row is made by SQL from `range()`, with pseudo-random figures from `hash()` of the row's
number, so a history of a million requests with their token arrival arrays is written in seconds
and the same arguments always give the same rows. The runs are what novabench itself stores: a
real suite text (and the facts parsed from it), models, prompts, results, resource samples, load
levels and phases, so every page and command reads them as it reads a real run.

    add_load_run(store, requests=100_000)          one load sweep (a run page at scale)

    PYTHONPATH=$PWD python -m tests.report.big_run DB OUT [REQUESTS]   times its run page
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from novabench.config.reading import parse_suite
from novabench.storage.facts import run_facts
from novabench.storage.store import Store
from novabench.version import __version__

START = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # the store keeps naive UTC
HOST = "http://127.0.0.1:11434"
MACHINE = "scale-synthetic"  # never this machine's hostname: no run is taken for abandoned
SYSTEM = {
    "os": "Linux",
    "machine": "x86_64",
    "cpu_model": "synthetic",
    "cpu_cores_physical": 2,
    "cpu_cores_logical": 2,
    "ram_bytes": 8 * 2**30,
    "python": "3.11",
    "python_implementation": "CPython",
    "hostname": MACHINE,
}
# A figure in [0, 1) from a row number and a salt: the same every time, spread like uniform.
UNIT_SQL = "((hash({n} * 7919 + {salt}) % 1000003) / 1000003.0)"


def unit(n: str, salt: int) -> str:
    return UNIT_SQL.format(n=n, salt=salt)


@dataclass(frozen=True)
class Level:
    """One level of a synthetic sweep as the SQL lays it out."""

    index: int
    concurrency: int
    requests: int  # per model
    itl_s: float  # mean gap between tokens at this level
    slot_s: float  # how long one stream's request takes at most, so streams never overlap
    start_s: float  # offset of its first request from the run's start


def load_suite_text(
    name: str, models: Sequence[str], levels: Sequence[int], per_level: int, mode: str = "load"
) -> str:
    """A load sweep's suite; or (another `mode`) a suite of that mode with as many requests."""
    listed = ", ".join(models)
    concurrency = ", ".join(str(c) for c in levels)
    head = (
        f"name: {name}\n"
        f"description: Synthetic big run for scale measurements.\n"
        f"host: {HOST}\n"
        f"models: [{listed}]\n"
        'prompts: ["Hi.", "Tell me a joke.", "Summarise the plot of Hamlet."]\n'
        f"modes: [{mode}]\n"
        "warmup: 1\n"
        "sample_interval_s: 0.5\n"
    )
    if mode != "load":
        return head + f"repetitions: {max(1, per_level * len(levels) // 3)}\n"
    return head + (
        f"load: {{concurrency: [{concurrency}], requests_per_level: {per_level}, "
        "slo: {ttft_ms: 500, itl_ms: 60}, early_stop: false}\n"
    )


def _run_row(run_id: str, suite_text: str, started_at: datetime, ended_at: datetime) -> dict:
    suite = parse_suite(suite_text, "synthetic suite")
    return {
        "run_id": run_id,
        "started_at": started_at,
        "ended_at": ended_at,
        "status": "complete",
        "suite_name": suite.name,
        "suite_path": None,
        "suite_text": suite_text,
        "suite_sha256": suite.sha256,
        "host": suite.host,
        "ollama_version": "0.9.0",
        "host_versions": {suite.host: "0.9.0"},
        "novabench_version": __version__,
        "modes": list(suite.modes),
        "repetitions": suite.repetitions if isinstance(suite.repetitions, int) else 1,
        "warmup": suite.warmup,
        "options": {"options": {}, "keep_alive": None},
        "system": SYSTEM,
        "hostname": MACHINE,
        "pid": 1,
        "facts": run_facts(suite.facts()),
        "manifest": {
            "git": None,
            "repetitions": "fixed",
            "cold_start": False,
            "sample_interval_s": suite.sample_interval_s,
            "load": suite.load.model_dump() if suite.load else None,
            "server_warnings": [],
        },
        "models": [
            {
                "model": m.name,
                "host": suite.host,
                "found": True,
                "digest": "sha256:" + hashlib.sha256(m.name.encode()).hexdigest(),
                "size_bytes": 2_000_000_000,
                "family": "llama",
                "parameter_size": "3B",
                "quantization": "Q4_K_M",
                "backend": "ollama",
            }
            for m in suite.models
        ],
        "prompts": [{"prompt_id": p.id, "text": p.text, "system": p.system} for p in suite.prompts],
    }


def _levels(concurrency: Sequence[int], per_level: int, max_tokens: int) -> list[Level]:
    made, start_s = [], 0.0
    for index, streams in enumerate(concurrency):
        itl_s = 0.010 * (1 + streams / 16)
        slot_s = 0.30 + max_tokens * itl_s * 1.4 + 0.01
        made.append(Level(index, streams, per_level, itl_s, slot_s, start_s))
        start_s += math.ceil(per_level / streams) * slot_s + 0.5
    return made


def add_load_run(
    store: Store,
    requests: int = 100_000,
    *,
    run_id: str = "20260101T000000Z-load",
    models: Sequence[str] = ("llama3.2",),
    concurrency: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
    tokens: tuple[int, int] = (16, 112),
    error_share: float = 0.01,
    started_at: datetime = START,
    mode: str = "load",
) -> str:
    """One finished load sweep of about `requests` requests (spread evenly over models and
    levels), each with its token arrival array; resource samples every 0.5 s. Returns its id.

    Another `mode` ('sequential', 'parallel') stores the same requests as a run of that mode:
    no levels, every request in the run's ordinary charts and tables."""
    per_level = max(1, requests // (len(models) * len(concurrency)))
    levels = _levels(concurrency, per_level, tokens[1])
    wall_s = levels[-1].start_s + math.ceil(per_level / levels[-1].concurrency) * levels[-1].slot_s
    suite_text = load_suite_text("load-scale", models, concurrency, per_level, mode)
    store.create_run(
        _run_row(run_id, suite_text, started_at, started_at + timedelta(seconds=wall_s))
    )
    with store.connect() as con:
        con.execute("BEGIN TRANSACTION")
        _insert_load_results(con, run_id, started_at, models, levels, tokens, error_share, mode)
        if mode == "load":
            _insert_load_levels(con, run_id, concurrency)
        _insert_samples(con, run_id, started_at, wall_s, 0.5)
        con.execute("COMMIT")
    return run_id


def _insert_load_results(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    started_at: datetime,
    models: Sequence[str],
    levels: Sequence[Level],
    tokens: tuple[int, int],
    error_share: float,
    mode: str,
) -> None:
    """Warm-ups (one per model, before the sweep), then every level's requests per model."""
    per_level = levels[0].requests
    n_models = len(models)
    low, high = tokens
    # i: the request's number in the sweep; per model, k: its number within its level.
    con.execute(
        f"""
        WITH numbered AS (
            SELECT i, i % $n_models AS m, (i // $n_models) // $per_level AS lv,
                   (i // $n_models) % $per_level AS k
            FROM range($n_models * $per_level * $n_levels) t(i)
        ), placed AS (
            SELECT i, m, lv, k,
                   $concurrency[lv + 1] AS streams, $itl[lv + 1] AS itl, $slot[lv + 1] AS slot,
                   $level_start[lv + 1] + (k // $concurrency[lv + 1]) * $slot[lv + 1]
                       + 0.001 * (k % $concurrency[lv + 1]) + 1.0 AS start_s,
                   {unit("i", 1)} < $error_share AS failed,
                   $low + ({unit("i", 2)} * ($high - $low))::INTEGER AS n_tokens,
                   0.04 + 0.002 * $concurrency[lv + 1] + {unit("i", 3)} * 0.06 AS ttft
            FROM numbered
        ), timed AS (
            SELECT *, CASE WHEN failed THEN []::DOUBLE[] ELSE list_transform(
                       range(n_tokens),
                       lambda j: ttft + j * itl + 0.39 * itl * {unit("(i * 1000 + j)", 4)}
                           + CASE WHEN j > 0 AND {unit("i", 5)} < 0.02 AND j = n_tokens // 2
                                  THEN 0.25 ELSE 0 END) END AS offsets
            FROM placed
        )
        INSERT INTO results (run_id, seq, mode, model, host, prompt_id, repetition, is_warmup,
            started_at, start_offset_s, ttft_s, e2e_s, chunk_count, response_bytes,
            token_offsets_s, prompt_eval_count, prompt_eval_duration_ns, eval_count,
            eval_duration_ns, load_duration_ns, total_duration_ns, done_reason, response_text,
            thinking_text, error, http_status, is_cold, checks, backend, load_level)
        SELECT $run_id, i + $n_models, $mode, $models[m + 1], $host,
               ['p0', 'p1', 'p2'][i % 3 + 1], k, false,
               $started_at::TIMESTAMP + to_microseconds((start_s * 1e6)::BIGINT), start_s,
               CASE WHEN failed THEN NULL ELSE ttft END,
               CASE WHEN failed THEN 0.02 ELSE offsets[-1] + 0.002 END,
               len(offsets), 5 * len(offsets), offsets,
               CASE WHEN failed THEN NULL ELSE 24 END,
               CASE WHEN failed THEN NULL ELSE (ttft * 0.4e9)::BIGINT END,
               CASE WHEN failed THEN NULL ELSE n_tokens END,
               CASE WHEN failed THEN NULL ELSE ((offsets[-1] - ttft) * 1e9)::BIGINT END,
               CASE WHEN failed THEN NULL ELSE 2000000 END,
               CASE WHEN failed THEN NULL ELSE ((offsets[-1] + 0.001) * 1e9)::BIGINT END,
               CASE WHEN failed THEN NULL ELSE 'stop' END,
               CASE WHEN failed THEN '' ELSE repeat('word ', n_tokens) END, '',
               CASE WHEN failed THEN 'HTTP 503: server busy, ' || i::VARCHAR ELSE NULL END,
               CASE WHEN failed THEN 503 ELSE 200 END, false, NULL, 'ollama',
               CASE WHEN $mode = 'load' THEN lv END
        FROM timed
        """,
        {
            "run_id": run_id,
            "host": HOST,
            "models": list(models),
            "n_models": n_models,
            "per_level": per_level,
            "n_levels": len(levels),
            "concurrency": [lv.concurrency for lv in levels],
            "itl": [lv.itl_s for lv in levels],
            "slot": [lv.slot_s for lv in levels],
            "level_start": [lv.start_s for lv in levels],
            "error_share": error_share,
            "low": low,
            "high": high,
            "started_at": started_at,
            "mode": mode,
        },
    )
    # One warm-up per model before the sweep: seq 0..n_models-1, no level.
    con.execute(
        """
        INSERT INTO results (run_id, seq, mode, model, host, prompt_id, repetition, is_warmup,
            started_at, start_offset_s, ttft_s, e2e_s, chunk_count, response_bytes,
            token_offsets_s, eval_count, eval_duration_ns, total_duration_ns, load_duration_ns,
            done_reason, response_text, thinking_text, http_status, is_cold, backend)
        SELECT $run_id, m, $mode, $models[m + 1], $host, 'p0', 0, true,
               $started_at::TIMESTAMP, 0.1 * m, 0.5, 0.8, 3, 15, [0.5, 0.6, 0.7], 3, 200000000,
               790000000, 400000000, 'stop', 'word word word', '', 200, false, 'ollama'
        FROM range($n_models) t(m)
        """,
        {
            "run_id": run_id,
            "host": HOST,
            "models": list(models),
            "n_models": n_models,
            "started_at": started_at,
            "mode": mode,
        },
    )


def _insert_load_levels(
    con: duckdb.DuckDBPyConnection, run_id: str, concurrency: Sequence[int]
) -> None:
    """Each level's record, from the requests just written (what the runner records)."""
    con.execute(
        """
        INSERT INTO load_levels
        SELECT run_id, model, host, load_level, 'concurrency', $levels[load_level + 1],
               min(started_at), min(start_offset_s),
               max(start_offset_s + e2e_s) - min(start_offset_s), count(*), 0, NULL
        FROM results WHERE run_id = $run_id AND load_level IS NOT NULL
        GROUP BY run_id, model, host, load_level
        """,
        {"run_id": run_id, "levels": [float(c) for c in concurrency]},
    )


def _insert_samples(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    started_at: datetime,
    wall_s: float,
    every_s: float,
) -> None:
    con.execute(
        f"""
        INSERT INTO samples (run_id, offset_s, taken_at, cpu_percent, per_core_percent,
            ram_used_bytes, ram_percent, swap_used_bytes, server_cpu_percent, server_rss_bytes)
        SELECT $run_id, n * $every, $started_at::TIMESTAMP
                   + to_microseconds((n * $every * 1e6)::BIGINT),
               30 + 60 * {unit("n", 11)}, [30.0, 40.0], 4000000000 + n * 10, 50.0, 0,
               100 + 80 * {unit("n", 12)}, 2500000000
        FROM range(($wall / $every)::BIGINT + 1) t(n)
        """,
        {"run_id": run_id, "every": every_s, "wall": wall_s, "started_at": started_at},
    )


def main(argv: Sequence[str]) -> None:
    """Build DB with one load run of REQUESTS (when DB does not exist), then time its run page."""
    import os
    import sys
    import time
    from pathlib import Path

    from novabench.report.pages import _plotly_js, render_run

    if len(argv) < 2:
        sys.exit("usage: python -m tests.report.big_run DB OUT [REQUESTS]")
    db, out = Path(argv[0]), Path(argv[1])
    requests = int(argv[2]) if len(argv) > 2 else 100_000
    store = Store(db)
    if not db.exists():
        began = time.perf_counter()
        add_load_run(store, requests)
        print(f"stored {requests:,} requests in {time.perf_counter() - began:.1f} s")
    run_id = store.list_runs()[0].run_id
    began = time.perf_counter()
    page = render_run(store, run_id, out)
    took_s = time.perf_counter() - began
    extra = os.path.getsize(page) - len(str(_plotly_js()).encode())
    print(f"run page {page}: {took_s:.1f} s, plotly.js + {extra / 1e6:.2f} MB")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
