"""Progress of a long batch on stderr: one line rewritten in place on a terminal; elsewhere (cron,
a pipe, a log file) a plain line every PLAIN_EVERY steps and one at the end, never a '\\r'."""

from __future__ import annotations

import sys
import time
from typing import TextIO

PLAIN_EVERY = 50
PLAIN_EVERY_S = 30.0


class Progress:
    """'run pages: 120 of 3,000 (0.4 s each, about 19 min left)' for a batch of `total` steps."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.done = 0
        self._began_s = self._said_s = time.monotonic()
        self._shown = False

    def step(self) -> None:
        """One more done: redraw the line, or (not a terminal) say so now and then."""
        self.done += 1
        if self.live:
            self._write("\r\x1b[K" + self._line())
            self._shown = True
            return
        now_s = time.monotonic()
        due = self.done % PLAIN_EVERY == 0 or now_s - self._said_s >= PLAIN_EVERY_S
        if due and self.done < self.total:
            self._write(self._line() + "\n")
            self._said_s = now_s

    def clear(self) -> None:
        """Take the live line away, so that another line can be printed where it stood (the
        next `step` draws it again)."""
        if self._shown:
            self._write("\r\x1b[K")
            self._shown = False

    def finish(self) -> None:
        """The last line: how many were done and how long they took."""
        if not self.total:
            return
        took_s = time.monotonic() - self._began_s
        line = f"{self.what}: {self.done:,} of {self.total:,} done in {_duration(took_s)}"
        self._write(("\r\x1b[K" if self._shown else "") + line + "\n")
        self._shown = False

    def _line(self) -> str:
        each_s = (time.monotonic() - self._began_s) / max(self.done, 1)
        left_s = each_s * (self.total - self.done)
        return (
            f"{self.what}: {self.done:,} of {self.total:,} "
            f"({each_s:.1f} s each, about {_duration(left_s)} left)"
        )

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
