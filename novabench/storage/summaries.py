"""Per-run aggregates computed in SQL from the raw results: what the history reads instead of them.

`run_summaries` holds, per run and (mode, model, host, prompt), and per (mode, model, host) over
every prompt (prompt_id NULL), the counts of measured requests and the medians and 95th
percentiles of their figures. The figures are analysis/figures.py's derive(), written again in
SQL; the percentiles are its quantile() (numpy's linear interpolation, to the last bit: DuckDB's
own quantile_cont rounds differently); the requests are is_measured()'s (MEASURED_SQL). A test
holds the two in step (tests/storage/test_summaries.py).

`summary_state` says, per run, for which status of the run its summaries were made and whether
its changes (`run_changes`) and load levels (`level_summaries`) are stored yet; those two are
made by analysis and written through the store (store.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from novabench.records import utcnow

# A warm, counted request in SQL: analysis.figures.is_measured's twin (a test holds them equal).
MEASURED_SQL = "NOT {x}.is_warmup AND NOT {x}.is_cold"
# analysis.figures.PROMPT_CACHE_FACTOR; a test holds them equal.
PROMPT_CACHE_FACTOR = 5.0

# (figure, percentiles stored): run_summaries has a column <figure>_p<q> for each.
SUMMARY_FIGURES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("ttft_ms", (50, 95)),
    ("e2e_ms", (50, 95)),
    ("itl_ms", (50, 95)),
    ("tpot_ms", (50,)),
    ("eval_tokens_per_s", (50,)),
    ("prompt_tokens_per_s", (50,)),
    ("client_tokens_per_s", (50,)),
    ("output_tokens", (50,)),
)
SUMMARY_COLUMNS = tuple(f"{name}_p{q}" for name, qs in SUMMARY_FIGURES for q in qs)

# figures.quantile(): numpy's lerp, so that DuckDB gives numpy.percentile's value to the last bit.
_MACROS = (
    """CREATE OR REPLACE TEMP MACRO nb_lerp(a, b, t) AS
       CASE WHEN t < 0.5 THEN a + (b - a) * t ELSE b - (b - a) * (1 - t) END""",
    """CREATE OR REPLACE TEMP MACRO nb_quantile(v, q) AS
       CASE WHEN len(v) > 0 THEN nb_lerp(
           v[floor(q * (len(v) - 1))::BIGINT + 1],
           v[least(floor(q * (len(v) - 1))::BIGINT + 2, len(v))],
           q * (len(v) - 1) - floor(q * (len(v) - 1)))
       END""",
)


def _rate(count: str, duration_ns: str) -> str:
    """figures._rate: count per second of duration, None without a count or a duration."""
    return (
        f"CASE WHEN coalesce({count}, 0) <> 0 AND coalesce({duration_ns}, 0) > 0 "
        f"THEN {count}::BIGINT * 1000000000 / {duration_ns} END"
    )


# One row per stored request with figures.derive()'s figures (those the summaries keep).
_DERIVED = f"""
    counted AS (
        SELECT x.run_id, x.mode, x.model, x.host, x.prompt_id, x.ttft_s, x.e2e_s,
               {MEASURED_SQL.format(x="x")} AS measured,
               x.error IS NULL AS ok,
               x.prompt_eval_count,
               CASE WHEN coalesce(x.eval_count, 0) <> 0 THEN x.eval_count
                    ELSE coalesce(len(x.token_offsets_s), 0) END AS tokens,
               CASE WHEN len(x.token_offsets_s) >= 2
                    THEN x.token_offsets_s[len(x.token_offsets_s)] - x.token_offsets_s[1]
               END AS stream_s,
               {_rate("x.eval_count", "x.eval_duration_ns")} AS eval_tokens_per_s,
               {_rate("x.prompt_eval_count", "x.prompt_eval_duration_ns")} AS prompt_tokens_per_s
        FROM results x
        WHERE {{where}}
    ),
    derived AS (
        SELECT *,
               ttft_s * 1000.0 AS ttft_ms,
               e2e_s * 1000.0 AS e2e_ms,
               CASE WHEN stream_s IS NOT NULL AND tokens > 1
                    THEN stream_s / (tokens - 1) * 1000.0 END AS itl_ms,
               CASE WHEN e2e_s IS NOT NULL AND ttft_s IS NOT NULL AND tokens > 1
                    THEN (e2e_s - ttft_s) / (tokens - 1) * 1000.0 END AS tpot_ms,
               CASE WHEN stream_s <> 0 THEN tokens / stream_s END AS client_tokens_per_s,
               tokens::DOUBLE AS output_tokens,
               -- figures.with_figures: the slowest prompt rate of the run's host, model, prompt
               min(prompt_tokens_per_s) OVER (PARTITION BY run_id, host, model, prompt_id)
                   AS slowest_prompt_tokens_per_s
        FROM counted
    ),
    cached AS (
        SELECT *,
               coalesce(prompt_eval_count, 0) <> 0 AND (
                   prompt_tokens_per_s IS NULL
                   OR coalesce(slowest_prompt_tokens_per_s, 0) <> 0
                   AND prompt_tokens_per_s
                       > {PROMPT_CACHE_FACTOR!r}::DOUBLE * slowest_prompt_tokens_per_s
               ) AS prompt_cached
        FROM derived
    )
