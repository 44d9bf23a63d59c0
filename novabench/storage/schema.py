"""The history's schema: numbered, append-only migrations recorded in schema_migrations.

Never edit a migration that has shipped; add the next number instead.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

RUN_STATUSES = ("running", "complete", "interrupted", "aborted")


def _m001_initial(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            started_at TIMESTAMP NOT NULL,      -- UTC
            ended_at TIMESTAMP,                 -- UTC
            status VARCHAR NOT NULL,            -- running / complete / interrupted / aborted
            suite_name VARCHAR NOT NULL,
            suite_path VARCHAR,
            suite_text VARCHAR NOT NULL,
            suite_sha256 VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            ollama_version VARCHAR,
            host_versions JSON,                 -- {host: version} for every host the suite uses
            novabench_version VARCHAR NOT NULL,
            modes VARCHAR[] NOT NULL,
            repetitions INTEGER NOT NULL,
            warmup INTEGER NOT NULL,
            options JSON,
            system JSON,                        -- OS, CPU, RAM, Python, hostname
            hostname VARCHAR,
            pid INTEGER
        )
        """
    )
    con.execute(
        """
        CREATE TABLE models (
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            found BOOLEAN NOT NULL,
            digest VARCHAR,
            size_bytes BIGINT,
            family VARCHAR,
            parameter_size VARCHAR,
            quantization VARCHAR,
            options JSON,                       -- effective options sent with every request
            PRIMARY KEY (run_id, model, host)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE prompts (
            run_id VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,
            text VARCHAR NOT NULL,
            system VARCHAR,
            PRIMARY KEY (run_id, prompt_id)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE results (
            run_id VARCHAR NOT NULL,
            seq INTEGER NOT NULL,               -- order in which requests finished
            mode VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            repetition INTEGER NOT NULL,
            is_warmup BOOLEAN NOT NULL,
            started_at TIMESTAMP NOT NULL,      -- UTC
            start_offset_s DOUBLE NOT NULL,     -- request sent, seconds after the run started
            ttft_s DOUBLE,
            e2e_s DOUBLE,
            chunk_count INTEGER NOT NULL,
            response_bytes BIGINT NOT NULL,
            token_offsets_s DOUBLE[],           -- content/thinking chunk arrivals, s after send
            prompt_eval_count INTEGER,
            prompt_eval_duration_ns BIGINT,
            eval_count INTEGER,
            eval_duration_ns BIGINT,
            load_duration_ns BIGINT,
            total_duration_ns BIGINT,
            done_reason VARCHAR,
            response_text VARCHAR NOT NULL,
            thinking_text VARCHAR NOT NULL,
            error VARCHAR,
            http_status INTEGER,
            PRIMARY KEY (run_id, seq)
        )
        """
    )
    con.execute(
        """
        CREATE TABLE phases (
            run_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL,      -- UTC
            wall_s DOUBLE NOT NULL,             -- measured requests only, warm-up excluded
            requests INTEGER NOT NULL,
            PRIMARY KEY (run_id, mode)
        )
        """
    )


def _m002_measurement(con: duckdb.DuckDBPyConnection) -> None:
    """Cold starts, checks, resource samples, auto-repetition stops and the run manifest."""
    con.execute("ALTER TABLE results ADD COLUMN is_cold BOOLEAN DEFAULT false")
    con.execute("ALTER TABLE results ADD COLUMN checks JSON")  # {check name: passed}
    con.execute("ALTER TABLE runs ADD COLUMN manifest JSON")  # git, GPUs, effective settings
    con.execute("ALTER TABLE models ADD COLUMN context_length INTEGER")
    con.execute("ALTER TABLE models ADD COLUMN show_info JSON")  # /api/show: details, parameters
    con.execute("ALTER TABLE models ADD COLUMN loaded_size_bytes BIGINT")  # /api/ps size
    con.execute("ALTER TABLE models ADD COLUMN loaded_vram_bytes BIGINT")  # /api/ps size_vram
    con.execute(
        """
        CREATE TABLE samples (
            run_id VARCHAR NOT NULL,
            offset_s DOUBLE NOT NULL,           -- seconds after the run started
            taken_at TIMESTAMP NOT NULL,        -- UTC
            cpu_percent DOUBLE,
            per_core_percent DOUBLE[],
            ram_used_bytes BIGINT,
            ram_percent DOUBLE,
            swap_used_bytes BIGINT,
            server_cpu_percent DOUBLE,          -- the Ollama server and its runners, when local
            server_rss_bytes BIGINT,
            gpu_util_percent DOUBLE,
            gpu_mem_used_bytes BIGINT,
            gpu_power_w DOUBLE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE repetition_stops (
            run_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            repetitions INTEGER NOT NULL,
            reason VARCHAR NOT NULL,            -- target_reached / max_repetitions / fixed
            ci_half_width_ratio DOUBLE          -- of the median of the target figure
        )
        """
    )


