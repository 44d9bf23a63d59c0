"""The live display above a few dozen streams: it switches to aggregates per mode and model and
back, and the aggregates (in flight, done, failed, tokens/s, TTFT p50) match known events."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from novabench.console.board import RECENT_TTFTS, StreamBoard, tail_line
from novabench.console.live import LiveObserver
from novabench.records import RequestResult

MODE, MODEL = "load", "llama3.2"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def result(ttft_s: float | None = 0.1, error: str | None = None, text: str = "ok") -> RequestResult:
    return RequestResult(
        MODE, MODEL, "h", "p", 0, False, datetime.now(UTC), ttft_s=ttft_s, error=error,
        response_text=text,
    )  # fmt: skip


def warmup(ttft_s: float) -> RequestResult:
    warm = result(ttft_s=ttft_s)
    warm.is_warmup = True
    return warm


def plain(observer: LiveObserver, width: int = 160, height: int = 40) -> str:
    """The display as the terminal would show it, without styles."""
    console = Console(file=io.StringIO(), width=width, height=height, color_system=None)
    console.print(observer.display)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def observer(aggregate_above: int = 32) -> LiveObserver:
    quiet = Console(file=io.StringIO(), width=160, height=40, force_terminal=True)
    watcher = LiveObserver(quiet, aggregate_above=aggregate_above)
    watcher.run_started("r1", {(MODE, MODEL): 1000})
    return watcher


def start(watcher: LiveObserver, streams: int) -> None:
    for number in range(streams):
        watcher.request_started(MODE, MODEL, f"p{number}", False)


def test_aggregates_switch_on_above_the_threshold_and_back() -> None:
    watcher = observer(aggregate_above=32)
    start(watcher, 32)
    watcher.text_received(MODE, MODEL, "streamed words")
    assert not watcher.board.aggregate
    shown = plain(watcher)
    assert "streamed words" in shown and "llama3.2 · p31" in shown
    assert "in flight" not in shown

    start(watcher, 1)  # 33 streams: above the threshold
    assert watcher.board.aggregate and watcher.board.in_flight == 33
    watcher.request_finished(result(text="the latest answer"))
    shown = plain(watcher)
    assert "32 streams in flight, totals per mode and model" in shown
    assert "32 in flight" in shown and "latest: the latest answer" in shown
    assert "llama3.2 · p" not in shown  # no line per stream

    for _ in range(15):  # 17 in flight: still aggregates (no flicker near the threshold)
        watcher.request_finished(result())
    assert watcher.board.aggregate
    watcher.request_finished(result())  # 16: half the threshold, one line per stream again
    assert not watcher.board.aggregate and watcher.board.in_flight == 16
    start(watcher, 1)
    watcher.text_received(MODE, MODEL, "fresh text")
    shown = plain(watcher)
    assert "in flight" not in shown and "fresh text" in shown


def test_a_request_that_never_started_does_not_count_as_finishing_a_stream() -> None:
    board = StreamBoard(aggregate_above=2)
    board.plan({(MODE, MODEL): 4})
    board.finished(result(error="model unavailable"))  # the runner's _failed: no start
    assert board.in_flight == 0 and board.lanes[(MODE, MODEL)].failed == 1


def test_aggregates_match_known_events() -> None:
    clock = Clock()
    board = StreamBoard(aggregate_above=32, clock=clock)
    board.plan({(MODE, MODEL): 100, ("load", "other"): 100})
    for number in range(40):
        board.started(MODE, MODEL, f"p{number}", False)
    board.started(MODE, MODEL, "warm", True)
    board.finished(warmup(ttft_s=9.0))  # a warm-up's TTFT is not in the p50
    [first, _] = board.views(text_chars=80, max_lanes=10)
    assert first.tokens_per_s is None  # nothing to measure a rate over yet

    clock.now_s += 0.25
    for _ in range(300):
        board.text(MODE, MODEL, "tok ")
    clock.now_s += 0.75  # 1 s after the first view: 300 tokens
    ttfts_ms = [50.0, 10.0, 30.0, 20.0, 40.0]  # p50 30
    for ttft_ms in ttfts_ms:
        board.finished(result(ttft_s=ttft_ms / 1000))
    board.finished(warmup(ttft_s=5.0))
    board.finished(result(ttft_s=None, error="HTTP 500: boom"))
    board.finished(result(ttft_s=None, error="HTTP 503: busy"))

    view, other = board.views(text_chars=80, max_lanes=10)
    assert view.tokens_per_s == 300.0
    assert view.ttft_p50_ms == 30.0
    assert (view.in_flight, view.done, view.failed, view.total) == (41 - 9, 7, 2, 100)
    assert view.last_error == "HTTP 503: busy"
    assert (other.in_flight, other.done, other.tokens_per_s, other.ttft_p50_ms) == (0, 0, 0.0, None)

    clock.now_s += 3.0  # the window moves on: 600 more tokens over the last 3 s
    for _ in range(600):
        board.text(MODE, MODEL, "tok ")
    [view, _] = board.views(text_chars=80, max_lanes=10)
    assert view.tokens_per_s == 200.0


def test_ttft_p50_is_of_the_latest_requests_only() -> None:
    board = StreamBoard(aggregate_above=0)
    board.plan({(MODE, MODEL): None})
    for _ in range(1000):  # old, slow requests
        board.started(MODE, MODEL, "p", False)
        board.finished(result(ttft_s=5.0))
    for number in range(RECENT_TTFTS):  # the latest: 1 ms ... RECENT_TTFTS ms
        board.started(MODE, MODEL, "p", False)
        board.finished(result(ttft_s=(number + 1) / 1000))
    [view] = board.views(text_chars=80, max_lanes=1)
    assert view.ttft_p50_ms is not None
    assert abs(view.ttft_p50_ms - (RECENT_TTFTS + 1) / 2) < 1e-9
    assert (view.done, view.total) == (1000 + RECENT_TTFTS, None)


def test_the_tail_is_the_end_of_the_stream_on_one_line() -> None:
    assert tail_line(["abc ", "def\n", "ghi"], 6) == "ef ghi"
    assert tail_line(["x" * 10_000_000, "end"], 5) == "xxend"
    assert tail_line([], 5) == ""


def test_above_the_threshold_only_the_first_failures_are_printed_then_counted() -> None:
    printed = io.StringIO()
    watcher = LiveObserver(Console(file=printed, width=160, color_system=None))
    watcher.run_started("r1", {(MODE, MODEL): 100})
    start(watcher, 40)
    for number in range(10):
        watcher.request_finished(result(ttft_s=None, error=f"HTTP 500: failure {number}"))
    watcher.phase_finished(MODE, 1.0)
    lines = printed.getvalue().splitlines()
    failures = [line for line in lines if "FAILED" in line]
    assert [line.rsplit(" ", 1)[-1] for line in failures] == ["0", "1", "2"]
    assert "load llama3.2: 7 more failed requests not listed (stored with the others)" in lines
    assert plain(watcher).count("10 failed") == 1


def test_below_the_threshold_every_failure_is_printed() -> None:
    printed = io.StringIO()
    watcher = LiveObserver(Console(file=printed, width=160, color_system=None))
    watcher.run_started("r1", {(MODE, MODEL): 100})
    start(watcher, 10)
    for number in range(10):
        watcher.request_finished(result(ttft_s=None, error=f"HTTP 500: failure {number}"))
    watcher.phase_finished(MODE, 1.0)
    assert printed.getvalue().count("FAILED") == 10
    assert "not listed" not in printed.getvalue()
