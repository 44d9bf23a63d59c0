"""run_summaries: per-run aggregates made in SQL equal the figures analysis derives from the raw
rows (derive() and statistics, to the last bit), and are made again when the rows change."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import duckdb
import numpy as np
import pytest

from novabench.analysis import figures
from novabench.analysis.history import Made, bring_up_to_date
from novabench.storage import summaries
from novabench.storage.store import Store
from tests.storage.summary_checks import (
    HOSTS,
    assert_summaries_match_analysis,
    make_run,
    random_requests,
    request,
    streamed,
)

TWO_MODELS = (("m", HOSTS[0], "d" * 64), ("m2", HOSTS[1], "e" * 64), ("m2", HOSTS[0], None))


def test_summaries_equal_analysis_for_every_kind_of_request(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    make_run(store, "R1", 0, models=TWO_MODELS, modes=("sequential", "parallel", "load"))
    rows = [
        request(is_warmup=True, ttft_s=99.0, e2e_s=99.5, token_offsets_s=[99.0, 99.5]),
        request(is_cold=True, ttft_s=5.0, e2e_s=5.5, token_offsets_s=[5.0, 5.5]),
        request(error="HTTP 500: boom", http_status=500),
        streamed(0.10, 0.02, 40, eval_count=40, eval_duration_ns=800_000_000),
        streamed(0.12, 0.02, 40, eval_count=40, eval_duration_ns=790_000_000),
        streamed(0.14, 0.021, 40, prompt_id="p2", eval_count=40, eval_duration_ns=810_000_000),
        # the prompt read from the KV cache: ten times the others' prompt tokens/s
        streamed(0.11, 0.02, 40, prompt_eval_count=20, prompt_eval_duration_ns=5_000_000),
        streamed(0.11, 0.02, 40, prompt_eval_count=20, prompt_eval_duration_ns=50_000_000),
        streamed(0.11, 0.02, 40, prompt_eval_count=20, prompt_eval_duration_ns=52_000_000),
        streamed(0.3, 0.0, 3),  # every token at once: no client rate, ITL 0
        streamed(0.3, 0.01, 1),  # one token: no ITL
        streamed(0.3, 0.01, 0, e2e_s=0.4),  # nothing streamed
        streamed(0.2, 0.02, 10, mode="parallel", model="m2", host=HOSTS[1]),
        streamed(0.25, 0.02, 10, mode="parallel", model="m2", host=HOSTS[1], eval_count=0),
        streamed(0.2, 0.03, 5, mode="load", model="m2", host=HOSTS[0], load_level=0),
        request(mode="load", model="m2", host=HOSTS[0], load_level=1, error="timeout"),
    ]
    store.add_results("R1", list(enumerate(rows)))
    store.summarize(["R1"])
    assert assert_summaries_match_analysis(store, "R1") == 3 + 4  # modes, modes x prompts
    everything = {(s.mode, s.model, s.host): s for s in store.run_summaries(["R1"])}
    sequential = everything[("sequential", "m", HOSTS[0])]
    assert (sequential.n, sequential.errors, sequential.prompt_cached) == (9, 1, 1)
    assert sequential.digest == "d" * 64 and sequential.host_version == "0.12.6"
    assert everything[("parallel", "m2", HOSTS[1])].digest == "e" * 64
    assert everything[("load", "m2", HOSTS[0])].digest is None
    assert (
        everything[("load", "m2", HOSTS[0])].n,
        everything[("load", "m2", HOSTS[0])].errors,
    ) == (
        1,
        1,
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summaries_equal_analysis_for_random_requests(tmp_path: Path, seed: int) -> None:
    store = Store(tmp_path / "db.duckdb")
    for number in range(3):
        run_id = make_run(store, f"R{number}", number, models=TWO_MODELS)
        store.add_results(run_id, list(enumerate(random_requests(seed * 10 + number, 150))))
    store.summarize()
    assert sum(assert_summaries_match_analysis(store, f"R{n}") for n in range(3)) > 30


def test_sql_median_is_numpys_to_the_last_bit_where_duckdbs_own_is_not(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    samples = [list(rng.uniform(0, 1000, size=int(n))) for n in rng.integers(1, 30, size=400)]
    con = duckdb.connect()
    for macro in summaries._MACROS:
        con.execute(macro)
    differs = 0
    for values in samples:
        for q in (0.5, 0.95):
            ours, duckdbs = con.execute(
                "SELECT nb_quantile(list_sort(?::DOUBLE[]), ?::DOUBLE), "
                "quantile_cont(v, ?) FROM (SELECT unnest(?::DOUBLE[]) AS v)",
                [values, q, q, values],
            ).fetchone()
            assert ours == np.percentile(values, q * 100) == figures.quantile(values, q)
            differs += duckdbs != ours
    assert differs  # why the macro exists: quantile_cont rounds the other way at times


def test_the_sql_constants_are_analysis_constants() -> None:
    assert summaries.PROMPT_CACHE_FACTOR == figures.PROMPT_CACHE_FACTOR
    measured = {
        (warmup, cold): not warmup and not cold
        for warmup in (True, False)
        for cold in (True, False)
    }
    con = duckdb.connect()
    for (warmup, cold), expected in measured.items():
        sql = "SELECT " + summaries.MEASURED_SQL.format(x="t") + " FROM (SELECT ? AS is_warmup, "
        row = con.execute(sql + "? AS is_cold) t", [warmup, cold]).fetchone()
        assert row == (expected,)
        assert figures.is_measured(request(is_warmup=warmup, is_cold=cold)) is expected


def test_a_run_is_summarized_again_when_its_status_changes_and_while_it_runs(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "db.duckdb")
    make_run(store, "R1", 0, status=None)
    store.add_results("R1", [(0, streamed(0.1, 0.02, 10))])
    bring_up_to_date(store)
    assert [s.n for s in store.run_summaries(["R1"])] == [1]
    store.add_results("R1", [(1, streamed(0.2, 0.02, 10))])  # still running: made again
    assert store.runs_to_summarize() == ["R1"]
    bring_up_to_date(store)
    assert [s.n for s in store.run_summaries(["R1"])] == [2]
    store.finish_run("R1", "interrupted")
    assert store.runs_to_summarize() == ["R1"]
    bring_up_to_date(store)
    assert store.runs_to_summarize() == [] and store.runs_without("changes") == []
    assert [s.status for s in store.run_summaries(["R1"])] == ["interrupted"]
    assert_summaries_match_analysis(store, "R1")


def _summarized_run_and_its_spill(folder: Path) -> tuple[Store, Path]:
    """An aborted run R1 of one request, summarized, and a spill file of a second one."""
    from novabench.storage import journal

    store = Store(folder / "db.duckdb")
    make_run(store, "R1", 0, status="aborted")
    store.add_results("R1", [(0, streamed(0.1, 0.02, 10))])
    bring_up_to_date(store)
    late = {"table": "results", "run_id": "R1", "seq": 1, **asdict(streamed(0.2, 0.02, 10))}
    spill, _ = journal.write_spill(store.path, "R1", [late])
    return store, spill


def test_a_spill_imported_into_a_run_makes_its_summaries_again(tmp_path: Path) -> None:
    store, spill = _summarized_run_and_its_spill(tmp_path)
    store.import_spill(spill)
    assert [s.n for s in store.run_summaries(["R1"])] == [2]
    assert_summaries_match_analysis(store, "R1")


def test_a_spill_is_never_imported_into_a_pruned_run(tmp_path: Path) -> None:
    """A run pruned with --keep-summaries has no raw rows: a spill would bring back part of
    them under summaries made from all of them."""
    from novabench.storage.store import StoreError

    store, spill = _summarized_run_and_its_spill(tmp_path)
    with store.connect() as con:  # as `prune --keep-summaries` leaves it
        con.execute("DELETE FROM results WHERE run_id = 'R1'")
        con.execute("UPDATE runs SET pruned_at = TIMESTAMP '2026-12-01 10:00' WHERE run_id = 'R1'")
    with pytest.raises(StoreError, match=r"run R1 was pruned at 2026-12-01 10:00 UTC.*nothing"):
        store.import_spill(spill)
    assert store.results("R1") == [] and [s.n for s in store.run_summaries(["R1"])] == [1]


def test_summaries_hold_no_nan_for_figures_no_request_had(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    make_run(store, "R1", 0)
    store.add_results("R1", [(0, request(error="refused")), (1, streamed(0.1, 0.0, 1))])
    store.summarize(["R1"])
    (summary,) = store.run_summaries(["R1"])
    assert (summary.n, summary.errors) == (1, 1)
    assert summary.itl_ms_p50 is None and summary.client_tokens_per_s_p50 is None
    assert summary.ttft_ms_p50 is not None and not math.isnan(summary.ttft_ms_p50)


def test_a_new_run_makes_only_its_own_aggregates(tmp_path: Path) -> None:
    """What `run` does when it ends: the new run's summaries, changes and levels, from its own
    rows (and its baselines'); nothing made before is made again, however long the history."""
    from tests.scale.history import HistoryShape, build_history

    db = tmp_path / "db.duckdb"
    shape = HistoryShape(runs=60, requests_per_run=12, prompts=2, load_every=20)
    store = build_history(db, shape)
    assert bring_up_to_date(store) == Made(60, 60, 60)
    with store.connect() as con:
        before = con.execute("SELECT * FROM summary_state ORDER BY run_id").fetchall()
    build_history(db, HistoryShape(runs=1, requests_per_run=12, prompts=2), first=60)
    new = store.latest_run_id()
    made = bring_up_to_date(store)
    assert (made.summaries, made.changes, made.levels) == (1, 1, 1)
    with store.connect() as con:
        after = con.execute("SELECT * FROM summary_state ORDER BY run_id").fetchall()
    assert [row for row in after if row[0] != new] == before
    assert assert_summaries_match_analysis(store, new) > 0
    assert store.previous_comparable([new])[new]  # compared with the run before it
