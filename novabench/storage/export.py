"""Export stored results as CSV, JSON or Parquet through DuckDB's own COPY.

One row per request, with its run's context, the raw server fields and the derived figures.
The derived columns are computed in SQL here with the same definitions as `metrics.derive`
(a test holds the two in step).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

import duckdb

from novabench.errors import NovabenchError, OutputError, RunNotFoundError
from novabench.storage.settings import FORMATS, ExportFormat
from novabench.storage.store import Store

# Bumped whenever a column is renamed, removed or changes meaning; new columns keep it.
EXPORT_FORMAT_VERSION = 1

# (column, SQL, meaning): the documented columns, in order.
COLUMNS: list[tuple[str, str, str]] = [
    ("format_version", str(EXPORT_FORMAT_VERSION), "version of this export's columns"),
    ("run_id", "x.run_id", "the run"),
    ("suite_name", "r.suite_name", "the suite's name"),
    ("run_started_at", "r.started_at", "when the run started (UTC)"),
    ("run_status", "r.status", "running / complete / interrupted / aborted"),
    ("novabench_version", "r.novabench_version", "novabench that measured it"),
    ("ollama_version", "r.ollama_version", "Ollama version of the suite's host"),
    ("seq", "x.seq", "order in which requests finished within the run"),
    ("mode", "x.mode", "parallel, sequential or load"),
    ("model", "x.model", "model name as given in the suite"),
    ("host", "x.host", "Ollama URL"),
    ("digest", "m.digest", "model digest (64 hex)"),
    ("quantization", "m.quantization", "quantization level"),
    ("parameter_size", "m.parameter_size", "parameter size, e.g. 3.2B"),
    ("prompt_id", "x.prompt_id", "prompt id"),
    ("repetition", "x.repetition", "repetition number, from 0 (load: request number in its level)"),
    ("is_warmup", "x.is_warmup", "warm-up request: excluded from statistics"),
    ("is_cold", "x.is_cold", "cold start (model unloaded first): excluded from warm statistics"),
    ("started_at", "x.started_at", "when the request was sent (UTC)"),
    ("start_offset_s", "x.start_offset_s", "request sent, seconds after the run started"),
    ("ttft_ms", "x.ttft_s * 1000", "time to first token, client clock"),
    ("e2e_ms", "x.e2e_s * 1000", "request sent to done line, client clock"),
    (
        "itl_ms",
        "CASE WHEN len(x.token_offsets_s) >= 2 AND {tokens} > 1 THEN "
        "(x.token_offsets_s[-1] - x.token_offsets_s[1]) * 1000 / ({tokens} - 1) END",
        "inter-token latency: (last token - first token) / (tokens - 1)",
    ),
    (
        "tpot_ms",
        "CASE WHEN {tokens} > 1 THEN (x.e2e_s - x.ttft_s) * 1000 / ({tokens} - 1) END",
        "time per output token: (e2e - TTFT) / (tokens - 1)",
    ),
    (
        "eval_tokens_per_s",
        "CASE WHEN x.eval_count > 0 AND x.eval_duration_ns > 0 THEN "
        "x.eval_count * 1e9 / x.eval_duration_ns END",
        "generation tokens/s, server: eval_count / eval_duration",
    ),
    (
        "client_tokens_per_s",
        "CASE WHEN len(x.token_offsets_s) >= 2 AND "
        "x.token_offsets_s[-1] > x.token_offsets_s[1] THEN "
        "{tokens} / (x.token_offsets_s[-1] - x.token_offsets_s[1]) END",
        "generation tokens/s, client: tokens / (last token - first token)",
    ),
    (
        "prompt_tokens_per_s",
        "CASE WHEN x.prompt_eval_count > 0 AND x.prompt_eval_duration_ns > 0 THEN "
        "x.prompt_eval_count * 1e9 / x.prompt_eval_duration_ns END",
        "prompt tokens/s: prompt_eval_count / prompt_eval_duration",
    ),
    ("load_ms", "x.load_duration_ns / 1e6", "load_duration"),
    (
        "queue_ms",
        "CASE WHEN x.total_duration_ns IS NOT NULL THEN greatest(0, x.total_duration_ns - "
        "coalesce(x.load_duration_ns, 0) - coalesce(x.prompt_eval_duration_ns, 0) - "
        "coalesce(x.eval_duration_ns, 0)) / 1e6 END",
        "queue wait: total - (load + prompt eval + eval)",
    ),
    ("output_tokens", "{tokens}", "eval_count, else the number of content chunks"),
    ("prompt_eval_count", "x.prompt_eval_count", "server: prompt tokens"),
    ("prompt_eval_duration_ns", "x.prompt_eval_duration_ns", "server, nanoseconds"),
    ("eval_count", "x.eval_count", "server: generated tokens"),
    ("eval_duration_ns", "x.eval_duration_ns", "server, nanoseconds"),
    ("load_duration_ns", "x.load_duration_ns", "server, nanoseconds"),
    ("total_duration_ns", "x.total_duration_ns", "server, nanoseconds"),
    ("done_reason", "x.done_reason", "stop, length, ..."),
    ("chunk_count", "x.chunk_count", "NDJSON lines received"),
    ("response_bytes", "x.response_bytes", "bytes received"),
    ("checks", "x.checks", "quality checks: {name: passed} (JSON)"),
    ("error", "x.error", "why the request failed, or empty"),
    ("http_status", "x.http_status", "HTTP status of the response"),
    ("response_text", "x.response_text", "the answer (untrusted model output)"),
    ("token_offsets_s", "x.token_offsets_s", "arrival of each content chunk, s after send"),
    # Added after format 1 shipped: at the end, so no column moves.
    ("load_kind", "l.kind", "load mode: concurrency or rate, else empty"),
    ("load_level", "l.level", "load mode: concurrent streams, or requests/s offered"),
]
_TOKENS = "coalesce(nullif(x.eval_count, 0), len(x.token_offsets_s))"


def export_query() -> str:
    """The SELECT behind every export; filters are bound as parameters."""
    columns = ",\n       ".join(
        f"{sql.format(tokens=_TOKENS)} AS {name}" for name, sql, _ in COLUMNS
    )
    return f"""