def _m003_baseline(con: duckdb.DuckDBPyConnection) -> None:
    """What a run was compared against; the comparison itself is recomputed on read."""
    con.execute("ALTER TABLE runs ADD COLUMN baseline VARCHAR")  # last / RUN_ID / median:N
    con.execute("ALTER TABLE runs ADD COLUMN fail_on_regression_pct DOUBLE")


def _m004_backends(con: duckdb.DuckDBPyConnection) -> None:
    """Which engine served each model and request; the engine's own model id."""
    con.execute("ALTER TABLE results ADD COLUMN backend VARCHAR DEFAULT 'ollama'")
    con.execute("ALTER TABLE models ADD COLUMN backend VARCHAR DEFAULT 'ollama'")
    con.execute("ALTER TABLE models ADD COLUMN engine_model VARCHAR")  # id sent to the engine


def _m005_load(con: duckdb.DuckDBPyConnection) -> None:
    """Load sweeps: the level each request was sent at, and each level's own facts."""
    con.execute("ALTER TABLE results ADD COLUMN load_level INTEGER")  # index into load_levels
    con.execute(
        """
        CREATE TABLE load_levels (
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            level_index INTEGER NOT NULL,       -- position in the suite's list of levels
            kind VARCHAR NOT NULL,              -- concurrency / rate
            level DOUBLE NOT NULL,              -- concurrent streams, or requests/s offered
            started_at TIMESTAMP NOT NULL,      -- UTC
            started_offset_s DOUBLE NOT NULL,   -- first request sent, seconds after run start
            wall_s DOUBLE NOT NULL,             -- first request sent to last request ended
            requests INTEGER NOT NULL,          -- sent at this level
            delayed_arrivals INTEGER NOT NULL,  -- rate levels: arrivals that waited for a slot
            stop_reason VARCHAR,                -- last level run: saturated/failing/interrupted
            PRIMARY KEY (run_id, model, host, level_index)
        )
        """
    )


def _m006_facts(con: duckdb.DuckDBPyConnection) -> None:
    """Facts the report needs, stored with the run: the suite's (runs.facts) and the options an
    engine does not send (models.unsent_options). Older runs are filled in from their suite text
    where today's schema still reads it; otherwise their facts say they were not recorded."""
    from novabench.storage.facts import backfill

    con.execute("ALTER TABLE runs ADD COLUMN facts JSON")
    con.execute("ALTER TABLE models ADD COLUMN unsent_options VARCHAR[]")
    backfill(con)


