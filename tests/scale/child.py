"""One command in a child process: its wall time, exit time and peak memory, within bounds.

A thread blocks in wait4 on the child, so its exit is seen the moment it happens. Meanwhile this
thread polls the child's VmHWM (/proc/PID/status: the peak resident set of the program the child
runs, reset by exec) every POLL_S, and kills the child's process group past a time limit or a
memory cap (the machine is shared). wait4's ru_maxrss is no use here: it keeps the peak from
before exec, when the forked child still mapped this (much bigger) process's pages. The poll
misses at most growth in the last POLL_S before exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

POLL_S = 0.02


@dataclass
class Outcome:
    """How one command went."""

    argv: list[str]
    wall_s: float
    exited_at: float  # time.time() when the child had exited
    peak_rss_bytes: int
    exit_code: int | None  # None: killed by us (see `killed`)
    killed: str | None
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def failure(self) -> str:
        """One line on why the command did not succeed."""
        if self.killed:
            return self.killed
        last = (self.stderr.strip() or self.stdout.strip()).splitlines()[-1:] or ["no output"]
        return f"exit {self.exit_code}: {last[0][:160]}"


def novabench() -> list[str]:
    """The `novabench` console script next to this Python, else `python -m novabench`."""
    script = Path(sys.executable).with_name("novabench")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "novabench"]


def run(argv: list[str], timeout_s: float, rss_cap_bytes: int, cwd: Path | None = None) -> Outcome:
    """Run argv to its end (or kill it past timeout_s or rss_cap_bytes)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True
        )
        reaped: dict[str, object] = {}

        def reap() -> None:
            _, status, _ = os.wait4(process.pid, 0)
            reaped.update(status=status, at=time.time(), end=time.perf_counter())

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        peak = _Peak(process.pid)
        killed = _watch(process.pid, waiter, peak, started, timeout_s, rss_cap_bytes)
        waiter.join()
        process.returncode = os.waitstatus_to_exitcode(reaped["status"])  # type: ignore[arg-type]
        out.seek(0)
        err.seek(0)
        return Outcome(
            argv=argv,
            wall_s=float(reaped["end"]) - started,  # type: ignore[arg-type]
            exited_at=float(reaped["at"]),  # type: ignore[arg-type]
            peak_rss_bytes=peak.bytes,
            exit_code=None if killed else process.returncode,
            killed=killed,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def _watch(
    pid: int,
    waiter: threading.Thread,
    peak: _Peak,
    started: float,
    timeout_s: float,
    rss_cap_bytes: int,
) -> str | None:
    """Wait for the child; kill its process group past the time limit or the memory cap."""
    while waiter.is_alive():
        peak.read()
        waiter.join(POLL_S)
        if not waiter.is_alive():
            return None
        reason = None
        if time.perf_counter() - started > timeout_s:
            reason = f"killed after {timeout_s:g} s (--timeout)"
        elif peak.bytes > rss_cap_bytes:
            reason = f"killed above {rss_cap_bytes / 2**30:.1f} GiB resident (--memory-cap-gb)"
        if reason is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            return reason
    return None


class _Peak:
    """The highest VmHWM read so far of one process (0 before its first read)."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.bytes = 0

    def read(self) -> None:
        try:
            text = self.status.read_text()
        except OSError:  # gone: reaped
            return
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                self.bytes = max(self.bytes, int(line.split()[1]) * 1024)
                return
