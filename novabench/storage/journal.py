"""A run's write-ahead journal: its writes reach an NDJSON file beside the database within a few
tens of milliseconds, before the database sees them.

Every line is one record: a result row (`"table": "results"`), a resource sample
(`"table": "samples"`) or another write of the run (`"table": "op"`: a phase, a load level, the
run's end...). Records go out in segment files, `<db>.journal/<run id>/<number>.ndjson`, which
the run deletes once the database holds them. A run killed outright (kill -9, power loss aside)
leaves its last segments behind, and the next command that opens the database adds what the
database lacks. The spill file a storage failure leaves is the same format in one file, with a
header line; `novabench import` adds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

Record = dict[str, Any]

JOURNAL_SUFFIX = ".journal"
SEGMENT_SUFFIX = ".ndjson"
SPILL_FORMAT = 1
SPILL_HEADER = "spill"  # the header line's "table"


def journal_root(db_path: Path) -> Path:
    """The folder of every run's journal: `<db>.journal` beside the database."""
    return db_path.with_name(db_path.name + JOURNAL_SUFFIX)


def run_journal(db_path: Path, run_id: str) -> Path:
    return journal_root(db_path) / run_id


def encode(record: Record) -> str:
    """One record as one line of JSON (UTF-8, no NaN: the database could not read it back)."""
    return json.dumps(
        record, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_plain
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    raise TypeError(f"{type(value).__name__} is not a journal value")


def segment_path(folder: Path, number: int) -> Path:
    return folder / f"{number:08d}{SEGMENT_SUFFIX}"


def write_segment(path: Path, records: Sequence[Record]) -> None:
    """Write records to a new segment file (no fsync: a killed process's writes survive it)."""
    text = "".join(encode(record) + "\n" for record in records)
    temp = path.with_name(path.name + ".partial")
    with open(temp, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temp, path)  # a segment is whole or absent


def segments(folder: Path) -> list[Path]:
    """A journal folder's segment files, oldest first."""
    try:
        names = sorted(p for p in os.listdir(folder) if p.endswith(SEGMENT_SUFFIX))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [folder / name for name in names]


def read_records(path: Path) -> Iterator[Record]:
    """The records of a segment or spill file, skipping a line cut short by a crash."""
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if not line.endswith("\n"):
                break  # the last write was cut off: never complete, never acknowledged
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def ops_of(path: Path) -> list[Record]:
    """The op records of a file, without parsing its result and sample lines."""
    found = []
    with open(path, encoding="utf-8", errors="replace") as file:
        for line in file:
            if line.startswith('{"table":"op"') and line.endswith("\n"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
    return found


def spill_candidates(db_path: Path, run_id: str) -> list[Path]:
    """Where a spill file goes: beside the database, else the temp folder, else home."""
    name = f"{db_path.stem}.spill-{run_id}{SEGMENT_SUFFIX}"
    folders = [db_path.parent, Path(tempfile.gettempdir()), Path.home()]
    return [folder / name for folder in dict.fromkeys(folders)]


def write_spill(db_path: Path, run_id: str, records: Iterable[Record]) -> tuple[Path, list[str]]:
    """Write records to the first spill file that can be written; (path, why others failed).

    Raises OSError with every reason when none could be written.
    """
    lines = [encode({"table": SPILL_HEADER, "format": SPILL_FORMAT, "run_id": run_id,
                     "database": str(db_path)})]  # fmt: skip
    lines += [encode(record) for record in records]
    text = "\n".join(lines) + "\n"
    failures: list[str] = []
    for path in spill_candidates(db_path, run_id):
        try:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
        except OSError as exc:
            failures.append(f"{path}: {exc.strerror or exc}")
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            continue
        return path, failures
    raise OSError("; ".join(failures))


def spill_header(path: Path) -> Record | None:
    """The header of a spill file, or None when the file is not one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            first = file.readline(4096)
    except OSError:
        return None
    try:
        header = json.loads(first)
    except ValueError:
        return None
    if isinstance(header, dict) and header.get("table") == SPILL_HEADER:
        return header
    return None
