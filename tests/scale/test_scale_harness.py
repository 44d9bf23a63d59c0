"""`make scale` end to end at a tiny size, and the synthetic history it measures.

No timing assertions: the benchmark itself is `python -m tests.scale`, not a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from novabench.storage.schema import SCHEMA_VERSION
from novabench.storage.store import Store
from tests.scale import child
from tests.scale.__main__ import main
from tests.scale.generate import Shape, build
from tests.scale.table import FAILED

RUNS, REQUESTS, PAGE_REQUESTS = 20, 500, 48
ROWS = (
    "`novabench --help`",
    "`novabench validate suites/one_sentence.yaml`",
    "`run` overhead, empty DB",
    "`run` overhead, full DB",
    "`run` overhead, full DB, a suite with",
    "`history`, DB of one run",
    "`history`, full DB, first call",
    "`history`, full DB ",
    f"run page of a {PAGE_REQUESTS}-request load run",
    "`novabench prune` of half the history",
    "peak memory of `run`, full vs empty",
    "peak memory of `history`, full vs one run",
)


@pytest.mark.timeout(240)
def test_harness_prints_every_row_and_writes_the_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        *("--runs", str(RUNS), "--requests", str(REQUESTS)),
        *("--page-requests", str(PAGE_REQUESTS), "--repeats", "1"),
        *("--dir", str(tmp_path / "scale")),
    ]
    assert main(argv) == 0  # 1: some command failed on the synthetic history

    printed = capsys.readouterr().out
    table = printed[printed.index("step ") :]
    for row in ROWS:
        assert row in table, f"no row {row!r} in\n{table}"
    assert FAILED not in table
    assert "prune: not available" in table or "removed" in table
    markdown = (tmp_path / "scale" / "latest.md").read_text()
    assert markdown.count("\n| ") == len(ROWS) + 1  # the header and one line per row
    assert "cores" in markdown and "DuckDB" in markdown
    assert list((tmp_path / "scale" / "cache").glob("history-20r-500q-48p-*.duckdb"))


def test_history_has_the_shape_asked_and_the_schema_of_today(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    built = build(path, Shape(RUNS, REQUESTS, PAGE_REQUESTS), progress=lambda _: None)

    store = Store(path)
    assert store.schema_version() == SCHEMA_VERSION
    listed = store.list_runs()
    assert len(listed) == RUNS
    assert {run["suite_name"] for run in listed} >= {"chat", "code", "rag", "load-scale"}
    page = store.results(built.page_run_id)
    assert len(page) == PAGE_REQUESTS
    assert {r.load_level for r in page if not r.is_warmup} == set(range(8))
    with duckdb.connect(str(path), read_only=True) as con:
        (total,) = con.execute("SELECT count(*) FROM results").fetchone()
        orphans = con.execute(
            "SELECT count(*) FROM runs r WHERE NOT EXISTS (SELECT 1 FROM models m "
            "WHERE m.run_id = r.run_id) OR NOT EXISTS (SELECT 1 FROM phases p "
            "WHERE p.run_id = r.run_id) OR r.ended_at IS NULL"
        ).fetchone()
    assert total == REQUESTS and orphans == (0,)
    for result in store.results(listed[1]["run_id"]):
        if result.error is None:
            offsets = result.token_offsets_s
            assert offsets == sorted(offsets) and result.ttft_s == offsets[0]
            assert result.eval_count == len(offsets) and result.e2e_s > offsets[-1]


def test_history_shape_too_small_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="requests per other run"):
        build(tmp_path / "small.duckdb", Shape(runs=100, requests=200, page_requests=16))


def test_a_command_past_its_time_limit_is_killed() -> None:
    outcome = child.run([sys.executable, "-c", "import time; time.sleep(60)"], 0.5, 2**30)
    assert outcome.exit_code is None and outcome.killed is not None
    assert "--timeout" in outcome.failure()


def test_peak_memory_is_the_childs_own() -> None:
    grow = "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096])"
    big = child.run([sys.executable, "-c", grow], 60, 2**32)
    small = child.run([sys.executable, "-c", "pass"], 60, 2**32)
    assert big.ok and small.ok
    assert big.peak_rss_bytes > small.peak_rss_bytes + 150 * 2**20
