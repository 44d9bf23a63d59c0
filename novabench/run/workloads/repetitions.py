"""Repeating a prompt: a fixed count, or `repetitions: auto` until its median is known well enough.

Shared by the workloads that repeat each prompt (sequential, parallel); each stop is kept as a
repetition_stops row saying how many repetitions were made and why they stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from novabench.analysis.figures import derive
from novabench.analysis.statistics import ci_half_width_ratio
from novabench.config.suite import PromptSpec, Suite
from novabench.records import RepetitionStop, RequestResult
from novabench.run.targets import Target
from novabench.run.workloads.base import Workload, WorkloadContext


@dataclass(frozen=True)
class RepetitionRule:
    """When to stop repeating a prompt: at `fixed`, or (auto) once precise enough or at the cap."""

    fixed: int | None  # None: auto
    min_repetitions: int
    max_repetitions: int
    target_cv: float  # the relative half-width of the median's 95% CI auto aims for
    target_metric: str

    @classmethod
    def of(cls, suite: Suite) -> RepetitionRule:
        fixed = suite.repetitions if isinstance(suite.repetitions, int) else None
        return cls(
            fixed,
            suite.min_repetitions,
            suite.max_repetitions,
            suite.target_cv,
            suite.target_metric,
        )

    @property
    def cap(self) -> int:
        """The most repetitions of one prompt."""
        return self.fixed if self.fixed is not None else self.max_repetitions

    def describe(self) -> int | str:
        """The rule as the run's manifest keeps it: the count, or auto's bounds and target."""
        if self.fixed is not None:
            return self.fixed
        return (
            f"auto ({self.min_repetitions}..{self.max_repetitions}, target "
            f"±{self.target_cv:.1%} on {self.target_metric})"
        )

    def stop_reason(self, done: int, ratios: Sequence[float | None]) -> str | None:
        """Why repeating stops after `done` repetitions with these CI ratios; None to go on."""
        if self.fixed is not None:
            return "fixed" if done >= self.fixed else None
        if done >= self.min_repetitions and all(
            r is not None and r <= self.target_cv for r in ratios
        ):
            return "target_reached"
        return "max_repetitions" if done >= self.max_repetitions else None

    def precision(self, results: Sequence[RequestResult]) -> float | None:
        """The CI ratio of the target figure over one model's measured results of one prompt."""
        return ci_half_width_ratio(getattr(derive(r), self.target_metric) for r in results if r.ok)


async def repeat(
    ctx: WorkloadContext, group: Sequence[Target], prompt: PromptSpec, rule: RepetitionRule
) -> tuple[int, list[RepetitionStop]]:
    """Repeat one prompt on a group of models, all at once, until the rule says stop.

    Returns how many requests were sent and each model's repetition_stops row.
    """
    if not group:
        return 0, []
    sent: list[list[RequestResult]] = [[] for _ in group]
    done = 0
    while True:
        results = await asyncio.gather(*(ctx.send(t, prompt, done) for t in group))
        for mine, result in zip(sent, results, strict=True):
            mine.append(result)
        done += 1
        # A fixed count needs no precision to stop; its rows still say what was reached.
        ratios = [] if rule.fixed is not None else [rule.precision(s) for s in sent]
        reason = rule.stop_reason(done, ratios)
        if reason is not None:
            break
    if rule.fixed is not None:
        ratios = [rule.precision(s) for s in sent]
    stops = [
        RepetitionStop(
            mode=ctx.mode,
            model=target.spec.name,
            host=target.host,
            prompt_id=prompt.id,
            repetitions=done,
            reason=reason,
            ci_half_width_ratio=ratio,
        )
        for target, ratio in zip(group, ratios, strict=True)
    ]
    return done * len(group), stops


class Repeated(Workload):
    """A workload that repeats every prompt on every model by the suite's repetition rule."""

    def __init__(self, suite: Suite) -> None:
        super().__init__(suite)
        self.rule = RepetitionRule.of(suite)

    def planned(self) -> int:
        return len(self.prompts) * self.rule.cap

    def unavailable_rows(self) -> Iterator[tuple[PromptSpec, int]]:
        """A failed row for every repetition the model could have had."""
        return ((p, rep) for p in self.prompts for rep in range(self.rule.cap))
