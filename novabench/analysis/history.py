"""What the history keeps of each run so that it never reads every request again: the summaries
(made in SQL by the store), the significant changes against the previous comparable run, and
the levels of its load sweeps (both made here, where the statistics live).

They are made when a run ends (`bring_up_to_date`, from run/session.py), and for any run
without them (runs of an older novabench, runs written by other means) the next time the
history is written; `rebuild` makes all of them again from the raw results.
"""

from __future__ import annotations

from dataclasses import dataclass

from novabench.analysis import aggregates
from novabench.analysis.compare import changes_since_previous
from novabench.storage.prune import unpruned_run_ids
from novabench.storage.store import Store


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
    summarized, levels = aggregates.make_missing(store)
    changes = [run_id for run_id, _ in store.runs_without("changes")]
    for start in range(0, len(changes), aggregates.RUNS_WRITTEN_AT_ONCE):
        chunk = changes[start : start + aggregates.RUNS_WRITTEN_AT_ONCE]
        store.write_changes(changes_since_previous(store, chunk))
    return Made(summarized, len(changes), levels)


def rebuild(store: Store) -> Made:
    """Make every run's summaries, changes and load levels again from the raw results (a run
    whose raw rows were pruned keeps what was made of them while it had them)."""
    with store.holding():
        summarized = store.summarize(unpruned_run_ids(store))
        made = _bring_up_to_date(store)
    return Made(summarized, made.changes, made.levels)
