"""What an exception means for a user, as the one line the CLI prints (and its exit code)."""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb

from novabench.errors import NovabenchError, OutputError, StoreError


def user_error(exc: Exception, db_path: Path | None) -> NovabenchError | None:
    """The one-line error that `exc` means for a user; None for a bug, which stays a traceback."""
    if isinstance(exc, StoreError):
        return StoreError(_store_line(exc))
    if isinstance(exc, NovabenchError):
        return exc
    if isinstance(exc, duckdb.Error):  # a statement failed after the file opened
        what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StoreError(
            f"{db_path or 'the database'}: the database failed ({what}): if it is a novabench "
            "database, check the free space and permissions where it is; if not, or if it is "
            "damaged, give --db another path"
        )
    if isinstance(exc, OSError) and exc.errno != errno.EPIPE:  # EPIPE: click exits quietly
        reason = exc.strerror or str(exc)
        if exc.filename is None:  # a write to stdout or stderr
            return OutputError(
                f"cannot write the output ({reason}): check where it goes (a file on a full "
                "disk, a pipe or terminal that closed)"
            )
        return OutputError(
            f"cannot write {exc.filename} ({reason}): check the path, its folder's permissions "
            "and the free space on its disk"
        )
    return None


def _store_line(exc: StoreError) -> str:
    """A store error on one line, with what to do when the store could not open the file.

    Re-worded here rather than in store.py, which gives the file and DuckDB's reason only.
    """
    message = " ".join(str(exc).split())  # DuckDB's reasons can span lines
    reason = str(exc.__cause__ or "")
    if "cannot open the database" not in message or not reason:
        return message
    if "not a valid DuckDB database" in reason:
        hint = "it is not a novabench database: give --db the right file, or a new path"
    elif "Read-only file system" in reason or "Permission denied" in reason:
        hint = (
            "novabench writes to the database and to a .wal file beside it: make both "
            "writable, or give --db a copy in a folder you can write to"
        )
    else:
        hint = "check the file given with --db"
    return f"{message}: {hint}"
