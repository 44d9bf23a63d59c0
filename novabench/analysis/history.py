"""What the history keeps of each run so that it never reads every request again: the summaries
(made in SQL by the store), the significant changes against the previous comparable run, and
the levels of its load sweeps (both made here, where the statistics live).

They are made when a run ends (`bring_up_to_date`, from run/session.py), and for any run
without them (runs of an older novabench, runs written by other means) the next time the
history is written; `rebuild` makes all of them again from the raw results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from novabench.analysis.compare import changes_since_previous
from novabench.analysis.sweeps import load_sweeps
from novabench.records import LOAD_MODE, LevelSummary
from novabench.storage.prune import unpruned_run_ids
from novabench.storage.store import Store

# Runs whose changes or levels are written in one transaction.
_RUNS_WRITTEN_AT_ONCE = 256


@dataclass(frozen=True)
class Made:
    """How many runs got each aggregate made (again)."""

    summaries: int
    changes: int
    levels: int


def bring_up_to_date(store: Store) -> Made:
    """Make whatever is missing or stale: the summaries of runs without them (or made while the
    run was at another status; a run in progress always), then their changes and load levels.

    Idempotent; when only the run that just ended lacks them, its cost is that run's own.
    """
    with store.holding():
        return _bring_up_to_date(store)


def _bring_up_to_date(store: Store) -> Made:
    stale = store.runs_to_summarize()
    if stale:
        store.summarize(stale)
    changes = [run_id for run_id, _ in store.runs_without("changes")]
    for start in range(0, len(changes), _RUNS_WRITTEN_AT_ONCE):
        chunk = changes[start : start + _RUNS_WRITTEN_AT_ONCE]
        store.write_changes(changes_since_previous(store, chunk))
    levels = store.runs_without("levels")
    for start in range(0, len(levels), _RUNS_WRITTEN_AT_ONCE):
        store.write_level_summaries(_levels(store, levels[start : start + _RUNS_WRITTEN_AT_ONCE]))
    return Made(len(stale), len(changes), len(levels))


def rebuild(store: Store) -> Made:
    """Make every run's summaries, changes and load levels again from the raw results (a run
    whose raw rows were pruned keeps what was made of them while it had them)."""
    with store.holding():
        summarized = store.summarize(unpruned_run_ids(store))
        made = _bring_up_to_date(store)
    return Made(summarized, made.changes, made.levels)


def _levels(store: Store, runs: Sequence[tuple[str, list[str]]]) -> dict[str, list[LevelSummary]]:
    """The level summaries of each run's sweeps (none for a run that did not sweep)."""
    return {
        run_id: [level for levels in load_sweeps(store, run_id).values() for level in levels]
        if LOAD_MODE in modes
        else []
        for run_id, modes in runs
    }
