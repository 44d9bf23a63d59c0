"""Journal records into the database: segment files through DuckDB's own JSON reader, row by row
when a row does not fit, every write idempotent so a segment can be applied twice.

The fast path (`apply_files`) hands the files to `read_json`: DuckDB parses them in C++ without
the GIL, so the run's event loop keeps its core. A batch that fails on its data (a value a
column cannot hold) is applied again one record at a time, and a record that still fails is
stored as an error row saying why, so one bad row never takes the others with it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from novabench.storage import journal
from novabench.storage.journal import Record

# DuckDB errors about a value, not about the file: the row is at fault, the database is fine.
DATA_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.ConstraintException,
    duckdb.OutOfRangeException,
    duckdb.TypeMismatchException,
    duckdb.BinderException,
)
# A result row's identity: what an error row keeps when nothing else of it can be stored.
_IDENTITY = (
    "run_id", "seq", "mode", "model", "host", "prompt_id", "repetition", "is_warmup",
    "started_at", "start_offset_s", "is_cold", "backend", "load_level",
)  # fmt: skip
_IDENTITY_DEFAULTS: dict[str, Any] = {
    "mode": "?", "model": "?", "host": "?", "prompt_id": "?", "repetition": 0,
    "is_warmup": False, "started_at": "1970-01-01 00:00:00", "start_offset_s": 0.0,
}  # fmt: skip
# Tables without a primary key: a record already there is recognised by these columns.
_NATURAL_KEYS = {
    "samples": ("run_id", "offset_s"),
    "repetition_stops": ("run_id", "mode", "model", "host", "prompt_id"),
}
_JSON_COLUMNS = {"results": ("checks",), "samples": ()}


def column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """A table's columns and their DuckDB types, in order."""
    return {row[1]: row[2] for row in con.execute(f"PRAGMA table_info('{table}')").fetchall()}


def apply_files(
    con: duckdb.DuckDBPyConnection,
    paths: Sequence[Path],
    ops: Iterable[Record],
    runs: Mapping[str, Collection[Any]] | None = None,
) -> None:
    """Results and samples of journal files through read_json, then the ops, in one transaction.

    `runs`: per table, the run ids its records in the files belong to (None: not known). A table
    with none is not read, and the rows a table already holds are looked for among those runs'
    only: the check would otherwise scan every stored sample, each time a journal segment is
    applied (34 ms at 10,000 runs, every 20 ms of a run).

    Raises a DATA_ERRORS exception (rolled back) when a record does not fit: apply it again with
    `apply_records`.
    """
    files = [str(p) for p in paths]
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("results", "samples"):
            of_table = None if runs is None else runs.get(table, ())
            if of_table is not None and not of_table:
                continue  # no record of this table in the files
            types = column_types(con, table)
            columns = {"table": "VARCHAR", **types}
            spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
            source = (
                f"read_json(?, format='newline_delimited', columns={spec}, "
                "maximum_object_size=268435456)"
            )
            keep, among = _keep_new(table, "s", of_table)
            con.execute(
                f'{_insert(table)} BY NAME SELECT s.* EXCLUDE ("table") '
                f"FROM {source} s WHERE s.\"table\" = '{table}'{keep}",
                [files, *among],
            )
        for op in ops:
            apply_op(con, op)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def apply_records(con: duckdb.DuckDBPyConnection, records: Iterable[Record]) -> list[str]:
    """Apply records one at a time, each in its own transaction; what could not be stored.

    A result that does not fit is stored as an error row (its identity and why); a sample or an
    op that does not fit is left out. Returns a line per record that was changed or left out.
    """
    problems: list[str] = []
    types = {table: column_types(con, table) for table in ("results", "samples")}
    for record in records:
        table = record.get("table")
        try:
            con.execute("BEGIN TRANSACTION")
            if table in ("results", "samples"):
                _insert_row(con, str(table), record, types[str(table)])
            elif table == "op":
                apply_op(con, record)
            con.execute("COMMIT")
        except DATA_ERRORS as exc:
            con.execute("ROLLBACK")
            reason = _first_line(exc)
            if table == "results":
                _store_as_error(con, record, reason, types["results"])
                problems.append(f"result {record.get('seq')}: stored as an error row ({reason})")
            else:
                problems.append(f"{table} record left out ({reason})")
    return problems


