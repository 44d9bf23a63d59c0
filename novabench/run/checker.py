"""Checking answers off the event loop: a thread owned by the run, and a child process with a time
limit for the checks that run the suite author's own patterns.

Token times are taken on the event loop, so nothing that takes long may run there while requests
stream: another stream's checks would show up as a gap between its tokens. A thread suffices for
checks written in Python, since the interpreter switches threads every few milliseconds, and
every check is linear in the answer, whose length is capped (checks.py). Python's `re`, though,
holds the interpreter for a whole match: a `regex`, or a JSON Schema `pattern`, that backtracks
catastrophically would stop every stream and the run itself. Those run in a child process that is
killed when it overruns.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import novabench.analysis.checks
from novabench.analysis.checks import MAX_CHECKED_CHARS, evaluate, is_json, matches_regex

if TYPE_CHECKING:
    from novabench.config.suite import Checks

# A fresh interpreter importing novabench.analysis.checks may take this long on a busy machine.
CHILD_START_LIMIT_S = 60.0


class CheckWorker:
    """Evaluates the checks of a run's answers on a thread of its own, one answer at a time."""

    def __init__(self, pattern_time_limit_s: float | None = None) -> None:
        """`pattern_time_limit_s` defaults to checks.PATTERN_TIME_LIMIT_S as it is now."""
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novabench-checks")
        self._patterns = _PatternProcess(
            pattern_time_limit_s or novabench.analysis.checks.PATTERN_TIME_LIMIT_S
        )

    async def evaluate(self, checks: Checks, text: str) -> dict[str, bool]:
        """What checks.evaluate(checks, text) says, worked out off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._evaluate, checks, text)

    def _evaluate(self, checks: Checks, text: str) -> dict[str, bool]:
        schema = checks.json_.json_schema if checks.json_ is not None else None
        if len(text) > MAX_CHECKED_CHARS or (checks.regex is None and schema is None):
            return evaluate(checks, text)
        rest = checks.model_copy(
            update={"regex": None, "json_": None if schema is not None else checks.json_}
        )
        passed = evaluate(rest, text)
        if checks.regex is not None:
            passed["regex"] = self._patterns.check("regex", checks.regex, text)
        if schema is not None:
            passed["json"] = self._patterns.check("json", schema, text)
        return {name: passed[name] for name in checks.declared}

    def close(self) -> None:
        """Stop the child (a pattern check it is running fails) and wait for the thread."""
        self._patterns.close()
        self._thread.shutdown(wait=True, cancel_futures=True)
        self._patterns.stop()


def check_pattern(kind: str, pattern: Any, text: str) -> bool:
    """The `regex` check (`pattern` a regex) or the `json` check (`pattern` a JSON Schema)."""
    return matches_regex(pattern, text) if kind == "regex" else is_json(text, pattern)


class _PatternProcess:
    """A child process that runs pattern checks, killed (and later restarted) when one overruns.

    Used from the worker thread; `close` may come from another thread at any time.
    """

    def __init__(self, time_limit_s: float) -> None:
        self.time_limit_s = time_limit_s
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._closed = False
        self._unavailable = False  # no child could be started: the checks run in the thread

    def check(self, kind: str, pattern: Any, text: str) -> bool:
        """check_pattern(kind, pattern, text) in the child; False when it overruns the limit."""
        connection = self._connected()
        if connection is None:
            return False if self._closed else check_pattern(kind, pattern, text)
        try:
            connection.send((kind, pattern, text))
            if connection.poll(self.time_limit_s):
                return bool(connection.recv())
        except (OSError, EOFError):
            pass  # the child died, or close() killed it
        self.stop()
        return False

    def _connected(self) -> Connection | None:
        with self._lock:
            if self._connection is not None or self._closed or self._unavailable:
                return self._connection
        try:
            child, connection = _start_child()
        except (OSError, TimeoutError):
            self._unavailable = True
            return None
        with self._lock:
            if not self._closed:
                self._child, self._connection = child, connection
                return connection
        child.kill()
        child.wait()
        connection.close()
        return None

    def close(self) -> None:
        """Refuse further work and kill the child: a check waiting on it fails at once."""
        with self._lock:
            self._closed = True
            child = self._child
        if child is not None:
            child.kill()

    def stop(self) -> None:
        """Kill and reap the child, if there is one; the next check starts a new one."""
        with self._lock:
            child, connection = self._child, self._connection
            self._child = self._connection = None
        if child is not None and connection is not None:
            child.kill()
            child.wait()
            connection.close()


_CHILD_MAIN = "import sys; from novabench.run.checker import serve; serve(int(sys.argv[1]))"


def _start_child() -> tuple[subprocess.Popen[bytes], Connection]:
    """A started, ready child serving pattern checks, and the connection to it."""
    # A fresh interpreter rather than multiprocessing: a fork would copy the run's threads
    # mid-step, and multiprocessing's spawn re-runs the main script, which for a library user's
    # unguarded script means running the benchmark again.
    ours, theirs = multiprocessing.Pipe()
    package_root = str(Path(novabench.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    try:
        child = subprocess.Popen(
            # -P: no module of the current folder shadows the standard library's.
            [sys.executable, "-P", "-c", _CHILD_MAIN, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": path},
            process_group=0,  # Ctrl-C in a terminal is for the parent, which then kills it
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    try:
        ready = ours.poll(CHILD_START_LIMIT_S) and ours.recv() == "ready"
    except (OSError, EOFError):
        ready = False  # it died starting up
    if not ready:
        child.kill()
        child.wait()
        ours.close()
        raise TimeoutError("the pattern check process did not start")
    return child, ours


def serve(fd: int) -> None:
    """The child: answer each (kind, pattern, text) on the connection `fd` until it closes."""
    connection = Connection(fd)
    connection.send("ready")
    while True:
        try:
            kind, pattern, text = connection.recv()
        except EOFError:
            return
        try:
            passed = check_pattern(kind, pattern, text)
        except Exception:  # a MemoryError, say: the check fails, the child serves on
            passed = False
        connection.send(passed)
