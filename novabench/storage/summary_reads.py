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
    LevelSummary,
    RunCounts,
    RunSummary,
    from_mapping,
)
from novabench.storage.database import Database
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

    def run_counts(self) -> list[RunCounts]:
        """Every run, newest first, with its counts of measured requests and the models and
        hosts that answered, from the summaries."""
        sql = """
            WITH counts AS (
                SELECT run_id, sum(n + errors) AS requests, sum(errors) AS errors,
                       list_sort(list(DISTINCT model) FILTER (WHERE n > 0)) AS models,
                       list_sort(list(DISTINCT host) FILTER (WHERE n > 0)) AS hosts
                FROM run_summaries WHERE prompt_id IS NULL GROUP BY run_id
            )
            SELECT r.run_id, r.started_at, r.ended_at, r.status, r.suite_name, r.host,
                   r.ollama_version, r.novabench_version, r.modes, r.host_versions,
                   coalesce(c.requests, 0) AS requests, coalesce(c.errors, 0) AS errors,
                   coalesce(c.models, []) AS models, coalesce(c.hosts, []) AS hosts
            FROM runs r LEFT JOIN counts c USING (run_id)
            ORDER BY r.started_at DESC, r.run_id DESC
        """
        with self.connect() as con:
            rows = _dicts(con.execute(sql))
        for row in rows:
            versions = row["host_versions"]
            row["host_versions"] = json.loads(versions) if isinstance(versions, str) else versions
        return [from_mapping(RunCounts, row) for row in rows]

    def run_changes(self, run_ids: Sequence[str] | None = None) -> list[FindingRecord]:
        """The stored significant changes of `run_ids` (all runs when None), in each run's order."""
        where, params = run_filter(run_ids)
        sql = f"SELECT * FROM run_changes WHERE {where} ORDER BY run_id, position"
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
                sql, params + params
            ).fetchall():
                found.setdefault(run_id, {})[(mode, model, host, prompt_id)] = baseline
        return found

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


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
