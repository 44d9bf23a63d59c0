"""Retention in the store: which runs a rule picks, that planning changes nothing, and that
removing leaves no orphan row, never touches a running run and frees the space."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from novabench.analysis.history import rebuild
from novabench.analysis.pruning import prune_runs
from novabench.errors import PruneRuleError
from novabench.storage.prune import (
    RAW_TABLES,
    PruneRule,
    apply_prune,
    database_size,
    plan_prune,
    tables_keyed_by_run,
)
from novabench.storage.store import Store
from tests.pruning import (
    NOW,
    RUN_TABLES,
    bulk_results,
    file_digest,
    full_run,
    orphans,
    row_counts,
)


def _history(tmp_path: Path) -> Store:
    """Suite 'mini': runs 100, 50, 10, 2 and 1 days old; suite 'other': 100 and 1 days old."""
    store = Store(tmp_path / "db.duckdb")
    for days in (100, 50, 10, 2, 1):
        full_run(store, f"mini-{days:03d}", days)
    full_run(store, "other-100", 100, suite="other")
    full_run(store, "other-001", 1, suite="other")
    return store


def _planned(store: Store, **rule: object) -> list[str]:
    return [run.run_id for run in plan_prune(store, PruneRule(**rule), now=NOW).runs]  # type: ignore[arg-type]


def test_the_schema_has_no_table_keyed_by_run_the_tests_do_not_know(tmp_path: Path) -> None:
    store = _history(tmp_path)
    with store.connect() as con:
        assert set(tables_keyed_by_run(con)) == RUN_TABLES
        assert tables_keyed_by_run(con)[-1] == "runs"
    assert set(RAW_TABLES) < RUN_TABLES


def test_older_than_and_keep_last_pick_runs_oldest_first(tmp_path: Path) -> None:
    store = _history(tmp_path)
    assert _planned(store, older_than=timedelta(days=30)) == ["mini-100", "other-100", "mini-050"]
    # per suite: mini keeps its 2 newest, other both of its 2
    assert _planned(store, keep_last=2) == ["mini-100", "mini-050", "mini-010"]
    assert _planned(store, keep_last=0, suite="other") == ["other-100", "other-001"]


def test_with_both_rules_a_run_goes_only_if_both_say_so(tmp_path: Path) -> None:
    store = _history(tmp_path)
    # older than 5 days: mini-100, mini-050, mini-010, other-100; beyond mini's newest 4 and
    # other's newest 1: mini-100, other-100
    assert _planned(store, older_than=timedelta(days=5), keep_last=4) == ["mini-100"]
    assert _planned(store, older_than=timedelta(days=5), keep_last=1) == [
        "mini-100",
        "other-100",
        "mini-050",
        "mini-010",
    ]
    assert _planned(store, older_than=timedelta(days=200), keep_last=0) == []


def test_a_rule_needs_an_age_or_a_count() -> None:
    with pytest.raises(PruneRuleError, match="give --older-than AGE, --keep-last N or both"):
        PruneRule(suite="mini")
    with pytest.raises(ValueError, match="keep_last=-1"):
        PruneRule(keep_last=-1)


def test_planning_changes_nothing(tmp_path: Path) -> None:
    store = _history(tmp_path)
    counts, digest = row_counts(store), file_digest(store.path)
    plan = plan_prune(store, PruneRule(keep_last=0), now=NOW)
    assert len(plan.runs) == 7 and plan.requests == 28
    assert row_counts(store) == counts
    assert file_digest(store.path) == digest


def test_removing_leaves_no_row_of_the_removed_runs_in_any_table(tmp_path: Path) -> None:
    store = _history(tmp_path)
    before = row_counts(store)
    plan = plan_prune(store, PruneRule(older_than=timedelta(days=30)), now=NOW)
    outcome = apply_prune(store, plan)
    removed = {"mini-100", "other-100", "mini-050"}
    assert set(outcome.run_ids) == removed
    after = row_counts(store)
    assert set(after) == RUN_TABLES
    for table, per_run in before.items():
        assert set(per_run) == set(after[table]) | removed, table  # every table had a row
        assert after[table] == {k: v for k, v in per_run.items() if k not in removed}, table
        assert outcome.rows_deleted[table] == sum(per_run[run_id] for run_id in removed)
    assert orphans(store) == dict.fromkeys(RUN_TABLES, 0)
    # applying the same plan again removes nothing more
    again = apply_prune(store, plan)
    assert again.run_ids == () and set(again.rows_deleted.values()) == {0}


def test_a_running_run_is_never_removed_nor_counted_among_the_newest(tmp_path: Path) -> None:
    store = _history(tmp_path)
    full_run(store, "mini-200-running", 200, status="running")
    plan = plan_prune(store, PruneRule(older_than=timedelta(days=30), keep_last=0), now=NOW)
    assert [run.run_id for run in plan.in_progress] == ["mini-200-running"]
    assert "mini-200-running" not in {run.run_id for run in plan.runs}
    # keep-last counts finished runs: the running one is kept besides the newest two
    assert _planned(store, keep_last=2, suite="mini") == ["mini-100", "mini-050", "mini-010"]
    # a plan made before the run was (wrongly) listed still cannot remove it
    listed = plan_prune(store, PruneRule(keep_last=0), now=NOW)
    forced = type(listed)(listed.rule, listed.now, listed.in_progress, (), 1)
    assert apply_prune(store, forced).run_ids == ()
    assert store.get_run("mini-200-running").status == "running"
    assert row_counts(store)["results"]["mini-200-running"] == 4


def test_keep_summaries_removes_only_the_raw_rows_and_marks_the_run(tmp_path: Path) -> None:
    store = _history(tmp_path)
    before = row_counts(store)
    rule = PruneRule(older_than=timedelta(days=30), keep_summaries=True)
    outcome = apply_prune(store, plan_prune(store, rule, now=NOW))
    removed = {"mini-100", "other-100", "mini-050"}
    assert set(outcome.run_ids) == removed and outcome.keep_summaries
    assert set(outcome.rows_deleted) == set(RAW_TABLES)
    after = row_counts(store)
    for table in RUN_TABLES:
        expected = before[table]
        if table in RAW_TABLES:
            expected = {k: v for k, v in expected.items() if k not in removed}
        assert after[table] == expected, table
    assert store.get_run("mini-100").pruned_at is not None
    assert store.get_run("mini-001").pruned_at is None
    listed = {run.run_id: run for run in store.list_runs()}
    # counted from its summaries now that its results are gone
    assert listed["mini-100"].pruned_at is not None and listed["mini-100"].requests == 4
    # already reduced: not listed again with --keep-summaries, removed whole without it
    assert _planned(store, older_than=timedelta(days=30), keep_summaries=True) == []
    assert set(_planned(store, older_than=timedelta(days=30))) == removed


def test_keep_summaries_makes_missing_summaries_before_the_rows_go(tmp_path: Path) -> None:
    store = _history(tmp_path)
    with store.connect() as con:  # as for a run of an older novabench, not yet summarized
        for table in ("run_summaries", "run_changes", "level_summaries", "summary_state"):
            con.execute(f"DELETE FROM {table} WHERE run_id = 'mini-100'")
    rule = PruneRule(older_than=timedelta(days=30), keep_summaries=True)
    prune_runs(store, plan_prune(store, rule, now=NOW))
    (summary,) = store.run_summaries(["mini-100"])
    assert (summary.n, summary.errors) == (4, 0)
    assert summary.ttft_ms_p50 == pytest.approx(100.0)
    assert not store.runs_to_summarize()
    # and a rebuild from the raw rows leaves what was made of the pruned runs' alone
    before = row_counts(store)
    rebuild(store)
    after = row_counts(store)
    assert after["run_summaries"]["mini-100"] == before["run_summaries"]["mini-100"]
    (again,) = store.run_summaries(["mini-100"])
    assert again == summary


def _rows_of(store: Store, run_ids: set[str]) -> list[tuple[object, ...]]:
    with store.connect() as con:
        return con.execute(
            "SELECT * FROM results WHERE list_contains(?, run_id) ORDER BY run_id, seq",
            [sorted(run_ids)],
        ).fetchall()


@pytest.mark.parametrize(
    ("rule", "removed", "used_after"),
    [
        (PruneRule(keep_last=3), range(18), 0.5),  # the oldest 18 of 24 (2 suites)
        (PruneRule(keep_last=0, suite="s0"), range(0, 24, 2), 0.75),  # every other run
    ],
    ids=["oldest-runs", "runs-interleaved"],
)
def test_removing_frees_the_blocks_the_rows_held(
    tmp_path: Path, rule: PruneRule, removed: range, used_after: float
) -> None:
    # DuckDB frees a block only once no row of its row group is left: the row groups left at most
    # half full are rewritten, the checkpoint frees the rest, and the next writes reuse them
    store = Store(tmp_path / "db.duckdb")
    for n in range(24):
        full_run(store, f"run-{n:02d}", 100 - n, suite=f"s{n % 2}", requests=1)
    bulk_results(store, per_run=10_000)
    gone = {f"run-{n:02d}" for n in removed}
    kept = {f"run-{n:02d}" for n in range(24)} - gone
    rows_kept = _rows_of(store, kept)
    before = database_size(store)
    outcome = apply_prune(store, plan_prune(store, rule, now=NOW))
    assert set(outcome.run_ids) == gone
    assert outcome.rows_deleted["results"] == len(gone) * 10_001
    assert _rows_of(store, kept) == rows_kept  # every kept row as it was, moved or not
    assert orphans(store) == dict.fromkeys(RUN_TABLES, 0)
    assert outcome.before == before
    assert outcome.after.used_bytes < before.used_bytes * used_after
    assert outcome.after == database_size(store)
    assert not store.path.with_name(store.path.name + ".wal").exists()  # checkpointed
    for n in range(len(gone)):  # as many new runs as were removed
        full_run(store, f"new-{n:02d}", 1 - n / 100, requests=1)
    bulk_results(store, per_run=10_000, run_prefix="new-")
    refilled = database_size(store)
    assert refilled.file_bytes <= max(before.file_bytes, outcome.after.file_bytes) * 1.25
