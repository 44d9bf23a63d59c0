"""The per-run aggregates a baseline is chosen from and the history reads (summaries and load
levels), made for any run that lacks them. Idempotent: when no run lacks them, a few small reads.
"""

from __future__ import annotations

from collections.abc import Sequence

from novabench.analysis.sweeps import load_sweeps
from novabench.records import LOAD_MODE, LevelSummary
from novabench.storage.store import Store

# Runs whose load levels are written in one transaction.
RUNS_WRITTEN_AT_ONCE = 256


def make_missing(store: Store) -> tuple[int, int]:
    """Summarize the runs whose summaries are missing or stale, then make the load levels of the
    summarized runs without them; how many runs got each."""
    stale = store.runs_to_summarize()
    if stale:
        store.summarize(stale)
    levels = store.runs_without("levels")
    for start in range(0, len(levels), RUNS_WRITTEN_AT_ONCE):
        store.write_level_summaries(_levels(store, levels[start : start + RUNS_WRITTEN_AT_ONCE]))
    return len(stale), len(levels)


def _levels(store: Store, runs: Sequence[tuple[str, list[str]]]) -> dict[str, list[LevelSummary]]:
    """The level summaries of each run's sweeps (none for a run that did not sweep)."""
    return {
        run_id: [level for levels in load_sweeps(store, run_id).values() for level in levels]
        if LOAD_MODE in modes
        else []
        for run_id, modes in runs
    }
