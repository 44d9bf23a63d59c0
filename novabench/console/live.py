"""The live display in a terminal: a progress bar per mode and model, and the tokens as they
stream in (model output shown as text, never obeyed)."""

from __future__ import annotations

from collections import deque

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from novabench.console.log import describe_level, describe_result
from novabench.records import LevelSummary, RequestResult
from novabench.text import one_line, terminal_safe

TAIL_CHARS = 400


class _StreamTails:
    """The latest streamed text of each (mode, model), rendered as a table on every refresh."""

    def __init__(self) -> None:
        self.tails: dict[tuple[str, str], deque[str]] = {}
        self.current: dict[tuple[str, str], str] = {}

    def start(self, mode: str, model: str, label: str) -> None:
        self.tails[(mode, model)] = deque(maxlen=200)
        self.current[(mode, model)] = label

    def finish(self, mode: str) -> None:
        """Stop showing a finished mode's streams."""
        for key in [k for k in self.tails if k[0] == mode]:
            del self.tails[key]

    def add(self, mode: str, model: str, piece: str) -> None:
        # Called for every streamed token: no throwaway deque for setdefault's default.
        tail = self.tails.get((mode, model))
        if tail is None:
            tail = self.tails[(mode, model)] = deque(maxlen=200)
        tail.append(piece)

    def __rich__(self) -> Table:
        table = Table(show_header=False, box=None, expand=True, pad_edge=False)
        table.add_column(style="bold cyan", no_wrap=True, ratio=1)
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=4)
        for (mode, model), pieces in self.tails.items():
            label = terminal_safe(f"{model} · {self.current.get((mode, model), '')}")
            # Text(), not markup: model output must not be parsed as rich markup either.
            table.add_row(Text(label), Text(one_line("".join(pieces), TAIL_CHARS)))
        return table


class LiveObserver:
    """Per-model progress bars and the tokens as they stream in."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.tails = _StreamTails()
        self.tasks: dict[tuple[str, str], TaskID] = {}
        self.live = Live(
            Group(self.progress, self.tails), console=self.console, refresh_per_second=8
        )

    def __enter__(self) -> LiveObserver:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        self.console.print(Text(f"run {run_id}"), style="bold")
        for (mode, model), total in plan.items():
            label = Text(f"{mode:<10} {terminal_safe(model)}")
            self.tasks[(mode, model)] = self.progress.add_task(str(label), total=total)

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        self.tails.start(mode, model, prompt_id + (" (warm-up)" if is_warmup else ""))

    def text_received(self, mode: str, model: str, piece: str) -> None:
        self.tails.add(mode, model, piece)

    def request_finished(self, result: RequestResult) -> None:
        task = self.tasks.get((result.mode, result.model))
        if task is not None:
            self.progress.advance(task)
        if result.error is not None:
            self.console.print(Text(describe_result(result)), style="red")

    def phase_finished(self, mode: str, wall_s: float) -> None:
        self.tails.finish(mode)
        self.console.print(Text(f"{mode} phase done in {wall_s:.2f} s"))

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None:
        self.console.print(Text(describe_level(model, host, summary)))

    def server_warning(self, message: str) -> None:
        self.console.print(Text(f"warning: {terminal_safe(message)}"), style="yellow")