def _store_as_error(
    con: duckdb.DuckDBPyConnection, record: Record, reason: str, types: dict[str, str]
) -> None:
    row = {k: record.get(k) for k in _IDENTITY if k in types}
    for name, default in _IDENTITY_DEFAULTS.items():  # the table's NOT NULL columns
        if row.get(name) is None:
            row[name] = default
    row.update(
        chunk_count=0,
        response_bytes=0,
        response_text="",
        thinking_text="",
        error=f"the result could not be stored as received: {reason}",
    )
    con.execute("BEGIN TRANSACTION")
    _insert_row(con, "results", row, types)
    con.execute("COMMIT")


def _insert_row(
    con: duckdb.DuckDBPyConnection, table: str, record: Record, types: dict[str, str]
) -> None:
    row = {k: v for k, v in record.items() if k in types}
    for name in _JSON_COLUMNS.get(table, ()):
        if row.get(name) is not None:
            row[name] = json.dumps(row[name])
    columns = ", ".join(f'"{k}"' for k in row)
    placeholders = ", ".join("?" for _ in row)
    natural = _NATURAL_KEYS.get(table)
    if natural is not None and _exists(con, table, natural, row):
        return
    con.execute(f"{_insert(table)} ({columns}) VALUES ({placeholders})", list(row.values()))


def _insert(table: str) -> str:
    """INSERT that skips a row already there: by primary key, or (no key) by `_keep_new`."""
    return f"INSERT INTO {table}" if table in _NATURAL_KEYS else f"INSERT OR IGNORE INTO {table}"


def _exists(
    con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str], row: dict[str, Any]
) -> bool:
    where = " AND ".join(f'"{k}" = ?' for k in keys)
    found = con.execute(f"SELECT 1 FROM {table} WHERE {where} LIMIT 1", [row.get(k) for k in keys])
    return found.fetchone() is not None


def _keep_new(
    table: str, alias: str, run_ids: Collection[Any] | None = None
) -> tuple[str, list[str]]:
    """The condition that skips records a table without a primary key already holds, and its
    parameters; with `run_ids` (the records' runs), stored rows are looked for among theirs only
    (constants: DuckDB then skips the other runs' row groups)."""
    keys = _NATURAL_KEYS.get(table)
    if keys is None:
        return "", []
    same = " AND ".join(f'x."{k}" = {alias}."{k}"' for k in keys)
    if not run_ids or any(not isinstance(r, str) for r in run_ids):
        return f" AND NOT EXISTS (SELECT 1 FROM {table} x WHERE {same})", []
    among = ", ".join("?" for _ in run_ids)
    return f" AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.run_id IN ({among}) AND {same})", [
        *run_ids
    ]


# ---- ops ---------------------------------------------------------------------------------------


def apply_op(con: duckdb.DuckDBPyConnection, op: Record) -> None:
    """One op record: every op can be applied twice with the same outcome."""
    kind, args = op.get("op"), op.get("args") or {}
    if kind in ("phase", "load_level", "repetition_stop"):
        table = {"phase": "phases", "load_level": "load_levels"}.get(str(kind), "repetition_stops")
        _insert_row(con, table, args, column_types(con, table))
    elif kind == "update_model":
        fields = dict(args.get("fields") or {})
        for name in ("options", "show_info"):
            if fields.get(name) is not None:
                fields[name] = json.dumps(fields[name], default=str)
        if fields:
            assignments = ", ".join(f'"{name}" = ?' for name in fields)
            con.execute(
                f"UPDATE models SET {assignments} WHERE run_id = ? AND model = ? AND host = ?",
                [*fields.values(), args["run_id"], args["model"], args["host"]],
            )
    elif kind == "finish_run":
        # Never over a later status: an import of an old spill must not reopen a run.
        con.execute(
            "UPDATE runs SET status = ?, ended_at = ? WHERE run_id = ? AND status IN "
            "('running', 'aborted')",
            [args["status"], args["ended_at"], args["run_id"]],
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def records_of(paths: Sequence[Path]) -> list[Record]:
    """Every record of some journal or spill files, in order (headers left out)."""
    found = []
    for path in paths:
        found += [r for r in journal.read_records(path) if r.get("table") != journal.SPILL_HEADER]
    return found
