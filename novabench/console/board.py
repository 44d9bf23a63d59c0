"""What the live display knows about a run: counters per mode and model, updated in O(1) on each
event (on the event loop), read by the display's refresh thread as bounded views.

Nothing here loops over streams or results: a token is one counter and, while one line per
stream is shown, one append to a bounded deque; a finished request is a few counters and one
TTFT in a bounded window. The refresh thread reads the counters (under the GIL a read of an int
or a reference is atomic; a copy of a bounded deque is one C call) and does all the formatting.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from novabench.records import RequestResult
from novabench.text import terminal_safe

# Above this many streams in flight the display shows aggregates per mode and model; back to
# one line per mode and model at half of it, so a level that hovers near the threshold does
# not make the display flicker between the two.
AGGREGATE_ABOVE_STREAMS = 32
RECENT_TTFTS = 101  # the TTFT p50 is over the latest requests (odd: one middle value)
RATE_WINDOW_S = 2.0  # tokens/s over about the last two seconds
RATE_MIN_SPAN_S = 0.5  # none shown over a shorter span (the first half second): too noisy
TAIL_PIECES = 200  # streamed pieces kept per mode and model for the tail line
NAME_CHARS = 60  # model names and prompt ids are cut to this before being made safe
ERROR_CHARS = 120


def safe(text: str) -> str:
    """terminal_safe, with a C-speed path for the common case of nothing to neutralise."""
    # isprintable() is False for every category terminal_safe escapes (Cc, Cf, Cs, Zl, Zp), so
    # a printable string is returned unchanged by terminal_safe too.
    return text if text.isprintable() else terminal_safe(text)


def cut(text: str, chars: int) -> str:
    """The start of `text`, at most `chars` characters (an ellipsis marks a cut)."""
    return text if len(text) <= chars else text[: chars - 1] + "…"


def tail_line(pieces: Iterable[str], chars: int) -> str:
    """The last `chars` characters of the concatenated pieces, on one terminal-safe line.

    Only the pieces that reach into the last `chars` characters are joined, and only those
    characters are made safe: the cost is bounded by `chars`, not by the answer's length.
    """
    wanted: list[str] = []
    have = 0
    for piece in reversed(list(pieces)):
        if have >= chars:
            break
        part = piece[-(chars - have) :]
        wanted.append(part)
        have += len(part)
    flat = " ".join("".join(reversed(wanted)).split())
    return safe(flat)


@dataclass(eq=False, slots=True)
class Lane:
    """One mode and model: its counters, its latest streamed text and its recent TTFTs."""

    mode: str
    model: str
    total: int | None  # planned requests; None when a level lasts a duration
    title: str = ""  # "mode model", terminal-safe, made once
    name: str = ""  # the model, terminal-safe, made once
    in_flight: int = 0
    done: int = 0  # finished without an error
    failed: int = 0
    tokens: int = 0  # streamed pieces (one per token on Ollama)
    errors_printed: int = 0
    errors_not_printed: int = 0
    first_started_s: float | None = None  # monotonic clock
    ended_s: float | None = None
    phase_over: bool = False
    prompt: str = ""  # the latest request's prompt id (and warm-up mark), terminal-safe
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_PIECES))
    recent_ttft_ms: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_TTFTS))
    last_answer: str = ""  # the latest successful answer (a reference, never copied here)
    last_error: str = ""
    # Written by the display only (under its lock): (monotonic time, tokens) at each view.
    rate_points: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def __post_init__(self) -> None:
        self.name = safe(cut(self.model, NAME_CHARS))
        self.title = f"{safe(cut(self.mode, NAME_CHARS)):<10} {self.name}"

    @property
    def finished(self) -> int:
        return self.done + self.failed


@dataclass(frozen=True)
class LaneView:
    """One lane as the display shows it at one moment: bounded, terminal-safe strings."""

    title: str
    name: str
    total: int | None
    done: int
    failed: int
    in_flight: int
    elapsed_s: float
    complete: bool
    active: bool  # started, and its phase not over
    tokens_per_s: float | None
    ttft_p50_ms: float | None
    prompt: str
    text: str  # the stream's tail (one line per stream) or the latest answer's end (aggregates)
    last_error: str


class StreamBoard:
    """The run's lanes, how many streams are in flight, and whether to show aggregates."""

    def __init__(
        self,
        aggregate_above: int = AGGREGATE_ABOVE_STREAMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.aggregate_above = aggregate_above
        self.clock = clock
        self.lanes: dict[tuple[str, str], Lane] = {}
        self.in_flight = 0
        self.aggregate = False

    def plan(self, plan: dict[tuple[str, str], int | None]) -> None:
        for (mode, model), total in plan.items():
            self.lanes[(mode, model)] = Lane(mode, model, total)

    def lane(self, mode: str, model: str) -> Lane:
        found = self.lanes.get((mode, model))
        if found is None:  # not in the plan: shown all the same
            found = self.lanes[(mode, model)] = Lane(mode, model, None)
        return found

    def _moved(self, streams: int) -> None:
        self.in_flight = in_flight = max(0, self.in_flight + streams)
        if in_flight > self.aggregate_above:
            self.aggregate = True
        elif in_flight <= self.aggregate_above // 2:
            self.aggregate = False

    def started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> Lane:
        lane = self.lane(mode, model)
        lane.in_flight += 1
        self._moved(1)
        if lane.first_started_s is None:
            lane.first_started_s = self.clock()
        lane.phase_over = False
        if not self.aggregate:
            # A new request's text starts a new tail (several streams of one lane share it).
            lane.tail = deque(maxlen=TAIL_PIECES)
            lane.prompt = safe(cut(prompt_id, NAME_CHARS)) + (" (warm-up)" if is_warmup else "")
        return lane

    def text(self, mode: str, model: str, piece: str) -> None:
        lane = self.lanes.get((mode, model))
        if lane is None:
            lane = self.lane(mode, model)
        lane.tokens += 1
        if not self.aggregate:
            lane.tail.append(piece)

    def finished(self, result: RequestResult) -> Lane:
        lane = self.lane(result.mode, result.model)
        if lane.in_flight > 0:  # a request that never started (its model is unavailable)
            lane.in_flight -= 1
            self._moved(-1)
        if result.error is not None:
            lane.failed += 1
            lane.last_error = result.error
        else:
            lane.done += 1
            lane.last_answer = result.response_text
            if result.ttft_s is not None and not result.is_warmup and not result.is_cold:
                lane.recent_ttft_ms.append(result.ttft_s * 1000.0)
        if lane.total is not None and lane.finished >= lane.total and lane.ended_s is None:
            lane.ended_s = self.clock()
        return lane

    def phase_finished(self, mode: str) -> list[Lane]:
        """Mark a mode's lanes over; returns them."""
        now = self.clock()
        over = [lane for lane in list(self.lanes.values()) if lane.mode == mode]
        for lane in over:
            lane.phase_over = True
            if lane.ended_s is None and lane.first_started_s is not None:
                lane.ended_s = now
        return over

    def views(self, text_chars: int, max_lanes: int) -> list[LaneView]:
        """The first `max_lanes` lanes as the display shows them now (refresh thread only)."""
        now = self.clock()
        aggregate = self.aggregate
        views = []
        for lane in list(self.lanes.values())[:max_lanes]:
            views.append(self._view(lane, now, aggregate, text_chars))
        return views

    def _view(self, lane: Lane, now: float, aggregate: bool, text_chars: int) -> LaneView:
        started = lane.first_started_s
        ended = lane.ended_s if lane.ended_s is not None else now
        if aggregate:
            text = tail_line((lane.last_answer,), text_chars)
        else:
            text = tail_line(lane.tail, text_chars)
        return LaneView(
            title=lane.title,
            name=lane.name,
            total=lane.total,
            done=lane.done,
            failed=lane.failed,
            in_flight=lane.in_flight,
            elapsed_s=0.0 if started is None else max(0.0, ended - started),
            complete=lane.ended_s is not None,
            active=started is not None and not lane.phase_over,
            tokens_per_s=self._rate(lane, now),
            ttft_p50_ms=median(lane.recent_ttft_ms),
            prompt=lane.prompt,
            text=text,
            last_error=safe(" ".join(lane.last_error[:ERROR_CHARS].split())),
        )

    @staticmethod
    def _rate(lane: Lane, now: float) -> float | None:
        """Tokens per second since the oldest view of the last RATE_WINDOW_S."""
        points = lane.rate_points
        tokens = lane.tokens
        points.append((now, tokens))
        while len(points) > 2 and now - points[1][0] >= RATE_WINDOW_S:
            points.popleft()
        then, tokens_then = points[0]
        span_s = now - then
        return (tokens - tokens_then) / span_s if span_s >= RATE_MIN_SPAN_S else None


def median(values: deque[float]) -> float | None:
    """The median of a bounded window (sorted in C: at most RECENT_TTFTS values)."""
    ordered = sorted(values)
    count = len(ordered)
    if not count:
        return None
    middle = count // 2
    return ordered[middle] if count % 2 else (ordered[middle - 1] + ordered[middle]) / 2
