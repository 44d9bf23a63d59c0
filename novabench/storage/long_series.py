"""History lines that stay short at any length, thinned in DuckDB: a line's recent runs one point
each, older runs pooled by day, week and month. Python receives a line's points, never its runs:
the history page's cost follows the number of lines, not of stored runs.
"""

from __future__ import annotations

from collections.abc import Sequence

# Per line: its most recent runs are drawn one point each...
RECENT_RUNS = 60
# ...older runs as one point per day within this many days of the line's latest run, one per
# week (from Monday) within this many, and one per calendar month before that. A line then has
# at most about RECENT_RUNS + DAILY_DAYS + WEEKLY_DAYS / 7 + its months points, however many
# runs it has.
DAILY_DAYS = 30
WEEKLY_DAYS = 182
# A point's last run: the latest start, the greatest id among runs started at once.
_ORDER = "struct_pack(started := run_started_at, id := run_id)"


def thinned_sql(
    source: str,
    line: Sequence[str],
    values: Sequence[str],
    same: Sequence[str],
    last: Sequence[str] = (),
    listed: str = "true",
) -> str:
    """A query of the points of every line of `source` (a query with a row per run and line:
    run_id, run_started_at, requests, and the columns named here), by the rule above.

    A point has the `line` columns, `run_id` (None for a pooled point), `last_run_id`, `runs`
    (how many), `run_ids` (those of its runs for which the SQL condition `listed` holds, oldest
    first: a long line's pooled points hold thousands of runs, and Python needs few of them),
    `period` (None, 'day', 'week' or 'month') and `period_start`, and `run_started_at`: the
    run's start, or the middle of a pooled point's runs (to the second). Of `values` it holds
    the median over its runs, of `requests` the sum, of `same` and `last` its last run's: a
    pooled point pools only runs alike in every column of `same` (digest, Ollama version).
    Points come in line order, oldest first.
    """
    by_line = ", ".join(line)
    kept = ", ".join([*line, *same])
    medians = "".join(f", quantile_cont({v}, 0.5) AS {v}" for v in values)
    lasts = f", arg_max_null(run_id, {_ORDER}) AS last_run_id" + "".join(
        f", arg_max_null({c}, {_ORDER}) AS {c}" for c in last
    )
    return f"""
        WITH source AS ({source}),
        ranked AS (
            SELECT *,
                   row_number() OVER (PARTITION BY {by_line}
                                      ORDER BY run_started_at DESC, run_id DESC) AS recency,
                   max(run_started_at) OVER (PARTITION BY {by_line}) AS latest
            FROM source
        ),
        placed AS (
            SELECT *,
                   CASE WHEN recency <= {RECENT_RUNS} THEN NULL
                        WHEN run_started_at >= latest - INTERVAL {DAILY_DAYS} DAY THEN 'day'
                        WHEN run_started_at >= latest - INTERVAL {WEEKLY_DAYS} DAY THEN 'week'
                        ELSE 'month' END AS period
            FROM ranked
        ),
        keyed AS (
            SELECT *,
                   CASE WHEN period IS NULL THEN run_id END AS own_run,
                   CAST(CASE WHEN period IS NOT NULL THEN date_trunc(period, run_started_at) END
                        AS TIMESTAMP) AS period_start
            FROM placed
        )
        SELECT {kept}, own_run AS run_id, period, period_start,
               coalesce(list(run_id ORDER BY run_started_at, run_id) FILTER (WHERE {listed}),
                        []) AS run_ids,
               count(*) AS runs,
               CASE WHEN period IS NULL THEN min(run_started_at)
                    ELSE date_trunc('second', min(run_started_at) + to_microseconds(
                        (epoch_us(max(run_started_at)) - epoch_us(min(run_started_at))) // 2
                    )) END AS run_started_at,
               CAST(sum(requests) AS BIGINT) AS requests{medians}{lasts}
        FROM keyed
        GROUP BY {kept}, own_run, period, period_start
        ORDER BY {by_line}, run_started_at, max(keyed.run_started_at), run_id NULLS FIRST,
                 last_run_id
    """
