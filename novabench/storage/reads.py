"""What the history holds, read back as typed records (novabench/records)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from novabench.errors import RunNotFoundError
from novabench.records import (
    HistoryRow,
    LevelRecord,
    ModelRecord,
    PhaseRecord,
    PromptRecord,
    RepetitionStop,
    ResourceSample,
    RunListing,
    RunRecord,
    StoredResult,
    from_mapping,
)
from novabench.storage.summaries import MEASURED_SQL, run_filter
from novabench.storage.summary_reads import HOST_VERSION_SQL, SummaryReads

RUN_JSON = ("host_versions", "options", "system", "manifest", "facts")
MODEL_JSON = ("options", "show_info")
RESULT_JSON = ("checks",)


class Reads(SummaryReads):
    """The reads of one history file; each opens the file, reads, and closes it."""

    def list_runs(self, suite: str | None = None) -> list[RunListing]:
        """Every run, newest first, with request and error counts."""
        measured = MEASURED_SQL.format(x="x")
        sql = f"""
            SELECT r.run_id, r.started_at, r.ended_at, r.status, r.suite_name, r.host,
                   r.ollama_version, r.novabench_version, r.modes, r.pruned_at,
                   count(x.seq) FILTER (WHERE {measured}) + coalesce(any_value(p.requests), 0)
                       AS requests,
                   count(x.seq) FILTER (WHERE {measured} AND x.error IS NOT NULL)
                       + coalesce(any_value(p.errors), 0) AS errors
            FROM runs r LEFT JOIN results x USING (run_id)
            -- a pruned run has no results left: its counts are its summaries'
            LEFT JOIN (
                SELECT run_id, sum(s.n + s.errors) AS requests, sum(s.errors) AS errors
                FROM run_summaries s JOIN runs USING (run_id)
                WHERE pruned_at IS NOT NULL AND prompt_id IS NULL GROUP BY run_id
            ) p USING (run_id)
            WHERE ? IS NULL OR r.suite_name = ?
            GROUP BY ALL ORDER BY r.started_at DESC, r.run_id DESC
        """
        with self.connect() as con:
            return [from_mapping(RunListing, row) for row in _dicts(con.execute(sql, [suite] * 2))]

    def get_run(self, run_id: str) -> RunRecord:
        with self.connect() as con:
            rows = _dicts(con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]))
        if not rows:
            raise RunNotFoundError(f"no run {run_id!r} in {self.path}: 'novabench runs' lists them")
        return from_mapping(RunRecord, _unjson(rows[0], RUN_JSON))

    def latest_run_id(self) -> str:
        with self.connect() as con:
            row = con.execute(
                "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            ).fetchone()
        if row is None:
            raise RunNotFoundError(f"no runs in {self.path} yet: 'novabench run SUITE' makes one")
        return str(row[0])

    def models(self, run_id: str) -> list[ModelRecord]:
        sql = "SELECT * FROM models WHERE run_id = ? ORDER BY model, host"
        with self.connect() as con:
            rows = _dicts(con.execute(sql, [run_id]))
        return [from_mapping(ModelRecord, _unjson(row, MODEL_JSON)) for row in rows]

    def prompts(self, run_id: str) -> list[PromptRecord]:
        sql = "SELECT * FROM prompts WHERE run_id = ? ORDER BY position"
        with self.connect() as con:
            return [from_mapping(PromptRecord, r) for r in _dicts(con.execute(sql, [run_id]))]

    def results(self, run_id: str) -> list[StoredResult]:
        sql = "SELECT * FROM results WHERE run_id = ? ORDER BY seq"
        with self.connect() as con:
            rows = _dicts(con.execute(sql, [run_id]))
        return [from_mapping(StoredResult, _unjson(row, RESULT_JSON)) for row in rows]

    def phases(self, run_id: str) -> list[PhaseRecord]:
        sql = "SELECT * FROM phases WHERE run_id = ? ORDER BY started_at"
        with self.connect() as con:
            return [from_mapping(PhaseRecord, r) for r in _dicts(con.execute(sql, [run_id]))]

    def samples(self, run_id: str) -> list[ResourceSample]:
        sql = "SELECT * EXCLUDE (run_id) FROM samples WHERE run_id = ? ORDER BY offset_s"
        with self.connect() as con:
            return [from_mapping(ResourceSample, r) for r in _dicts(con.execute(sql, [run_id]))]

    def load_levels(self, run_id: str) -> list[LevelRecord]:
        sql = (
            "SELECT * EXCLUDE (run_id) FROM load_levels WHERE run_id = ? "
            "ORDER BY model, host, level_index"
        )
        with self.connect() as con:
            return [from_mapping(LevelRecord, r) for r in _dicts(con.execute(sql, [run_id]))]

    def repetition_stops(self, run_id: str) -> list[RepetitionStop]:
        sql = (
            "SELECT * EXCLUDE (run_id) FROM repetition_stops WHERE run_id = ? "
            "ORDER BY mode, model, host, prompt_id"
        )
        with self.connect() as con:
            return [from_mapping(RepetitionStop, r) for r in _dicts(con.execute(sql, [run_id]))]

    def history(
        self, suite: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[HistoryRow]:
        """Every measured, successful request with its run's context (no texts), oldest first.

        `suite` keeps one suite name's runs, `run_ids` only those runs. `host_version` is the
        Ollama version of the request's own host (a suite may use several).
        """
        conditions = [MEASURED_SQL.format(x="x"), "x.error IS NULL"]
        params: list[Any] = []
        if suite is not None:
            conditions.append("r.suite_name = ?")
            params.append(suite)
        if run_ids is not None:
            where, listed = run_filter(run_ids, "x.run_id")
            conditions.append(where)
            params += listed
        sql = f"""
            SELECT r.run_id, r.started_at AS run_started_at, r.suite_name, r.status,
                   r.novabench_version, r.ollama_version,
                   {HOST_VERSION_SQL.format(host="x.host")} AS host_version,
                   x.mode, x.model, x.host, x.prompt_id,
                   m.digest, x.ttft_s, x.e2e_s, x.token_offsets_s, x.eval_count,
                   x.eval_duration_ns, x.prompt_eval_count, x.prompt_eval_duration_ns,
                   x.load_duration_ns, x.total_duration_ns
            FROM results x JOIN runs r USING (run_id)
            LEFT JOIN models m ON m.run_id = x.run_id AND m.model = x.model AND m.host = x.host
            WHERE {" AND ".join(conditions)}
            ORDER BY r.started_at, r.run_id, x.seq
        """
        with self.connect() as con:
            return [from_mapping(HistoryRow, row) for row in _dicts(con.execute(sql, params))]


def _unjson(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: (json.loads(v) if k in keys and isinstance(v, str) else v) for k, v in row.items()}


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
