"""Parallel mode: every model at once, one request each, prompt after prompt."""

from __future__ import annotations

from novabench.run.workloads.base import WorkloadContext, WorkloadOutcome
from novabench.run.workloads.repetitions import Repeated, repeat


class Parallel(Repeated):
    """Each repetition of a prompt goes to all models together; the next waits for all of them."""

    mode = "parallel"

    def max_in_flight(self) -> int:
        return len(self.suite.models)

    async def run(self, ctx: WorkloadContext) -> WorkloadOutcome:
        outcome = WorkloadOutcome(requests=0)
        for prompt in self.prompts:
            sent, stops = await repeat(ctx, ctx.targets, prompt, self.rule)
            outcome.requests += sent
            outcome.repetition_stops += stops
        return outcome
