"""Workloads: what a run measures, one kind per module behind one interface (base.py).

A workload is built from the suite for one mode. It tells the runner its plan (measured
requests per model, or None when a duration bounds them), the prompts it draws from, the
failed rows a model that cannot be sent to gets, and how many requests it has in flight at
once. `run(ctx)` sends its measured requests through `ctx.send(target, prompt, repetition,
**tags)`, which times, checks and submits each one, stores its own records through
`ctx.record` (load levels) or hands them back for the run's end (repetition stops), raises its
own progress events on `ctx.observer` and reads `ctx.now_offset_s`. Everything around the
measured requests - preflight, the run row, the plan, failed rows for unavailable models, cold
starts, warm-up and the phase row - the runner does the same way for every workload.

Today: `sequential.py` and `parallel.py` (each prompt repeated, a fixed count or `repetitions:
auto`, `repetitions.py`) and `sweep.py` (load: closed loop or open loop, level by level until
saturation). What comes next fits the same shape, as a new module registered in WORKLOADS, a
mode name in config/suite.py, and its rows:
- prompt length sweeps: a workload whose `prompts` are built from the suite at growing lengths,
  repeated with `repeat()`, each row tagged with its length (a RequestTags field and a column);
- option grids: the same prompts under several option sets; `send` grows an options override
  merged over the model's, and each row is tagged with its option set;
- datasets: `prompts` read from a file; the plan, failed rows and warm-up follow from them;
- energy: per-workload resource windows; the phase row brackets each workload, and a workload
  records finer windows the way the sweep records its levels (started_offset_s, wall_s on the
  run's clock), inside which analysis sums the power samples.
"""

from __future__ import annotations

from novabench.config.suite import Suite
from novabench.run.workloads.base import (
    RequestTags,
    Send,
    Workload,
    WorkloadContext,
    WorkloadObserver,
    WorkloadOutcome,
)
from novabench.run.workloads.parallel import Parallel
from novabench.run.workloads.sequential import Sequential
from novabench.run.workloads.sweep import LoadSweep

WORKLOADS: dict[str, type[Workload]] = {
    kind.mode: kind for kind in (Sequential, Parallel, LoadSweep)
}


def workloads_of(suite: Suite) -> list[Workload]:
    """One workload per mode of the suite, in the suite's order."""
    return [WORKLOADS[mode](suite) for mode in suite.modes]


__all__ = [
    "WORKLOADS",
    "LoadSweep",
    "Parallel",
    "RequestTags",
    "Send",
    "Sequential",
    "Workload",
    "WorkloadContext",
    "WorkloadObserver",
    "WorkloadOutcome",
    "workloads_of",
]
