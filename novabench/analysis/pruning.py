"""Pruning runs whose summaries are to be kept: what the history keeps of a run is made from its
raw rows, so it is made (if missing) before they go."""

from __future__ import annotations

from novabench.analysis.history import bring_up_to_date
from novabench.storage.prune import PruneOutcome, PrunePlan, PruneRule, apply_prune, plan_prune
from novabench.storage.store import Store

__all__ = ["PruneRule", "plan_prune", "prune_runs"]  # what `novabench prune` calls, in one place


def prune_runs(store: Store, plan: PrunePlan) -> PruneOutcome:
    """Apply `plan`; with keep_summaries, first make every run's missing summaries, changes and
    load levels from the raw rows about to be deleted (nothing when they are up to date)."""
    if plan.rule.keep_summaries and plan.runs:
        bring_up_to_date(store)
    return apply_prune(store, plan)
