"""run_changes and level_summaries: what analysis stores of each run when it ends equals what it
found before from every stored row (compare.history_changes, sweeps.load_sweeps)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from novabench.analysis.compare import (
    REGRESSION,
    changes_since_previous,
    history_changes,
    stored_changes,
)
from novabench.analysis.history import bring_up_to_date, rebuild
from novabench.analysis.sweeps import load_sweeps
from novabench.storage.store import Store
from tests.storage.summary_checks import HOSTS, T0, make_run, request, streamed

FAST = [100.0 + i for i in range(8)]
SLOW = [200.0 + i for i in range(8)]


def add_measured(
    store: Store,
    run_id: str,
    minute: int,
    ttft_ms: dict[tuple[str, str, str, str], list[float]],
    status: str | None = "complete",
    suite: str = "mini",
    digest: str = "d" * 64,
    version: str = "0.12.6",
) -> str:
    """A run measuring each (mode, model, host, prompt) group once per TTFT value given, with a
    warm-up, a cold start and a failure that must never count."""
    models = sorted({(model, host) for _, model, host, _ in ttft_ms})
    make_run(
        store,
        run_id,
        minute,
        suite=suite,
        models=tuple((model, host, digest) for model, host in models),
        modes=tuple(sorted({mode for mode, *_ in ttft_ms})),
        status=None,
        version=version,
    )
    rows = []
    for (mode, model, host, prompt_id), values in ttft_ms.items():
        where = {"mode": mode, "model": model, "host": host, "prompt_id": prompt_id}
        for value in values:
            rows.append(streamed(value / 1000, 0.02 + value / 1e6, 20, **where))
        rows += [
            request(is_warmup=True, ttft_s=9.0, e2e_s=9.5, token_offsets_s=[9.0, 9.5], **where),
            request(is_cold=True, ttft_s=9.0, e2e_s=9.5, token_offsets_s=[9.0, 9.5], **where),
            request(error="HTTP 500: boom", **where),
        ]
    store.add_results(run_id, list(enumerate(rows)))
    if status is not None:
        store.finish_run(run_id, status)
    return run_id


ONE = ("sequential", "m", HOSTS[0], "p1")


def test_stored_changes_equal_history_changes_on_compares_own_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    add_measured(store, "R1", 0, {ONE: FAST})
    add_measured(store, "R2", 1, {ONE: SLOW})  # regression against R1
    add_measured(store, "R3", 2, {ONE: FAST}, status="aborted")  # against R2; never a baseline
    add_measured(store, "R4", 3, {ONE: [v + 0.5 for v in SLOW]})  # against R2: noise
    add_measured(store, "R5", 4, {ONE: FAST}, digest="e" * 64)  # new digest: nothing before
    add_measured(store, "R6", 5, {ONE: FAST}, suite="other")  # another suite: likewise
    add_measured(store, "R7", 6, {ONE: SLOW}, digest="e" * 64, status=None)  # running, vs R5
    assert store.runs_without("changes") == []  # nothing was made: no state rows yet
    bring_up_to_date(store)
    stored = stored_changes(store)
    assert stored == history_changes(store)
    assert sorted(stored) == ["R2", "R3", "R7"]
    assert {f.verdict for f in stored["R2"]} == {REGRESSION}
    assert [f.metric for f in stored["R2"]] == [
        "ttft_ms",
        "e2e_ms",
        "itl_ms",
        "client_tokens_per_s",
    ]
    assert stored["R2"][0].baseline_run_ids == ("R1",)
    assert stored["R7"][0].baseline_run_ids == ("R5",)


def _random_history(store: Store, seed: int, runs: int, incremental: bool) -> None:
    """Runs of two suites on two hosts, two modes and prompts, whose speed jumps now and then,
    some of them aborted, interrupted or still running, some after a digest or Ollama change."""
    rng = random.Random(seed)
    groups = [
        (mode, model, host, prompt)
        for mode in ("sequential", "parallel")
        for model, host in (("m", HOSTS[0]), ("m2", HOSTS[1]))
        for prompt in ("p1", "p2")
    ]
    for number in range(runs):
        level = rng.choice((100.0, 100.0, 150.0))
        measured = {
            g: [level * (1 + 0.02 * rng.random()) for _ in range(rng.choice((2, 5, 8)))]
            for g in rng.sample(groups, rng.randrange(1, len(groups) + 1))
        }
        add_measured(
            store,
            f"R{number:03d}",
            number,
            measured,
            status=rng.choice(("complete",) * 6 + ("aborted", "interrupted", None)),
            suite=rng.choice(("mini", "other")),
            digest=rng.choice(("d" * 64,) * 5 + ("e" * 64,)),
            version=rng.choice(("0.12.6",) * 5 + ("0.13.0",)),
        )
        if incremental:
            bring_up_to_date(store)  # as a run's end does


def test_stored_changes_equal_history_changes_on_a_random_history(tmp_path: Path) -> None:
    made_as_runs_end = Store(tmp_path / "incremental.duckdb")
    _random_history(made_as_runs_end, seed=7, runs=40, incremental=True)
    made_at_once = Store(tmp_path / "once.duckdb")
    _random_history(made_at_once, seed=7, runs=40, incremental=False)
    bring_up_to_date(made_at_once)
    expected = history_changes(made_at_once)
    assert sum(len(f) for f in expected.values()) > 20  # the history has changes to find
    assert stored_changes(made_at_once) == expected
    # made as each run ended (a running run's again at every run) or all at once: the same
    # findings, since a run's baseline is a run that had ended already
    assert stored_changes(made_as_runs_end) == expected
    assert changes_since_previous(made_at_once, ["R039"]) == {"R039": expected.get("R039", [])}


def test_level_summaries_equal_the_sweeps_of_each_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    make_run(store, "L1", 0, modes=("load",), models=(("m", HOSTS[0], "d" * 64),))
    rows = []
    for level in range(3):
        store.add_load_level(
            "L1",
            {
                "model": "m",
                "host": HOSTS[0],
                "level_index": level,
                "kind": "concurrency",
                "level": float(2**level),
                "started_at": T0 + timedelta(seconds=10 * level),
                "started_offset_s": 10.0 * level,
                "wall_s": 8.0,
                "requests": 4,
                "delayed_arrivals": 0,
                "stop_reason": None,
            },
        )
        rows += [
            streamed(0.1 * (level + 1), 0.02, 30, mode="load", load_level=level) for _ in range(4)
        ]
    # a fourth level the run was killed during: no record, rebuilt from its requests
    rows += [streamed(0.9, 0.02, 30, mode="load", load_level=3) for _ in range(2)]
    store.add_results("L1", list(enumerate(rows)))
    with store.connect() as con:
        con.execute(
            """UPDATE runs SET facts = '{"load": {"kind": "concurrency", "levels": [1, 2, 4, 8]}}'
               WHERE run_id = 'L1'"""
        )
    add_measured(store, "S1", 1, {ONE: FAST})
    bring_up_to_date(store)
    stored = store.level_summaries()
    assert list(stored) == ["L1"]
    assert stored["L1"] == [lv for levels in load_sweeps(store, "L1").values() for lv in levels]
    assert [lv.stop_reason for lv in stored["L1"]] == [None, None, None, "aborted"]


def test_rebuild_makes_the_same_tables_from_the_raw_rows(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    _random_history(store, seed=3, runs=15, incremental=True)
    test_tables = ("run_summaries", "run_changes", "level_summaries")
    before = _tables(store, test_tables)
    with store.connect() as con:  # damage what was made: rebuild must not trust it
        con.execute("UPDATE run_summaries SET ttft_ms_p50 = -1")
        con.execute("DELETE FROM run_changes WHERE position = 0")
        con.execute("DELETE FROM summary_state WHERE run_id = 'R003'")
    made = rebuild(store)
    assert (made.summaries, made.changes, made.levels) == (15, 15, 15)
    assert _tables(store, test_tables) == before


def _tables(store: Store, names: tuple[str, ...]) -> dict[str, list[tuple[object, ...]]]:
    with store.connect() as con:
        return {
            name: sorted(con.execute(f"SELECT * FROM {name}").fetchall(), key=repr)
            for name in names
        }
