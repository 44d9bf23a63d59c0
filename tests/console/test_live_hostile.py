"""Hostile model names, answers and errors stay neutralised when the live display shows
aggregates: through the board directly, and through a real 40-stream load run against the
Ollama double (counted in the robustness figures)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from novabench import Store, load_suite, run_suite
from novabench.console.live import LiveObserver
from novabench.records import RequestResult
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble
from tests.robustness.conftest import FIGURES

# Rich markup first (it must show as typed), then a window title, a screen clear, a C1 CSI,
# a bidi override, a line separator, a bell and a cursor move.
HOSTILE = "[bold]b[/bold]\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\u2028x\x1b[H"
RAW = ("\x1b]", "\x1b[2J", "\x1b[H", "\x07", "\x9b", "\u202e", "\u2028")
STREAMS = 40  # above the display's threshold of 32


def rendered(watcher: LiveObserver) -> str:
    """The display with its own styling (CSI ... m), as a terminal would receive it."""
    console = Console(file=io.StringIO(), width=400, height=60, force_terminal=True)
    console.print(watcher.display)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def assert_neutralised(text: str) -> None:
    for raw in RAW:
        assert raw not in text, (raw, text)


def test_names_answers_and_errors_in_aggregates_are_neutralised() -> None:
    FIGURES.hostile_inputs += 2
    printed = io.StringIO()
    watcher = LiveObserver(Console(file=printed, width=400, force_terminal=True))
    watcher.run_started("r1", {(HOSTILE, HOSTILE): 100})
    for number in range(STREAMS):
        watcher.request_started(HOSTILE, HOSTILE, HOSTILE, False)
        watcher.text_received(HOSTILE, HOSTILE, HOSTILE)
        if number == 0:  # one line per stream, as below the threshold
            assert_neutralised(rendered(watcher))
    for error in (None, HOSTILE):
        watcher.request_finished(
            RequestResult(
                HOSTILE,
                HOSTILE,
                HOSTILE,
                HOSTILE,
                0,
                False,
                datetime.now(UTC),
                ttft_s=0.1,
                response_text=HOSTILE * 3,
                error=error,
            )  # fmt: skip
        )
    assert watcher.board.aggregate
    shown = rendered(watcher)
    assert_neutralised(shown)
    assert_neutralised(printed.getvalue())  # the failed request's line
    assert "[bold]b[/bold]" in shown  # shown as typed, not read as markup
    assert "latest: " in shown and "latest error: " in shown and "1 failed" in shown


class Snapshots(LiveObserver):
    """The live display, also rendering itself whenever a request ends while in aggregates."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.aggregate_views: list[str] = []

    def request_finished(self, result: RequestResult) -> None:
        super().request_finished(result)
        if self.board.aggregate:
            self.aggregate_views.append(rendered(self))


def test_a_load_run_above_the_threshold_shows_neutralised_aggregates(tmp_path: Path) -> None:
    FIGURES.hostile_inputs += 1
    model = FakeModel(HOSTILE, reply=f"{HOSTILE} done", token_interval_s=0.005)
    with OllamaDouble(models=[model], num_parallel=STREAMS) as double:
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models=f"[{json.dumps(HOSTILE)}]",
            modes="[load]",
            warmup=0,
            load=f"{{concurrency: [{STREAMS}], requests_per_level: {2 * STREAMS}}}",
        )
        terminal = io.StringIO()
        store = Store(tmp_path / "db.duckdb")
        with Snapshots(Console(file=terminal, width=200, force_terminal=True)) as watcher:
            outcome = run_suite(load_suite(suite), store, observer=watcher)
    rows = store.results(outcome.run_id)
    FIGURES.rows_expected += 2 * STREAMS
    FIGURES.rows_found += len(rows)
    assert len(rows) == 2 * STREAMS and not outcome.failed
    assert rows[0]["response_text"] == f"{HOSTILE} done"  # stored as received
    assert watcher.aggregate_views, "the display never switched to aggregates"
    first = watcher.aggregate_views[0]
    assert "streams in flight, totals per mode and model" in first
    assert f"{STREAMS - 1} in flight" in first and "TTFT p50" in first
    last = watcher.aggregate_views[-1]
    assert "latest: " in last and " done" in last
    for view in watcher.aggregate_views:
        assert_neutralised(view)
    assert_neutralised(terminal.getvalue())  # everything the live display wrote
    assert watcher.board.in_flight == 0 and not watcher.board.aggregate
