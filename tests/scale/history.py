"""A synthetic history written with the real store: thousands of runs, bulk-inserted in SQL.

`build_history(path, HistoryShape(...))` creates (or extends) a novabench database with runs of
several suites, models and hosts, each run's measured requests with their token arrival arrays,
warm-ups, failures, cold starts and load sweeps, in a few INSERT ... SELECT statements per block
of runs: 100,000 requests take seconds, not the minutes row-by-row inserts would. Every value is
a function of the run and request numbers (DuckDB's `hash`), so the same shape always gives the
same history.

    from tests.scale.history import HistoryShape, build_history
    build_history(Path("big.duckdb"), HistoryShape(runs=10_000, requests_per_run=100))
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from novabench.storage.store import Store

HOSTS = ("http://127.0.0.1:11434", "http://gpu-box.lan:11434")
MODELS = ("llama3.2:3b", "qwen2.5:7b", "gemma3:4b")
SUITES = ("chat", "code", "rag")
LOAD_SUITE = "load"
LOAD_LEVELS = (1, 2, 4, 8)


@dataclass(frozen=True)
class HistoryShape:
    """What the synthetic history holds. Runs take turns over the suites (and every
    `load_every`-th run is a load sweep); a suite's runs alternate between the hosts."""

    runs: int = 3000
    requests_per_run: int = 34  # measured and warm-up requests of an ordinary run
    models_per_run: int = 2
    prompts: int = 4
    modes: tuple[str, ...] = ("sequential", "parallel")
    tokens_min: int = 16
    tokens_max: int = 64
    error_share: float = 0.02  # of measured requests
    load_every: int = 25  # 0: no load runs
    load_requests_per_level: int = 8
    digest_every: int = 700  # a model's digest changes every this many runs
    version_every: int = 1100  # the hosts' Ollama version changes every this many runs
    start: datetime = datetime(2026, 1, 1, 0, 0, 0)
    interval: timedelta = timedelta(hours=1)
    block_runs: int = 500  # runs per INSERT statement (bounds memory at 1,000,000 requests)


def build_history(path: Path, shape: HistoryShape = HistoryShape(), first: int = 0) -> Store:
    """Add `shape.runs` complete runs (numbered from `first`) to the database at `path`."""
    store = Store(path)
    with store.connect() as con:
        con.execute("SET enable_progress_bar = false")
        for block in range(first, first + shape.runs, shape.block_runs):
            count = min(shape.block_runs, first + shape.runs - block)
            params = _params(shape, block, count)
            con.execute("BEGIN TRANSACTION")
            for sql in (_RUNS_SQL, _MODELS_SQL, _PROMPTS_SQL, _RESULTS_SQL, _LEVELS_SQL):
                used = set(re.findall(r"\$(\w+)", sql))  # DuckDB refuses unused parameters
                con.execute(sql, {k: v for k, v in params.items() if k in used})
            con.execute("COMMIT")
    return store


def _params(shape: HistoryShape, block: int, count: int) -> dict[str, object]:
    return {
        "first": block,
        "count": count,
        "start": shape.start,
        "interval_s": shape.interval.total_seconds(),
        "suites": list(SUITES),
        "hosts": list(HOSTS),
        "models": list(MODELS[: max(1, shape.models_per_run)]),
        "prompts": shape.prompts,
        "modes": list(shape.modes),
        "per_run": shape.requests_per_run,
        "tokens_min": shape.tokens_min,
        "tokens_span": max(1, shape.tokens_max - shape.tokens_min + 1),
        "error_share": shape.error_share,
        "load_every": shape.load_every,
        "load_levels": list(LOAD_LEVELS),
        "per_level": shape.load_requests_per_level,
        "digest_every": shape.digest_every,
        "version_every": shape.version_every,
        "facts": json.dumps({"recorded": "at run", "load": None}),
        "load_facts": json.dumps(
            {
                "recorded": "at run",
                "load": {"kind": "concurrency", "levels": list(LOAD_LEVELS), "slo": None},
            }
        ),
    }


# One row per run: its number, id, suite, host, start, and whether it is a load sweep.
_RUN_ROWS = """
    SELECT i,
           strftime($start + to_seconds(i * $interval_s), '%Y%m%dT%H%M%SZ')
               || '-' || lpad(printf('%x', i % 65536), 4, '0') AS run_id,
           $load_every > 0 AND i % $load_every = $load_every - 1 AS is_load,
           $start + to_seconds(i * $interval_s) AS started_at,
           $hosts[1 + (i // len($suites)) % len($hosts)] AS host,
           '0.' || (12 + i // $version_every) || '.0' AS version
    FROM range($first, $first + $count) AS t(i)
"""

_RUNS_SQL = f"""
    INSERT INTO runs (run_id, started_at, ended_at, status, suite_name, suite_path, suite_text,
                      suite_sha256, host, ollama_version, host_versions, novabench_version, modes,
                      repetitions, warmup, options, system, hostname, pid, facts)
    SELECT run_id, started_at, started_at + INTERVAL 3 MINUTE, 'complete',
           CASE WHEN is_load THEN '{LOAD_SUITE}' ELSE $suites[1 + i % len($suites)] END,
           'suites/synthetic.yaml', 'name: synthetic\n', repeat('0', 64), host, version,
           json_object(host, version), '0.1.0',
           CASE WHEN is_load THEN ['load'] ELSE $modes END, 2, 2, '{{}}',
           '{{"os": "Linux"}}', 'scale-box', 1,
           CASE WHEN is_load THEN $load_facts ELSE $facts END
    FROM ({_RUN_ROWS})
"""

