"""The workload interface: what a workload tells the runner, and what the runner lends it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, TypedDict, Unpack

from novabench.config.suite import PromptSpec, Suite
from novabench.records import LevelSummary, RepetitionStop, RequestResult
from novabench.run.targets import Target


class RequestTags(TypedDict, total=False):
    """What a workload adds to the rows it sends: each a RequestResult field, a stored column."""

    load_level: int  # index of the load sweep's level (load_levels.level_index)


class Send(Protocol):
    """Time, check and submit one measured request; its result once it is stored."""

    def __call__(
        self, target: Target, prompt: PromptSpec, repetition: int, **tags: Unpack[RequestTags]
    ) -> Awaitable[RequestResult]: ...


class WorkloadObserver(Protocol):
    """The progress events a workload raises itself (the runner raises the others)."""

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None: ...


@dataclass(frozen=True)
class WorkloadContext:
    """What the runner lends a workload for its measured requests."""

    mode: str
    targets: Sequence[Target]  # the models that can be sent to, in suite order
    send: Send
    record: Callable[..., None]  # (kind, **fields): stores one of its own records, in order
    observer: WorkloadObserver
    now_offset_s: Callable[[], float]  # seconds since the run started (perf_counter clock)


@dataclass
class WorkloadOutcome:
    """What a workload did: the phase row's request count, and records for the run's end."""

    requests: int  # measured requests sent
    # Stored once every workload has run (a stopped run keeps none).
    repetition_stops: list[RepetitionStop] = field(default_factory=list)


class Workload(ABC):
    """One mode's measured requests, built from the suite.

    The runner does everything around them the same way for every workload: the plan, the
    failed rows of unavailable models, cold starts, warm-up and the phase row.
    """

    mode: ClassVar[str]  # the name rows, phases and the plan carry

    def __init__(self, suite: Suite) -> None:
        self.suite = suite

    @property
    def prompts(self) -> Sequence[PromptSpec]:
        """The prompts the workload draws from."""
        return self.suite.prompts

    @property
    def warmup_prompt(self) -> PromptSpec:
        """The prompt of warm-up and cold-start requests."""
        return self.suite.prompts[0]

    @abstractmethod
    def planned(self) -> int | None:
        """Measured requests per model (at most); None when a duration bounds them."""

    def unavailable_rows(self) -> Iterator[tuple[PromptSpec, int]]:
        """(prompt, repetition) of each failed row a model that cannot be sent to gets."""
        return ((prompt, 0) for prompt in self.prompts)

    def max_in_flight(self) -> int:
        """The most requests the workload has in flight at once on one host."""
        return 1

    @abstractmethod
    async def run(self, ctx: WorkloadContext) -> WorkloadOutcome:
        """Send the measured requests to ctx.targets through ctx.send."""