SELECT {columns}
FROM results x
JOIN runs r USING (run_id)
LEFT JOIN models m ON m.run_id = x.run_id AND m.model = x.model AND m.host = x.host
LEFT JOIN load_levels l ON l.run_id = x.run_id AND l.model = x.model AND l.host = x.host
    AND l.level_index = x.load_level
WHERE (?::VARCHAR IS NULL OR x.run_id = ?) AND (?::VARCHAR IS NULL OR r.suite_name = ?)
ORDER BY r.started_at, x.run_id, x.seq
"""


def export_results(
    store: Store,
    out: Path,
    export_format: ExportFormat,
    run_id: str | None = None,
    suite: str | None = None,
) -> int:
    """Write the selected results to `out`; return how many rows were written."""
    if export_format not in FORMATS:
        raise NovabenchError(f"format {export_format!r} is not one of {', '.join(FORMATS)}")
    if run_id is not None:
        store.get_run(run_id)  # a clear error for an unknown run
    if suite is not None and not store.list_runs(suite):
        raise RunNotFoundError(f"no runs of suite {suite!r} in {store.path}")
    options = {
        "csv": "FORMAT csv, HEADER true",
        "json": "FORMAT json",  # newline-delimited: one object per line
        "parquet": "FORMAT parquet",
    }[export_format]
    _check_target(out, export_format)
    temp = _reserve_temp(out)
    try:
        target = str(temp).replace("'", "''")
        with store.connect() as con:
            try:
                con.execute(
                    f"COPY ({export_query()}) TO '{target}' ({options})",
                    [run_id, run_id, suite, suite],
                )
            except duckdb.IOException as exc:  # DuckDB's message names the temporary file
                reason = str(exc).splitlines()[0].rsplit('": ', 1)[-1]
                raise _cannot_write(out, reason) from exc
            row = con.execute(
                f"SELECT count(*) FROM ({export_query()})", [run_id, run_id, suite, suite]
            ).fetchone()
        _check_target(out, export_format)  # again: something may have appeared there meanwhile
        os.replace(temp, out)  # never a half-written export under the real name
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError):
            raise _cannot_write(out, exc.strerror or str(exc)) from exc
        raise
    return int(row[0]) if row else 0


def _check_target(out: Path, export_format: ExportFormat) -> None:
    """Refuse to replace anything but a regular file: a link, FIFO, device or folder stays."""
    try:
        mode = out.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _cannot_write(out, exc.strerror or str(exc)) from exc
    if stat.S_ISREG(mode):
        return  # an earlier export, replaced as a whole
    if stat.S_ISLNK(mode):
        kind, hint = "a symbolic link", "give the path it points to, or remove the link"
    elif stat.S_ISDIR(mode):
        kind, hint = "a folder", f"give a file inside it, e.g. {out / f'results.{export_format}'}"
    else:
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else ""
        kind, hint = kind or "a device", "give the path of a regular file"
    raise OutputError(f"{out} is {kind}: an export replaces its target with a new file; {hint}")


def _reserve_temp(out: Path) -> Path:
    """A new, uniquely named file next to `out`, which DuckDB writes and which is then renamed."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        while True:
            # A name of our own (".partial" also keeps DuckDB from guessing a compression).
            temp = out.with_name(f".{out.name[:200]}.{secrets.token_hex(4)}.partial")
            try:
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            except FileExistsError:
                continue
            return temp
    except OSError as exc:
        raise _cannot_write(out, exc.strerror or str(exc)) from exc


def _cannot_write(out: Path, reason: str) -> OutputError:
    return OutputError(
        f"cannot write the export {out} ({reason}): give --out a path in a folder novabench "
        "can write to, on a disk with free space"
    )