_MODELS_SQL = f"""
    INSERT INTO models (run_id, model, host, found, digest, size_bytes, options, backend)
    SELECT run_id, $models[m], host, true,
           'sha256:' || sha256($models[m] || (i // $digest_every)::VARCHAR), 2000000000, '{{}}',
           'ollama'
    FROM ({_RUN_ROWS}), range(1, len($models) + 1) AS mm(m)
"""

_PROMPTS_SQL = f"""
    INSERT INTO prompts (run_id, prompt_id, position, text, system)
    SELECT run_id, 'p' || p, p, 'Prompt number ' || p, NULL
    FROM ({_RUN_ROWS}), range(1, $prompts + 1) AS pp(p)
    WHERE NOT is_load
"""

# A request: j numbers it within its run. Ordinary runs: the first (#models) are warm-ups, the
# rest cycle over model, mode and prompt; load runs: per model, per level, `per_level` requests.
_REQUESTS = f"""
    SELECT r.*, j,
           hash(r.i, j) AS h,
           CASE WHEN is_load THEN 'load'
                ELSE $modes[1 + (j // len($models) // $prompts) % len($modes)] END AS mode,
           $models[1 + CASE WHEN is_load THEN j // (len($load_levels) * $per_level)
                            ELSE j % len($models) END] AS model,
           CASE WHEN is_load THEN 'p' || (1 + j % 2)
                ELSE 'p' || (1 + (j // len($models)) % $prompts) END AS prompt_id,
           NOT is_load AND j < len($models) AS is_warmup,
           CASE WHEN is_load THEN (j // $per_level) % len($load_levels) END AS load_level
    FROM ({_RUN_ROWS}) AS r,
         range(0, greatest($per_run, len($models) * len($load_levels) * $per_level)) AS jj(j)
    WHERE CASE WHEN is_load THEN j < len($models) * len($load_levels) * $per_level
               ELSE j < $per_run END
"""

_TIMED = f"""
    SELECT *,
           $tokens_min + (h % $tokens_span)::INTEGER AS tokens,
           -- seconds: a model-dependent base, a slow drift over the history, per-request noise
           (0.08 + 0.04 * list_position($models, model) + 0.00001 * (i % 1000)
            + ((h // 7) % 1000) / 20000.0)
           * CASE WHEN mode = 'parallel' THEN 1.6 WHEN mode = 'load' THEN 1.0 + load_level
                  ELSE 1.0 END AS ttft_s,
           (0.012 + 0.004 * list_position($models, model) + ((h // 13) % 1000) / 500000.0)
           * CASE WHEN mode = 'sequential' THEN 1.0 ELSE 1.3 END AS gap_s,
           ((h // 17) % 100000) / 100000.0 < $error_share AND NOT is_warmup AS failed
    FROM ({_REQUESTS})
"""

_RESULTS_SQL = f"""
    INSERT INTO results (run_id, seq, mode, model, host, prompt_id, repetition, is_warmup,
                         started_at, start_offset_s, ttft_s, e2e_s, chunk_count, response_bytes,
                         token_offsets_s, prompt_eval_count, prompt_eval_duration_ns,
                         eval_count, eval_duration_ns, load_duration_ns, total_duration_ns,
                         done_reason, response_text, thinking_text, error, http_status, is_cold,
                         backend, checks, load_level)
    SELECT run_id, j, mode, model, host, prompt_id, j // 16, is_warmup,
           started_at + to_seconds(j * 2.0), j * 2.0,
           CASE WHEN NOT failed THEN ttft_s END,
           CASE WHEN NOT failed THEN ttft_s + (tokens - 1) * gap_s END,
           CASE WHEN failed THEN 0 ELSE tokens + 1 END,
           CASE WHEN failed THEN 0 ELSE tokens * 5 END,
           CASE WHEN failed THEN []::DOUBLE[]
                ELSE list_transform(range(tokens), lambda k: ttft_s + k * gap_s) END,
           CASE WHEN NOT failed THEN 20 + (h % 40)::INTEGER END,
           CASE WHEN NOT failed THEN 20000000 + (h % 5000000)::BIGINT END,
           CASE WHEN NOT failed THEN tokens END,
           CASE WHEN NOT failed THEN ((tokens - 1) * gap_s * 1e9)::BIGINT END,
           CASE WHEN NOT failed THEN 1000000 END,
           CASE WHEN NOT failed THEN ((ttft_s + tokens * gap_s) * 1e9)::BIGINT END,
           CASE WHEN NOT failed THEN 'stop' END,
           CASE WHEN failed THEN '' ELSE repeat('word ', tokens) END, '',
           CASE WHEN failed THEN 'HTTP 500: synthetic failure' END,
           CASE WHEN failed THEN 500 ELSE 200 END,
           false, 'ollama', NULL, load_level
    FROM ({_TIMED})
"""

_LEVELS_SQL = f"""
    INSERT INTO load_levels (run_id, model, host, level_index, kind, level, started_at,
                             started_offset_s, wall_s, requests, delayed_arrivals, stop_reason)
    SELECT run_id, $models[m], host, li - 1, 'concurrency', $load_levels[li],
           started_at + to_seconds(((m - 1) * len($load_levels) + li - 1) * 20.0),
           ((m - 1) * len($load_levels) + li - 1) * 20.0,
           $per_level * 0.9 / $load_levels[li] ^ 0.7, $per_level, 0, NULL
    FROM ({_RUN_ROWS}), range(1, len($models) + 1) AS mm(m),
         range(1, len($load_levels) + 1) AS ll(li)
    WHERE is_load
"""