"""


def _sorted(figure: str) -> str:
    # statistics._summary: a cached prompt's rate is not comparable, so it is left out
    keep = "ok AND NOT prompt_cached" if figure == "prompt_tokens_per_s" else "ok"
    return f"list_sort(list({figure}) FILTER (WHERE {keep} AND isfinite({figure}))) AS {figure}"


_GROUPED = f"""
    grouped AS (
        SELECT run_id, mode, model, host, prompt_id,
               count(*) FILTER (WHERE ok) AS n,
               count(*) FILTER (WHERE NOT ok) AS errors,
               count(*) FILTER (WHERE ok AND prompt_cached) AS prompt_cached,
               coalesce(sum(tokens) FILTER (WHERE ok), 0) AS output_tokens_total,
               {", ".join(_sorted(name) for name, _ in SUMMARY_FIGURES)}
        FROM cached
        WHERE measured
        GROUP BY GROUPING SETS ((run_id, mode, model, host, prompt_id),
                                (run_id, mode, model, host))
    )
"""

_QUANTILES = ", ".join(
    f"nb_quantile({name}, {q / 100!r}::DOUBLE) AS {name}_p{q}"
    for name, qs in SUMMARY_FIGURES
    for q in qs
)

SUMMARIES_SQL = f"""
    WITH {_DERIVED}, {_GROUPED}
    SELECT run_id, mode, model, host, prompt_id, n, errors, prompt_cached,
           output_tokens_total AS output_tokens, {_QUANTILES}
    FROM grouped
"""


def run_filter(run_ids: Sequence[str] | None, column: str = "run_id") -> tuple[str, list[Any]]:
    """A WHERE condition keeping `run_ids` (all runs when None), and its parameters.

    A list of constants, not a list parameter: DuckDB skips the row groups of other runs then.
    """
    if run_ids is None:
        return "true", []
    if not run_ids:
        return "false", []
    return f"{column} IN ({', '.join('?' for _ in run_ids)})", list(run_ids)


def summarize_runs(con: duckdb.DuckDBPyConnection, run_ids: Sequence[str] | None = None) -> int:
    """(Re)write the summaries of `run_ids` (every run when None) from their results; returns
    how many runs there were.

    Their changes and load levels are dropped and marked as not made yet: analysis makes them
    next. The caller holds the transaction.
    """
    for macro in _MACROS:
        con.execute(macro)
    where, params = run_filter(run_ids)
    for table in ("run_summaries", "run_changes", "level_summaries"):
        con.execute(f"DELETE FROM {table} WHERE {where}", params)
    of_results, _ = run_filter(run_ids, "x.run_id")
    con.execute(
        "INSERT INTO run_summaries BY NAME " + SUMMARIES_SQL.format(where=of_results), params
    )
    con.execute(f"DELETE FROM summary_state WHERE {where}", params)
    con.execute(
        f"""INSERT INTO summary_state
            SELECT run_id, status, ?, NULL, NULL FROM runs WHERE {where}""",
        [utcnow(), *params],
    )
    row = con.execute(f"SELECT count(*) FROM summary_state WHERE {where}", params).fetchone()
    return int(row[0]) if row else 0
