"""The live display in a terminal: a progress bar per mode and model with the tokens as they
stream in, or above a few dozen streams in flight, aggregates per mode and model (model output
shown as text, never obeyed).

Its cost does not grow with the number of streams: the events (on the event loop) only update
counters (novabench/console/board.py), and rich's refresh thread turns the board into a bounded
number of lines of bounded length, as rich Segments built directly. The thread holds the GIL
while it renders, and the event loop waits for it to read tokens: a rich Progress and Table
cost about 1-2.7 ms of layout per refresh on this project's 2-core machine, these Segments
about 0.1-0.25 ms (tests/README.md, "Event-loop lag").
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta

from rich.cells import cell_len, get_character_cell_size, set_cell_size
from rich.console import Console, ConsoleOptions
from rich.default_styles import DEFAULT_STYLES
from rich.live import Live
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from novabench.console.board import (
    AGGREGATE_ABOVE_STREAMS,
    RECENT_TTFTS,
    LaneView,
    StreamBoard,
    safe,
)
from novabench.console.log import describe_level, describe_result
from novabench.records import LevelSummary, RequestResult

REFRESH_PER_S = 8
BAR_CELLS = 40
AGGREGATE_BAR_CELLS = 20
MAX_TEXT_CHARS = 240  # a tail line never needs more than a wide terminal shows
ERRORS_PRINTED_PER_LANE = 3  # in aggregate mode; the rest are counted (all are stored)


class _Lines:
    """The display as rich Segments, built directly: rich's Text would divide, wrap and style
    each line again on every refresh (most of the refresh's cost). Every string added is
    terminal-safe already (board.safe) or written here."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []

    def add(self, text: str, style: str | None = None) -> None:
        if text:
            self.segments.append(Segment(text, None if style is None else _style(style)))

    def end_line(self) -> None:
        self.segments.append(Segment.line())


@functools.cache
def _style(name: str) -> Style:
    # The default theme's styles (bar.complete, progress.elapsed, ...) and plain style strings.
    return DEFAULT_STYLES.get(name) or Style.parse(name)


def _progress(out: _Lines, view: LaneView, title_cells: int, bar_cells: int) -> None:
    """A progress line as rich's Progress drew it: title, bar, finished/total, elapsed."""
    finished = view.done + view.failed
    filled = min(bar_cells, round(bar_cells * finished / view.total)) if view.total else 0
    out.add(_padded(view.title, title_cells) + " ")
    out.add("━" * filled, "bar.finished" if view.complete and view.total else "bar.complete")
    out.add("━" * (bar_cells - filled), "bar.back")
    count = (
        str(finished) if view.total is None else f"{finished:>{len(str(view.total))}}/{view.total}"
    )
    out.add(" " + count, "progress.download")
    out.add(f" {timedelta(seconds=int(view.elapsed_s))}", "progress.elapsed")


def _padded(text: str, cells: int) -> str:
    return text + " " * max(0, cells - cell_len(text))


def _end(text: str, cells: int) -> str:
    """The end of `text` in at most `cells` terminal cells (an ellipsis marks a cut)."""
    if text.isascii():
        return text if len(text) <= cells else "…" + text[-(cells - 1) :]
    if cell_len(text) <= cells:
        return text
    used, start = 1, len(text)
    while start > 0 and used + get_character_cell_size(text[start - 1]) <= cells:
        start -= 1
        used += get_character_cell_size(text[start])
    return "…" + text[start:]


class BoardDisplay:
    """The board as a few lines of Segments: rendered on rich's refresh thread, in bounded time."""

    def __init__(self, board: StreamBoard, console: Console) -> None:
        self.board = board
        self.console = console
        # The refresh thread renders the display, and so does a line printed on the event
        # loop's thread (rich re-renders a live display below each printed line).
        self._lock = threading.Lock()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> list[Segment]:
        with self._lock:
            return self.segments(options.max_width, options.height or console.height)

    def segments(self, width: int, height: int) -> list[Segment]:
        # Lines past the terminal's height would be cropped by Live anyway: never build them.
        views = self.board.views(min(MAX_TEXT_CHARS, max(20, width)), max(1, (height - 2) // 2))
        out = _Lines()
        if self.board.aggregate:
            self._aggregates(out, views, width)
        else:
            self._streams(out, views, width)
        hidden = len(self.board.lanes) - len(views)
        if hidden > 0:
            out.add(f"… and {hidden} more (mode, model) not shown", "dim")
            out.end_line()
        if out.segments:
            out.segments.pop()  # the last line break
        return out.segments

    @staticmethod
    def _streams(out: _Lines, views: list[LaneView], width: int) -> None:
        """As below the threshold: progress bars, then each lane's streaming text."""
        title_cells = max((cell_len(view.title) for view in views), default=0)
        for view in views:
            _progress(out, view, title_cells, BAR_CELLS)
            out.end_line()
        streaming = [(view, f"{view.name} · {view.prompt}") for view in views if view.active]
        label_cells = min(width // 5, max((cell_len(label) for _, label in streaming), default=0))
        for view, label in streaming:
            out.add(set_cell_size(label, label_cells), "bold cyan")
            out.add(" " + _end(view.text, max(10, width - label_cells - 1)))
            out.end_line()

    def _aggregates(self, out: _Lines, views: list[LaneView], width: int) -> None:
        """Above the threshold: one line of aggregates per lane, then its latest answer."""
        board = self.board
        out.add(
            f"{board.in_flight} streams in flight, totals per mode and model (streamed text "
            f"again at ≤ {board.aggregate_above // 2}); TTFT p50 of the last {RECENT_TTFTS}",
            "dim",
        )
        out.end_line()
        title_cells = max((cell_len(view.title) for view in views), default=0)
        for view in views:
            _progress(out, view, title_cells, AGGREGATE_BAR_CELLS)
            rate = "–" if view.tokens_per_s is None else f"{view.tokens_per_s:,.0f}"
            ttft = "–" if view.ttft_p50_ms is None else f"{view.ttft_p50_ms:,.0f} ms"
            out.add(f"  {view.in_flight} in flight  {rate} tok/s  TTFT p50 {ttft}")
            if view.failed:
                out.add(f"  {view.failed} failed", "red")
            out.end_line()
            if view.active and view.text:
                out.add("  latest: ", "bold cyan")
                out.add(_end(view.text, max(10, width - 10)))
                out.end_line()
            if view.active and view.last_error:
                out.add(_end(f"  latest error: {view.last_error}", width), "red")
                out.end_line()


class LiveObserver:
    """Progress and the tokens as they stream in; aggregates above a few dozen streams."""

    def __init__(
        self, console: Console | None = None, aggregate_above: int = AGGREGATE_ABOVE_STREAMS
    ) -> None:
        self.console = console or Console(stderr=True)
        self.board = StreamBoard(aggregate_above)
        # Called for every token: straight to the board, without a frame of its own here.
        self.text_received: Callable[[str, str, str], None] = self.board.text
        self.display = BoardDisplay(self.board, self.console)
        self.live = Live(self.display, console=self.console, refresh_per_second=REFRESH_PER_S)

    def __enter__(self) -> LiveObserver:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        self.console.print(Text(f"run {run_id}"), style="bold")
        self.board.plan(plan)

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        self.board.started(mode, model, prompt_id, is_warmup)

    def request_finished(self, result: RequestResult) -> None:
        lane = self.board.finished(result)
        if result.error is None:
            return
        # Each printed line re-renders the display on this (the event loop's) thread: above the
        # threshold only the first few per lane are printed, the rest counted on the board.
        if self.board.aggregate and lane.errors_printed >= ERRORS_PRINTED_PER_LANE:
            lane.errors_not_printed += 1
            return
        lane.errors_printed += 1
        self.console.print(Text(describe_result(result)), style="red")

    def phase_finished(self, mode: str, wall_s: float) -> None:
        for lane in self.board.phase_finished(mode):
            if lane.errors_not_printed:
                count = lane.errors_not_printed
                self.console.print(
                    Text(
                        f"{safe(lane.mode)} {lane.name}: {count} more failed requests not "
                        "listed (stored with the others)"
                    ),
                    style="red",
                )
                lane.errors_not_printed = 0
        self.console.print(Text(f"{mode} phase done in {wall_s:.2f} s"))

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None:
        self.console.print(Text(describe_level(model, host, summary)))

    def server_warning(self, message: str) -> None:
        self.console.print(Text(f"warning: {safe(message)}"), style="yellow")
