"""What the history holds, read back as typed records (novabench/records)."""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from datetime import datetime
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
    from_fields,
    from_mapping,
)
from novabench.storage.summaries import MEASURED_SQL, run_filter
from novabench.storage.summary_reads import HOST_VERSION_SQL, SummaryReads

RUN_JSON = ("host_versions", "options", "system", "manifest", "facts")
MODEL_JSON = ("options", "show_info")
RESULT_JSON = ("checks",)


class Reads(SummaryReads):
    """The reads of one history file; each opens the file, reads, and closes it."""

    def list_runs(
        self, suite: str | None = None, *, newest: int | None = None, month: str | None = None
    ) -> list[RunListing]:
        """Every run, newest first, with request and error counts; only the `newest` so many,
        or only those started in `month` ('2026-01', UTC), when given.

        The runs are chosen first and only their results counted: the index's few runs cost the
        same in a history of ten or of ten thousand runs.
        """
        measured = MEASURED_SQL.format(x="x")
        sql = f"""
            WITH chosen AS (
                SELECT run_id, started_at, ended_at, status, suite_name, host, ollama_version,
                       novabench_version, modes, pruned_at
                FROM runs
                WHERE ($suite IS NULL OR suite_name = $suite)
                  AND ($month IS NULL OR strftime(started_at, '%Y-%m') = $month)
                ORDER BY started_at DESC, run_id DESC LIMIT $newest
            ), counted AS (
                SELECT x.run_id, count(x.seq) FILTER (WHERE {measured}) AS requests,
                       count(x.seq) FILTER (WHERE {measured} AND x.error IS NOT NULL) AS errors
                FROM results x SEMI JOIN chosen USING (run_id) GROUP BY x.run_id
            ), pruned AS (  -- a pruned run has no results left: its counts are its summaries'
                SELECT s.run_id, sum(s.n + s.errors) AS requests, sum(s.errors) AS errors
                FROM run_summaries s JOIN chosen c USING (run_id)
                WHERE c.pruned_at IS NOT NULL AND s.prompt_id IS NULL GROUP BY s.run_id
            )
            SELECT c.*, coalesce(n.requests, 0) + coalesce(p.requests, 0) AS requests,
                   coalesce(n.errors, 0) + coalesce(p.errors, 0) AS errors
            FROM chosen c LEFT JOIN counted n USING (run_id) LEFT JOIN pruned p USING (run_id)
            ORDER BY c.started_at DESC, c.run_id DESC
        """
        params = {"suite": suite, "month": month, "newest": newest}
        with self.connect() as con:
            return [from_mapping(RunListing, row) for row in _dicts(con.execute(sql, params))]

    def complete_runs_before(
        self, suite: str, started_at: datetime, run_id: str, mode: str | None = None
    ) -> list[str]:
        """The ids of `suite`'s complete runs before (`started_at`, `run_id`) whose raw rows are
        stored (never pruned), newest first; only those that ran `mode`, when given. A read of
        the runs table only."""
        sql = """
            SELECT run_id FROM runs
            WHERE suite_name = $suite AND status = 'complete' AND pruned_at IS NULL
              AND (started_at < $at OR (started_at = $at AND run_id < $run))
              AND ($mode IS NULL OR list_contains(modes, $mode))
            ORDER BY started_at DESC, run_id DESC
        """
        params = {"suite": suite, "at": started_at, "run": run_id, "mode": mode}
        with self.connect() as con:
            return [row[0] for row in con.execute(sql, params).fetchall()]

    def unpruned_run_ids(self) -> list[str]:
        """The ids of the runs whose raw rows are stored (never pruned), newest first: a read of
        the runs table only."""
        sql = """SELECT run_id FROM runs WHERE pruned_at IS NULL
                 ORDER BY started_at DESC, run_id DESC"""
        with self.connect() as con:
            return [row[0] for row in con.execute(sql).fetchall()]

    def run_months(self) -> list[tuple[str, str, int]]:
        """(month 'YYYY-MM', suite name, runs) of every month and suite with runs, newest month
        first: the runs table alone, never the results."""
        sql = """
            SELECT strftime(started_at, '%Y-%m') AS month, suite_name, count(*) AS runs
            FROM runs GROUP BY ALL ORDER BY month DESC, suite_name
        """
        with self.connect() as con:
            return [(str(m), str(s), int(n)) for m, s, n in con.execute(sql).fetchall()]

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

    def results_for_figures(self, run_id: str) -> list[StoredResult]:
        """Every result of a run as `results` gives it, but without its texts (response_text and
        thinking_text are '') and with its chunk arrivals in compact arrays (array('d')): what
        a run's figures and charts need, for 100,000 requests in a fraction of the time and
        memory. `texts` reads the texts of the few requests a page lists."""
        texts = ("response_text", "thinking_text")
        names = [n for n in StoredResult.__dataclass_fields__ if n not in texts]
        sql = f"SELECT {', '.join(names)} FROM results WHERE run_id = ? ORDER BY seq"
        with self.connect() as con:
            # numpy columns: a list column as one array per row, not a Python float per value
            columns = con.execute(sql, [run_id]).fetchnumpy()
        arrivals = [
            None if a is None else array("d", a.tobytes())
            for a in columns.pop("token_offsets_s").tolist()
        ]
        names = list(columns)
        made = []
        for values, offsets in zip(
            zip(*(columns[name].tolist() for name in names), strict=True), arrivals, strict=True
        ):
            row = dict(zip(names, values, strict=True))
            row.update(token_offsets_s=offsets, response_text="", thinking_text="")
            if isinstance(row["checks"], str):
                row["checks"] = json.loads(row["checks"])
            made.append(from_fields(StoredResult, row))
        return made

    def texts(self, run_id: str, seqs: Sequence[int]) -> dict[int, tuple[str, str]]:
        """{seq: (response_text, thinking_text)} of the given requests of a run."""
        sql = (
            "SELECT seq, response_text, thinking_text FROM results "
            "WHERE run_id = ? AND list_contains(?::INTEGER[], seq)"
        )
        with self.connect() as con:
            rows = con.execute(sql, [run_id, list(seqs)]).fetchall()
        return {seq: (response, thinking) for seq, response, thinking in rows}

    def phases(self, run_id: str) -> list[PhaseRecord]:
        sql = "SELECT * FROM phases WHERE run_id = ? ORDER BY started_at"
        with self.connect() as con:
            return [from_mapping(PhaseRecord, r) for r in _dicts(con.execute(sql, [run_id]))]

    def samples(self, run_id: str) -> list[ResourceSample]:
        names = list(ResourceSample.__dataclass_fields__)
        sql = f"SELECT {', '.join(names)} FROM samples WHERE run_id = ? ORDER BY offset_s"
        with self.connect() as con:
            rows = con.execute(sql, [run_id]).fetchall()
        # a long run samples every half second for hours: no per-field __init__ for each
        return [from_fields(ResourceSample, dict(zip(names, row, strict=True))) for row in rows]

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
