"""One run of a suite at a time: an exclusive flock on `<db folder>/locks/<suite>.lock`.

The kernel drops a flock when its process dies, even by SIGKILL, so a lock is never stale. The
file is kept after a run (unlinking it would let two processes lock two different files); what it
holds (pid, host, start time, run id) describes the holder only while it is locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from novabench.errors import OutputError, SuiteRunningError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def lock_file_name(suite_name: str) -> str:
    """A file name inside the locks folder for any suite name: never a path, never hidden.

    Names that had to change get a hash of the original, so 'a/b' and 'a_b' lock apart.
    """
    safe = _UNSAFE.sub("_", suite_name).lstrip(".")[:80] or "_"
    if safe != suite_name:
        safe += "-" + hashlib.sha256(suite_name.encode()).hexdigest()[:8]
    return f"{safe}.lock"


class SuiteLock:
    """Held from before a run starts until the command ends (or its process dies)."""

    def __init__(self, locks_dir: Path, suite_name: str) -> None:
        self.path = locks_dir / lock_file_name(suite_name)
        self.suite_name = suite_name
        self._file: IO[str] | None = None
        self._holder: dict[str, Any] = {}

    def __enter__(self) -> SuiteLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise SuiteRunningError naming who holds it (OutputError when the
        lock file cannot be made)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # "a", not "w": opening must not truncate what the current holder wrote.
            lock_file = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise self._cannot_write(exc) from exc
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(lock_file)
            lock_file.close()
            raise SuiteRunningError(
                f"suite {self.suite_name!r} is already running (pid {holder.get('pid', '?')} "
                f"since {holder.get('started_at', '?')}, lock {self.path}): not starting"
            ) from None
        except OSError as exc:  # e.g. a filesystem without flock
            lock_file.close()
            raise self._cannot_write(exc) from exc
        self._file = lock_file
        self._holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "run_id": None,
        }
        try:
            self._write()
        except OSError as exc:  # a full disk: better to stop now than fail mid-run
            self.release()
            raise self._cannot_write(exc) from exc

    def record_run_id(self, run_id: str) -> None:
        """Add the run id to the lock file once the run row exists."""
        if self._file is not None:
            self._holder["run_id"] = run_id
            # Only a note for whoever finds the suite running: the flock is the lock, and a
            # run must not stop because its note could not be written.
            with contextlib.suppress(OSError):
                self._write()

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            with contextlib.suppress(OSError):  # a note that could not be flushed: closed anyway
                self._file.close()
            self._file = None

    def _cannot_write(self, exc: OSError) -> OutputError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "free some space there, or give --db a path on another disk"
        else:
            hint = "make that folder writable, or give --db a path in a folder you can write to"
        return OutputError(
            f"cannot write the lock file {self.path} ({exc.strerror or exc}): 'novabench run' "
            f"keeps its locks in <db folder>/locks/; {hint}"
        )

    def _write(self) -> None:
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(self._holder) + "\n")
        self._file.flush()

    @staticmethod
    def _read_holder(lock_file: IO[str]) -> dict[str, Any]:
        """What the holder wrote; it may not have written yet, so wait a little for it."""
        deadline = time.monotonic() + 1.0
        while True:
            lock_file.seek(0)
            try:
                holder = json.loads(lock_file.read())
                if isinstance(holder, dict):
                    return holder
            except ValueError:
                pass
            if time.monotonic() > deadline:
                return {}
            time.sleep(0.02)
