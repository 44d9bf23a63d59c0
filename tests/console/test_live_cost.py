"""The live display's cost does not grow with the number of streams or results: each event and
each refresh does the same work at 10 streams as at 1,000 (counted as Python and C calls, and
timed relative to each other; never against a wall-clock budget)."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from rich.console import Console

from novabench.console.live import LiveObserver
from novabench.records import RequestResult

MODE, MODEL = "load", "llama3.2"
TOKENS_PER_REQUEST = 20


def calls(action: Callable[[], object]) -> int:
    """How many Python and C functions `action` calls (sys.setprofile)."""
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return count


def busy(streams: int, finished: int = 100, aggregate_above: int = 32) -> LiveObserver:
    """A display with `streams` in flight and `finished` requests behind it (not started)."""
    console = Console(file=io.StringIO(), width=160, height=40, force_terminal=True)
    watcher = LiveObserver(console, aggregate_above=aggregate_above)
    watcher.run_started("r1", {(MODE, MODEL): None, ("sequential", MODEL): 10})
    for number in range(finished):
        watcher.request_started(MODE, MODEL, "p", False)
        watcher.request_finished(answer(number))
    for number in range(streams):
        watcher.request_started(MODE, MODEL, f"p{number}", False)
        watcher.text_received(MODE, MODEL, "word ")
    return watcher


def answer(number: int) -> RequestResult:
    return RequestResult(
        MODE, MODEL, "h", "p", 0, False, datetime.now(UTC), ttft_s=0.05 + number % 7 / 100,
        response_text="an answer " * 30,
    )  # fmt: skip


def one_request(watcher: LiveObserver) -> Callable[[], None]:
    """The events of one request, as the runner sends them."""

    def events() -> None:
        watcher.request_started(MODE, MODEL, "p", False)
        for _ in range(TOKENS_PER_REQUEST):
            watcher.text_received(MODE, MODEL, "tok ")
        watcher.request_finished(answer(1))

    return events


def refresh(watcher: LiveObserver) -> Callable[[], object]:
    return lambda: watcher.display.segments(160, 40)


def best_time_s(action: Callable[[], object], repeat: int = 200, rounds: int = 7) -> float:
    """The fastest of `rounds` runs of `repeat` calls: the machine's noise mostly cancels."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            action()
        best = min(best, time.perf_counter() - started)
    return best


def test_an_event_does_the_same_work_at_10_and_1000_streams() -> None:
    for aggregate_above in (10**6, 0):  # one line per stream throughout, then aggregates
        few = calls(one_request(busy(10, aggregate_above=aggregate_above)))
        many = calls(one_request(busy(1000, aggregate_above=aggregate_above)))
        assert few == many, aggregate_above
    # With the threshold between them the many streams do less per event (no tail to feed).
    assert calls(one_request(busy(1000))) <= calls(one_request(busy(10)))


def test_a_refresh_does_the_same_work_at_any_number_of_streams_and_results() -> None:
    for aggregate_above in (10**6, 0):
        few = busy(10, finished=10, aggregate_above=aggregate_above)
        many = busy(1000, finished=10_000, aggregate_above=aggregate_above)
        refresh(few)(), refresh(many)()  # the first view starts the rate window
        assert calls(refresh(few)) == calls(refresh(many)), aggregate_above
    assert len(refresh(busy(5000, finished=20_000))()) < 60  # a few lines of segments


def test_event_and_refresh_times_do_not_grow_with_streams() -> None:
    few, many = busy(10), busy(1000)
    # An O(n) step would make 1,000 streams about 100 times slower; noise is far below 3x.
    assert best_time_s(one_request(many)) < 3 * best_time_s(one_request(few))
    assert best_time_s(refresh(many), repeat=50) < 3 * best_time_s(refresh(few), repeat=50)
