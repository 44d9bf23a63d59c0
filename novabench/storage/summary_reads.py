"""Reads of the per-run aggregates (storage/summaries.py): what the history shows, a row per run
and group, never a row per request."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from novabench.records import (
    LOAD_MODE,
    FindingRecord,
    HistoryOverview,
    LevelSummary,
    RunCounts,
    RunSummary,
    from_mapping,
)
from novabench.storage.database import Database
from novabench.storage.long_series import thinned_sql
from novabench.storage.summaries import run_filter

GroupKey = tuple[str, str, str, str]  # mode, model, host, prompt id

# The Ollama version of a group's own host (a suite may use several), else the run's.
HOST_VERSION_SQL = """coalesce(json_extract_string(
    r.host_versions, '/' || replace(replace({host}, '~', '~0'), '/', '~1')
), r.ollama_version)"""


class SummaryReads(Database):
    """The reads of run_summaries, run_changes, level_summaries and summary_state."""

    def run_summaries(
        self, run_ids: Sequence[str] | None = None, by_prompt: bool = False
    ) -> list[RunSummary]:
        """The summaries of `run_ids` (every run when None), oldest run first, with each run's
        context: per (mode, model, host) over every prompt, or per prompt with `by_prompt`."""
        where, params = run_filter(run_ids, "s.run_id")
        sql = f"""
            SELECT s.*, r.started_at AS run_started_at, r.suite_name, r.status,
                   r.novabench_version, {HOST_VERSION_SQL.format(host="s.host")} AS host_version,
                   m.digest
            FROM run_summaries s JOIN runs r USING (run_id)
            LEFT JOIN models m ON m.run_id = s.run_id AND m.model = s.model AND m.host = s.host
            WHERE {where} AND s.prompt_id IS {"NOT" if by_prompt else ""} NULL
            ORDER BY r.started_at, r.run_id, s.mode, s.model, s.host, s.prompt_id
        """
        with self.connect() as con:
            return [from_mapping(RunSummary, row) for row in _dicts(con.execute(sql, params))]

    def history_states(self) -> dict[str, str]:
        """Per suite, a text that changes whenever anything the history draws of it may have:
        its runs (added, removed, status, pruned) and when their summaries, changes and levels
        were made."""
        sql = """
            SELECT r.suite_name, count(*) || '-' || bit_xor(hash(
                r.run_id, r.status, r.started_at, r.pruned_at, s.run_status, s.summarized_at,
                s.changes_at, s.levels_at
            ))
            FROM runs r LEFT JOIN summary_state s USING (run_id) GROUP BY r.suite_name
        """
        with self.connect() as con:
            return {suite: str(state) for suite, state in con.execute(sql).fetchall()}

    def history_points(
        self, figures: Sequence[str], suites: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """The points of every (suite, model, host, mode) history line, thinned in DuckDB by
        long_series' rule (see `thinned_sql`): of each point its runs' median of each of
        `figures` (their per-run medians, 'ttft_ms' from ttft_ms_p50), request count, digest,
        Ollama version of the line's host and novabench version. Load sweeps are left out (their
        levels are no per-run median of one load), as are groups without a measured request.
        Of `suites` only, when given."""
        of_suites, params = _suite_filter(suites)
        medians = "".join(f", s.{_column(f)}_p50 AS {_column(f)}" for f in figures)
        source = f"""
            SELECT r.suite_name AS suite, s.model, s.host, s.mode, s.run_id,
                   r.started_at AS run_started_at, s.n AS requests, r.novabench_version,
                   {HOST_VERSION_SQL.format(host="s.host")} AS ollama_version, m.digest{medians},
                   s.run_id IN (SELECT run_id FROM run_changes) AS changed
            FROM run_summaries s JOIN runs r USING (run_id)
            LEFT JOIN models m ON m.run_id = s.run_id AND m.model = s.model AND m.host = s.host
            WHERE s.prompt_id IS NULL AND s.mode <> '{LOAD_MODE}' AND s.n > 0 AND {of_suites}
        """
        sql = thinned_sql(
            source,
            ("suite", "model", "host", "mode"),
            [_column(f) for f in figures],
            ("digest", "ollama_version"),
            ("novabench_version",),
            listed="changed",  # the runs with significant changes: a point's rings
        )
        with self.connect() as con:
            return _dicts(con.execute(sql, params))

    def peak_points(self, suites: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The points of every (suite, model, host) line of load sweep peaks (of `suites` when
        given): each sweep's most output tokens/s at any level (`peak_tokens_per_s`), thinned
        like `history_points`."""
        of_suites, params = _suite_filter(suites)
        source = f"""
            SELECT r.suite_name AS suite, l.model, l.host, l.run_id,
                   r.started_at AS run_started_at, 0 AS requests,
                   {HOST_VERSION_SQL.format(host="l.host")} AS ollama_version,
                   max(l.output_tokens_per_s) FILTER (WHERE l.output_tokens_per_s > 0)
                       AS peak_tokens_per_s
            FROM level_summaries l JOIN runs r USING (run_id) WHERE {of_suites}
            GROUP BY ALL HAVING peak_tokens_per_s IS NOT NULL
        """
        sql = thinned_sql(
            source,
            ("suite", "model", "host"),
            ("peak_tokens_per_s",),
            ("ollama_version",),
            listed="false",
        )
        with self.connect() as con:
            return _dicts(con.execute(sql, params))

    def charted_runs(self, suites: Sequence[str]) -> dict[str, int]:
        """Per suite of `suites`, how many runs its history charts draw: those with a measured
        request outside load sweeps (`history_points`) or a sweep with a peak (`peak_points`)."""
        of_suites, params = _suite_filter(suites)
        sql = f"""
            SELECT suite, count(DISTINCT run_id) FROM (
                SELECT r.suite_name AS suite, s.run_id
                FROM run_summaries s JOIN runs r USING (run_id)
                WHERE s.prompt_id IS NULL AND s.mode <> '{LOAD_MODE}' AND s.n > 0 AND {of_suites}
                UNION ALL
                SELECT r.suite_name AS suite, l.run_id
                FROM level_summaries l JOIN runs r USING (run_id)
                WHERE l.output_tokens_per_s > 0 AND {of_suites}
            ) GROUP BY suite
        """
        with self.connect() as con:
            return dict(con.execute(sql, params + params).fetchall())

    def run_counts(
        self, run_ids: Sequence[str] | None = None, newest_per_suite: int | None = None
    ) -> list[RunCounts]:
        """Runs, newest first, with their counts of measured requests and the models and hosts
        that answered, from the summaries: `run_ids` (every run when None), or of each suite
        its `newest_per_suite` most recent runs."""
        where, params = run_filter(run_ids, "r.run_id")
        if newest_per_suite is not None:
            where += f""" AND r.run_id IN (SELECT run_id FROM runs QUALIFY row_number() OVER (
                PARTITION BY suite_name ORDER BY started_at DESC, run_id DESC
            ) <= {int(newest_per_suite)})"""
        sql = f"""
            WITH chosen AS (SELECT * FROM runs r WHERE {where}),
            counts AS (
                SELECT run_id, sum(n + errors) AS requests, sum(errors) AS errors,
                       list_sort(list(DISTINCT model) FILTER (WHERE n > 0)) AS models,
                       list_sort(list(DISTINCT host) FILTER (WHERE n > 0)) AS hosts
                FROM run_summaries
                WHERE prompt_id IS NULL AND run_id IN (SELECT run_id FROM chosen)
                GROUP BY run_id
            )
            SELECT r.run_id, r.started_at, r.ended_at, r.status, r.suite_name, r.host,
                   r.ollama_version, r.novabench_version, r.modes, r.host_versions,
                   coalesce(c.requests, 0) AS requests, coalesce(c.errors, 0) AS errors,
                   coalesce(c.models, []) AS models, coalesce(c.hosts, []) AS hosts
            FROM chosen r LEFT JOIN counts c USING (run_id)
            ORDER BY r.started_at DESC, r.run_id DESC
        """
        with self.connect() as con:
            rows = _dicts(con.execute(sql, params))
        for row in rows:
            versions = row["host_versions"]
            row["host_versions"] = json.loads(versions) if isinstance(versions, str) else versions
        return [from_mapping(RunCounts, row) for row in rows]

    def history_overview(self) -> HistoryOverview:
        """How many runs are stored, the suites, answering models and hosts they name (a run's
        own host when none answered), and the runs with significant changes, newest first."""
        sql = """
            WITH answered AS (
                SELECT s.run_id, s.model, s.host FROM run_summaries s SEMI JOIN runs USING (run_id)
                WHERE s.prompt_id IS NULL AND s.n > 0
            )
            SELECT
                (SELECT count(*) FROM runs),
                (SELECT list_sort(list(DISTINCT suite_name)) FROM runs),
                (SELECT list_sort(list(DISTINCT model)) FROM answered),
                (SELECT list_sort(list(DISTINCT host)) FROM (
                    SELECT host FROM answered
                    UNION SELECT host FROM runs ANTI JOIN answered USING (run_id)
                )),
                (SELECT list(run_id ORDER BY started_at DESC, run_id DESC) FROM runs
                 WHERE run_id IN (SELECT run_id FROM run_changes))
        """
        with self.connect() as con:
            found = con.execute(sql).fetchone()
        assert found is not None  # one row of scalar subqueries
        runs, *lists = found
        return HistoryOverview(runs, *(tuple(values or ()) for values in lists))

    def run_changes(
        self, run_ids: Sequence[str] | None = None, suites: Sequence[str] | None = None
    ) -> list[FindingRecord]:
        """The stored significant changes of `run_ids` and of the runs of `suites` (when None,
        not narrowed by it), in each run's order."""
        where, params = run_filter(run_ids)
        of_suites, suite_params = _suite_filter(suites)
        sql = f"""
            SELECT * FROM run_changes WHERE {where}
              AND run_id IN (SELECT run_id FROM runs r WHERE {of_suites})
            ORDER BY run_id, position
        """
        params += suite_params
        with self.connect() as con:
            rows = _dicts(con.execute(sql, params))
        return [
            from_mapping(
                FindingRecord,
                {
                    **row,
                    "baseline_run_ids": tuple(row["baseline_run_ids"]),
                    "notes": tuple(row["notes"]),
                },
            )
            for row in rows
        ]

    def level_summaries(
        self, run_ids: Sequence[str] | None = None
    ) -> dict[str, list[LevelSummary]]:
        """The stored load levels of `run_ids` (every run when None): run id -> levels in sweep
        order per (model, host)."""
        where, params = run_filter(run_ids)
        sql = (
            f"SELECT * FROM level_summaries WHERE {where} ORDER BY run_id, model, host, level_index"
        )
        found: dict[str, list[LevelSummary]] = {}
        with self.connect() as con:
            for row in _dicts(con.execute(sql, params)):
                found.setdefault(row["run_id"], []).append(from_mapping(LevelSummary, row))
        return found

    def previous_comparable(
        self, run_ids: Sequence[str] | None = None
    ) -> dict[str, dict[GroupKey, str]]:
        """Per run, per (mode, model, host, prompt) it measured: the run id of the previous
        complete run of its suite that measured the same group with the same model digest.

        Read from the summaries (groups with a successful measured request; load sweeps are
        compared level by level elsewhere), whatever the number of stored requests.
        """
        where, params = run_filter(run_ids, "run_id")
        sql = f"""
            WITH measured AS (
                SELECT s.run_id, s.mode, s.model, s.host, s.prompt_id, r.suite_name,
                       r.started_at, r.status, m.digest
                FROM run_summaries s JOIN runs r USING (run_id)
                LEFT JOIN models m
                    ON m.run_id = s.run_id AND m.model = s.model AND m.host = s.host
                WHERE s.prompt_id IS NOT NULL AND s.mode <> '{LOAD_MODE}' AND s.n > 0
                  AND r.suite_name IN (SELECT suite_name FROM runs WHERE {where})
                  AND (s.mode, s.model, s.host, s.prompt_id) IN (  -- the groups these runs have
                      SELECT (mode, model, host, prompt_id) FROM run_summaries WHERE {where}
                  )
            ),
            ordered AS (
                SELECT *, last_value(CASE WHEN status = 'complete' THEN run_id END IGNORE NULLS)
                    OVER (PARTITION BY suite_name, mode, model, host, prompt_id, digest
                          ORDER BY started_at, run_id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS baseline_run_id
                FROM measured
            )
            SELECT run_id, mode, model, host, prompt_id, baseline_run_id FROM ordered
            WHERE baseline_run_id IS NOT NULL AND {where}
        """
        found: dict[str, dict[GroupKey, str]] = {}
        with self.connect() as con:
            for run_id, mode, model, host, prompt_id, baseline in con.execute(
                sql, params * 3
            ).fetchall():
                found.setdefault(run_id, {})[(mode, model, host, prompt_id)] = baseline
        return found

    def comparable_earlier(
        self,
        run_id: str,
        groups: Sequence[tuple[Any, ...]],
        per_group: int,
        sweeps: bool = False,
    ) -> list[str]:
        """The run ids, newest first, that comparing run `run_id`'s `groups` with its suite's
        earlier complete runs (never pruned: their raw rows are there) may use: per group, the
        newest earlier run that measured it, and the `per_group` newest that measured it with
        the same model digest.

        A group is (mode, model, host, prompt id, digest) as the summaries have it (groups with
        a successful measured request), or with `sweeps` (model, host, digest) of a load sweep
        (`level_summaries`, of runs with a successful measured load request, as
        compare_sweeps.swept reads them). Read from the aggregates, so that a baseline of
        `median:N` reads the raw rows of at most N runs per group, not of the whole history.
        """
        if not groups:
            return []
        columns = ("model", "host") if sweeps else ("mode", "model", "host", "prompt_id")
        if sweeps:  # a run's sweeps count when one of its load requests was measured
            measured = f"""SELECT DISTINCT run_id, model, host FROM level_summaries
                           WHERE run_id IN (SELECT run_id FROM run_summaries
                                            WHERE mode = '{LOAD_MODE}' AND n > 0)"""
        else:
            measured = f"""SELECT run_id, {", ".join(columns)} FROM run_summaries
                           WHERE prompt_id IS NOT NULL AND mode <> '{LOAD_MODE}' AND n > 0"""
        row = "(" + ", ".join("?" for _ in range(len(columns) + 1)) + ")"
        wanted = ", ".join([row] * len(groups))
        keys = ", ".join(columns)
        sql = f"""
            WITH me AS (SELECT suite_name, started_at, run_id FROM runs WHERE run_id = ?),
            wanted({keys}, digest) AS (VALUES {wanted}),
            earlier AS (
                SELECT g.run_id, r.started_at, m.digest, g.{", g.".join(columns)}
                FROM ({measured}) g JOIN runs r USING (run_id) JOIN me USING (suite_name)
                LEFT JOIN models m ON m.run_id = g.run_id AND m.model = g.model
                                  AND m.host = g.host
                WHERE r.status = 'complete' AND r.pruned_at IS NULL
                  AND (r.started_at < me.started_at
                       OR (r.started_at = me.started_at AND r.run_id < me.run_id))
            ),
            ranked AS (
                SELECT e.run_id, e.started_at,
                       e.digest IS NOT DISTINCT FROM w.digest AS same,
                       row_number() OVER (PARTITION BY {keys}
                                          ORDER BY e.started_at DESC, e.run_id DESC) AS newest,
                       row_number() OVER (
                           PARTITION BY {keys}, e.digest IS NOT DISTINCT FROM w.digest
                           ORDER BY e.started_at DESC, e.run_id DESC
                       ) AS newest_alike
                FROM earlier e JOIN wanted w USING ({keys})
            )
            SELECT run_id FROM ranked WHERE newest = 1 OR (same AND newest_alike <= ?)
            GROUP BY run_id, started_at ORDER BY started_at DESC, run_id DESC
        """
        params: list[Any] = [run_id, *(value for group in groups for value in group), per_group]
        with self.connect() as con:
            return [found[0] for found in con.execute(sql, params).fetchall()]

    def runs_to_summarize(self) -> list[str]:
        """Runs whose summaries are missing or were made for another status (a run in progress
        is never up to date), oldest first."""
        sql = """
            SELECT r.run_id FROM runs r LEFT JOIN summary_state s USING (run_id)
            WHERE s.run_id IS NULL OR s.run_status <> r.status OR r.status = 'running'
            ORDER BY r.started_at, r.run_id
        """
        with self.connect() as con:
            return [row[0] for row in con.execute(sql).fetchall()]

    def runs_without(self, made: str) -> list[tuple[str, list[str]]]:
        """(run id, modes) of the summarized runs whose 'changes' or 'levels' are not made yet,
        oldest first."""
        column = {"changes": "changes_at", "levels": "levels_at"}[made]
        sql = f"""
            SELECT r.run_id, r.modes FROM runs r JOIN summary_state s USING (run_id)
            WHERE s.{column} IS NULL ORDER BY r.started_at, r.run_id
        """
        with self.connect() as con:
            return [(row[0], list(row[1] or ())) for row in con.execute(sql).fetchall()]


def _suite_filter(suites: Sequence[str] | None) -> tuple[str, list[Any]]:
    """A WHERE condition on `r.suite_name` keeping `suites` (all when None), and its parameters."""
    if suites is None:
        return "true", []
    if not suites:
        return "false", []
    return f"r.suite_name IN ({', '.join('?' for _ in suites)})", list(suites)


def _column(figure: str) -> str:
    """A figure's name as it is put in SQL: a plain identifier, never text from elsewhere."""
    if not figure.isidentifier():
        raise ValueError(f"not a figure name: {figure!r}")
    return figure


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
