"""Sequential mode: one request at a time, model after model, each prompt repeated in turn."""

from __future__ import annotations

from novabench.run.workloads.base import WorkloadContext, WorkloadOutcome
from novabench.run.workloads.repetitions import Repeated, repeat


class Sequential(Repeated):
    """Every prompt of one model, repeated, before the next model: nothing else is in flight."""

    mode = "sequential"

    async def run(self, ctx: WorkloadContext) -> WorkloadOutcome:
        outcome = WorkloadOutcome(requests=0)
        for target in ctx.targets:
            for prompt in self.prompts:
                sent, stops = await repeat(ctx, [target], prompt, self.rule)
                outcome.requests += sent
                outcome.repetition_stops += stops
        return outcome