def _m007_summaries(con: duckdb.DuckDBPyConnection) -> None:
    """Per-run aggregates, so that the history reads a row per run instead of every request:
    summaries of each run's measured requests (made in SQL, back-filled here), its significant
    changes against the previous comparable run, and its load levels (both made by analysis,
    for older runs the first time the history is written). The results stay the source of
    truth: every table here can be rebuilt from them (`novabench history --rebuild-summaries`)."""
    from novabench.storage.summaries import summarize_runs

    con.execute(
        """
        CREATE TABLE run_summaries (
            run_id VARCHAR NOT NULL,
            mode VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            prompt_id VARCHAR,                  -- NULL: every prompt of the mode, model and host
            n INTEGER NOT NULL,                 -- successful measured requests
            errors INTEGER NOT NULL,            -- failed measured requests
            prompt_cached INTEGER NOT NULL,     -- successful, prompt read from the KV cache
            output_tokens BIGINT NOT NULL,      -- generated by the successful ones
            ttft_ms_p50 DOUBLE,                 -- medians (p50) and 95th percentiles (p95)
            ttft_ms_p95 DOUBLE,
            e2e_ms_p50 DOUBLE,
            e2e_ms_p95 DOUBLE,
            itl_ms_p50 DOUBLE,
            itl_ms_p95 DOUBLE,
            tpot_ms_p50 DOUBLE,
            eval_tokens_per_s_p50 DOUBLE,
            prompt_tokens_per_s_p50 DOUBLE,     -- uncached prompts only
            client_tokens_per_s_p50 DOUBLE,
            output_tokens_p50 DOUBLE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE run_changes (
            run_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,          -- order of the findings within the run
            mode VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            prompt_id VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            baseline_run_ids VARCHAR[] NOT NULL,
            n_a INTEGER NOT NULL,
            n_b INTEGER NOT NULL,
            median_a DOUBLE NOT NULL,
            median_b DOUBLE NOT NULL,
            change DOUBLE,                      -- (B - A) / A; NULL when A's median is 0
            p_value DOUBLE,
            verdict VARCHAR NOT NULL,           -- regression / improvement
            notes VARCHAR[] NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE level_summaries (
            run_id VARCHAR NOT NULL,
            model VARCHAR NOT NULL,
            host VARCHAR NOT NULL,
            level_index INTEGER NOT NULL,
            kind VARCHAR NOT NULL,
            level DOUBLE NOT NULL,
            started_offset_s DOUBLE,
            wall_s DOUBLE,
            requests INTEGER NOT NULL,
            delayed_arrivals INTEGER,
            stop_reason VARCHAR,
            started_at TIMESTAMP,
            ok INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            error_rate DOUBLE,
            output_tokens DOUBLE,
            output_tokens_per_s DOUBLE,
            requests_per_s DOUBLE,
            goodput_rps DOUBLE,
            slo_met INTEGER,
            slo_attainment DOUBLE,
            stream_tokens_per_s_p50 DOUBLE,
            queue_ms_p50 DOUBLE,
            queue_ms_p95 DOUBLE,
            ttft_ms_p50 DOUBLE,
            ttft_ms_p95 DOUBLE,
            ttft_ms_p99 DOUBLE,
            itl_ms_p50 DOUBLE,
            itl_ms_p95 DOUBLE,
            itl_ms_p99 DOUBLE,
            e2e_ms_p50 DOUBLE,
            e2e_ms_p95 DOUBLE,
            e2e_ms_p99 DOUBLE,
            samples INTEGER,
            cpu_percent_mean DOUBLE,
            cpu_percent_peak DOUBLE,
            server_cpu_percent_mean DOUBLE,
            server_cpu_percent_peak DOUBLE,
            server_rss_bytes_peak DOUBLE,
            ram_used_bytes_peak DOUBLE,
            gpu_util_percent_mean DOUBLE,
            gpu_mem_used_bytes_peak DOUBLE,
            gpu_power_w_mean DOUBLE
        )
        """
    )
    con.execute(
        """
        CREATE TABLE summary_state (
            run_id VARCHAR NOT NULL,
            run_status VARCHAR NOT NULL,        -- the run's status when its summaries were made
            summarized_at TIMESTAMP NOT NULL,   -- UTC
            changes_at TIMESTAMP,               -- run_changes made (UTC); NULL: not yet
            levels_at TIMESTAMP                 -- level_summaries made (UTC); NULL: not yet
        )
        """
    )
    summarize_runs(con)


def _m008_pruned(con: duckdb.DuckDBPyConnection) -> None:
    """`novabench prune --keep-summaries`: when a run's raw rows were removed, its row and
    summaries kept (NULL: never pruned)."""
    con.execute("ALTER TABLE runs ADD COLUMN pruned_at TIMESTAMP")  # UTC


# Append-only: never edit a migration that has shipped; add the next number instead.
MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
    (1, "m001_initial", _m001_initial),
    (2, "m002_measurement", _m002_measurement),
    (3, "m003_baseline", _m003_baseline),
    (4, "m004_backends", _m004_backends),
    (5, "m005_load", _m005_load),
    (6, "m006_facts", _m006_facts),
    (7, "m007_summaries", _m007_summaries),
    (8, "m008_pruned", _m008_pruned),
]


SCHEMA_VERSION = MIGRATIONS[-1][0]
