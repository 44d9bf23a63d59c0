"""The statements of tests/scale/generate.py; $names are its parameters (suites.suite_params).

`plan` (a temporary table) has one row per run; every other table is filled from it and from
`results`, the way the runner records a run: phases, load levels and repetition stops are the
aggregates of the run's own requests, the run's end its last request's end.
"""

from __future__ import annotations

import re
from typing import Any


def used(statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a statement names (DuckDB refuses any it does not use)."""
    names = set(re.findall(r"\$(\w+)", statement))
    return {name: value for name, value in params.items() if name in names}


def unit(salt: int, *keys: str) -> str:
    """A figure in [0, 1) from the row's keys: the same every time, spread like uniform."""
    return f"((hash({', '.join(keys)}, {salt}) % 1000003) / 1000003.0)"


PLAN = """
    CREATE TEMP TABLE plan AS
    WITH numbered AS (
        SELECT i,
               CASE WHEN i = $ordinary THEN $page_suite
                    WHEN i % $load_every = $load_every - 1 THEN $load_suite
                    ELSE i % $n_history_suites END AS s,
               CASE WHEN i = $ordinary THEN $page_requests
                    ELSE (i + 1) * $spread // $ordinary - i * $spread // $ordinary END AS n,
               $start::TIMESTAMP + to_hours(i)
                   + to_microseconds((hash(i) % 30000000)::BIGINT) AS started_at
        FROM range(0, $ordinary + 1) t(i)
    )
    SELECT i, s, n, started_at,
           strftime(started_at, '%Y%m%dT%H%M%SZ') || '-' || printf('%04x', hash(i, 1) % 65536)
               AS run_id,
           CASE WHEN i = $ordinary THEN $hosts[1]
                ELSE $hosts[1 + (i // $n_history_suites) % len($hosts)] END AS host,
           CASE WHEN i % $interrupted_every = $interrupted_every // 2 AND i <> $ordinary
                THEN 'interrupted' ELSE 'complete' END AS status,
           '0.' || (9 + i // 4000)::VARCHAR || '.' || ((i // 700) % 7)::VARCHAR AS ollama_version,
           i // $digest_every AS epoch,
           len($suite_models[s + 1]) AS nm,
           $suite_prompts[s + 1] AS np,
           len($suite_modes[s + 1]) AS nmo,
           len($suite_levels[s + 1]) AS nlev,
           $suite_is_load[s + 1] AS is_load
    FROM numbered
"""

RUNS = """
    INSERT INTO runs (run_id, started_at, ended_at, status, suite_name, suite_path, suite_text,
        suite_sha256, host, ollama_version, host_versions, novabench_version, modes,
        repetitions, warmup, options, system, hostname, pid, manifest, facts)
    SELECT run_id, started_at, NULL, status, $names[s + 1],
           'suites/' || $names[s + 1] || '.yaml', $texts[s + 1], $shas[s + 1], host,
           ollama_version, json_object(host, ollama_version), $version, $suite_modes[s + 1],
           CASE WHEN is_load THEN 1 ELSE greatest(1, (n - nm) // (nm * np * nmo)) END, 1,
           $options, $system, $machine, 1000 + i, $manifests[s + 1], $facts[s + 1]
    FROM plan
"""

MODELS = """
    INSERT INTO models (run_id, model, host, found, digest, size_bytes, family, parameter_size,
        quantization, options, context_length, loaded_size_bytes, loaded_vram_bytes, backend,
        engine_model, unsent_options)
    SELECT run_id, model, host, true, sha256(model || ':' || epoch::VARCHAR),
           size_bytes, split_part(split_part(model, ':', 1), '.', 1),
           upper(split_part(model, ':', 2)), 'Q4_K_M', '{}', 131072, size_bytes, size_bytes,
           'ollama', model, []::VARCHAR[]
    FROM (SELECT *, 2000000000 + (hash(model) % 3000000000)::BIGINT AS size_bytes
          FROM (SELECT *, unnest($suite_models[s + 1]) AS model FROM plan))
"""

PROMPTS = """
    INSERT INTO prompts (run_id, prompt_id, position, text, system)
    SELECT run_id, 'p' || (p + 1)::VARCHAR, p,
           'Prompt ' || (p + 1)::VARCHAR || ' of ' || $names[s + 1]
               || ': answer in one sentence.', NULL
    FROM (SELECT *, unnest(range(np)) AS p FROM plan)
"""

_LAID = """
    WITH laid AS (
        SELECT *, j < nm AS warm, greatest(j - nm, 0) AS k, greatest(n - nm, 1) AS measured
        FROM (SELECT *, unnest(range(n)) AS j FROM plan WHERE i >= $lo AND i < $hi)
    ), named AS (
        SELECT *,
               CASE WHEN warm THEN j ELSE k % nm END AS m,
               CASE WHEN warm THEN 0 WHEN is_load THEN k % np ELSE (k // nm) % np END AS pr,
               CASE WHEN warm OR is_load THEN 0 ELSE (k // (nm * np)) % nmo END AS mo,
               CASE WHEN is_load AND NOT warm THEN (k * nlev) // measured END AS lv
        FROM laid
    ), placed AS (
        SELECT *,
               $suite_models[s + 1][m + 1] AS model,
               $suite_modes[s + 1][mo + 1] AS mode,
               coalesce($suite_levels[s + 1][lv + 1], 1.0)::INTEGER AS streams,
               k - (lv * measured + nlev - 1) // nlev AS k_in
        FROM named
    )
"""

_TIMED = f"""
    , timed AS (
        SELECT *,
               CASE WHEN warm THEN 0.2 + j * 1.0
                    WHEN is_load THEN nm + 1.0 + measured * $suite_level_starts[s + 1][lv + 1]
                         + (k_in // streams) * $suite_slots[s + 1][lv + 1]
                         + 0.001 * (k_in % streams)
                    ELSE 1.0 + j * 1.5 END AS start_s,
               (0.04 + (hash(model) % 100) / 1000.0)
                   * (1 + 0.12 * sin(i / 400.0) + 0.08 * (epoch % 2))
                   * CASE WHEN host = $hosts[1] THEN 1.0 ELSE 0.6 END
                   * CASE WHEN mode = 'parallel' THEN 1.8 WHEN mode = 'load'
                          THEN 1 + 0.02 * streams ELSE 1.0 END
                   * CASE WHEN warm THEN 3.0 ELSE 1.0 END
                   * (0.85 + 0.3 * {unit(1, "i", "j")}) AS ttft,
               (0.008 + (hash(model) % 80) / 10000.0)
                   * (1 + 0.12 * sin(i / 400.0) + 0.08 * (epoch % 2))
                   * CASE WHEN host = $hosts[1] THEN 1.0 ELSE 0.6 END
                   * CASE WHEN mode = 'parallel' THEN 1.4 WHEN mode = 'load'
                          THEN 1 + 0.01 * streams ELSE 1.0 END
                   * (0.9 + 0.2 * {unit(2, "i", "j")}) AS itl,
               16 + floor({unit(3, "i", "j")} * 64)::INTEGER AS n_tokens,
               NOT warm AND {unit(4, "i", "j")} < $error_share AS failed
        FROM placed
    ), arrays AS (
        SELECT *,
               CASE WHEN failed THEN []::DOUBLE[]
                    ELSE list_transform(range(n_tokens), lambda t: ttft + t * itl
                         + 0.3 * itl * ((hash(i, j, t) % 1009) / 1009.0)) END AS offsets
        FROM timed
    )
"""

RESULTS = f"""
    INSERT INTO results (run_id, seq, mode, model, host, prompt_id, repetition, is_warmup,
        started_at, start_offset_s, ttft_s, e2e_s, chunk_count, response_bytes,
        token_offsets_s, prompt_eval_count, prompt_eval_duration_ns, eval_count,
        eval_duration_ns, load_duration_ns, total_duration_ns, done_reason, response_text,
        thinking_text, error, http_status, is_cold, checks, backend, load_level)
    {_LAID}{_TIMED}
    SELECT run_id, j, mode, model, host, 'p' || (pr + 1)::VARCHAR,
           CASE WHEN warm THEN 0 WHEN is_load THEN k_in ELSE k // (nm * np * nmo) END,
           warm, started_at + to_microseconds((start_s * 1e6)::BIGINT), start_s,
           CASE WHEN NOT failed THEN offsets[1] END,
           CASE WHEN failed THEN 0.02 ELSE offsets[-1] + 0.003 END,
           CASE WHEN failed THEN 0 ELSE n_tokens + 1 END,
           CASE WHEN failed THEN 0 ELSE 110 * (n_tokens + 1) END,
           offsets,
           CASE WHEN NOT failed THEN 20 + floor({unit(5, "i", "j")} * 40)::INTEGER END,
           CASE WHEN NOT failed THEN (ttft * 0.4e9)::BIGINT END,
           CASE WHEN NOT failed THEN n_tokens END,
           CASE WHEN NOT failed THEN ((offsets[-1] - offsets[1]) * 1e9)::BIGINT END,
           CASE WHEN failed THEN NULL WHEN warm THEN 1200000000 ELSE 1000000 END,
           CASE WHEN NOT failed THEN ((offsets[-1] + 0.002) * 1e9)::BIGINT END,
           CASE WHEN NOT failed THEN 'stop' END,
           CASE WHEN failed THEN '' ELSE rtrim(repeat('word ', n_tokens)) END, '',
           CASE WHEN failed THEN 'HTTP 500 from ' || host || ': model runner crashed' END,
           CASE WHEN failed THEN 500 ELSE 200 END,
           false, NULL, 'ollama', lv
    FROM arrays
"""

ENDED = """
    UPDATE runs SET ended_at = runs.started_at + to_microseconds(((w.wall_s + 1.0) * 1e6)::BIGINT)
    FROM (SELECT run_id, max(start_offset_s + e2e_s) AS wall_s FROM results GROUP BY run_id) w
    WHERE runs.run_id = w.run_id
"""

PHASES = """
    INSERT INTO phases (run_id, mode, started_at, wall_s, requests)
    SELECT run_id, mode, min(started_at), max(start_offset_s + e2e_s) - min(start_offset_s),
           count(*)
    FROM results WHERE NOT is_warmup GROUP BY run_id, mode
"""

LEVELS = """
    INSERT INTO load_levels (run_id, model, host, level_index, kind, level, started_at,
        started_offset_s, wall_s, requests, delayed_arrivals, stop_reason)
    SELECT x.run_id, x.model, x.host, x.load_level, 'concurrency',
           $suite_levels[any_value(p.s) + 1][x.load_level + 1], min(x.started_at),
           min(x.start_offset_s), max(x.start_offset_s + x.e2e_s) - min(x.start_offset_s),
           count(*), 0, NULL
    FROM results x JOIN plan p USING (run_id)
    WHERE x.load_level IS NOT NULL
    GROUP BY x.run_id, x.model, x.host, x.load_level
"""

STOPS = """
    INSERT INTO repetition_stops (run_id, mode, model, host, prompt_id, repetitions, reason,
        ci_half_width_ratio)
    SELECT run_id, mode, model, host, prompt_id, count(*), 'fixed', NULL
    FROM results WHERE NOT is_warmup AND load_level IS NULL
    GROUP BY run_id, mode, model, host, prompt_id
"""

SAMPLES = f"""
    INSERT INTO samples (run_id, offset_s, taken_at, cpu_percent, per_core_percent,
        ram_used_bytes, ram_percent, swap_used_bytes, server_cpu_percent, server_rss_bytes)
    SELECT run_id, t * 2.0, started_at + to_microseconds(t * 2000000),
           20 + 70 * {unit(6, "run_id", "t")},
           [20 + 70 * {unit(7, "run_id", "t")}, 20 + 70 * {unit(8, "run_id", "t")}],
           8000000000 + (2000000000 * {unit(9, "run_id", "t")})::BIGINT,
           25 + 6 * {unit(9, "run_id", "t")}, 0,
           40 + 150 * {unit(10, "run_id", "t")}, 2500000000
    FROM (SELECT run_id, started_at,
                 unnest(range((epoch(ended_at - started_at) / 2)::BIGINT + 1)) AS t
          FROM runs)
"""
