"""Load sweeps compared: level by level, the knee and the peak, the regression gate, history."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from novabench.analysis.compare import REGRESSION, baseline_comparison, compare_runs
from novabench.analysis.compare_sweeps import baseline_sweeps, knee_level, peak_throughput
from novabench.analysis.sweeps import load_sweeps
from novabench.cli import EXIT_REGRESSION, cli
from novabench.report.pages import render_comparison, render_history
from novabench.storage.store import Store
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble

REPLY = " ".join(["word"] * 20)
FAST_S, SLOW_S = 0.004, 0.016  # token interval: the slow run streams 4× slower


@dataclass
class Nightly:
    """Three runs of one suite (sequential + load) on one host: fast, fast again, slow."""

    store: Store
    out: Path
    runs: list[str]
    codes: list[int]
    outputs: list[str]


def _run_id(output: str) -> str:
    found = re.search(r"runs/([0-9A-Za-z_-]+)\.html", output)
    assert found, output
    return found.group(1)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory: pytest.TempPathFactory) -> Nightly:
    folder = tmp_path_factory.mktemp("nightly")
    db, out = folder / "db.duckdb", folder / "out"
    model = FakeModel("llama3.2", reply=REPLY, token_interval_s=FAST_S, ttft_s=0.01)
    runs, codes, outputs = [], [], []
    with OllamaDouble(models=[model], num_parallel=2) as double:
        suite = write_suite(
            folder / "nightly.yaml",
            double.url,
            name="nightly",
            models="[llama3.2]",
            prompts='["Hi."]',
            modes="[sequential, load]",
            repetitions=3,
            load="{concurrency: [1, 2], requests_per_level: 8}",
        )
        gates: list[list[str]] = [
            [],
            ["--baseline", "last", "--fail-on-regression", "50"],
            ["--baseline", "last", "--fail-on-regression", "25"],
        ]
        for number, gate in enumerate(gates):
            if number == 2:  # last night's upgrade: every stream 4× slower
                model.token_interval_s = SLOW_S
                double.version = "0.13.0"
            result = CliRunner().invoke(
                cli, ["run", str(suite), "--db", str(db), "--out", str(out), *gate]
            )
            runs.append(_run_id(result.output))
            codes.append(result.exit_code)
            outputs.append(result.output)
    return Nightly(Store(db), out, runs, codes, outputs)


def test_compare_shows_the_drop_level_by_level(nightly: Nightly) -> None:
    _, fast, slow = nightly.runs
    comparison = compare_runs(nightly.store, fast, slow)
    assert len(comparison.load) == 1
    sweep = comparison.load[0]
    assert (sweep.model, sweep.run_id, sweep.baseline_run_id) == ("llama3.2", slow, fast)
    assert [(lv.kind, lv.level) for lv in sweep.levels] == [("concurrency", 1), ("concurrency", 2)]
    for level in sweep.levels:
        assert level.tokens_change_pct is not None and level.tokens_change_pct < -40
        assert level.error_rate_a == level.error_rate_b == 0
        e2e = level.figure("e2e_ms")
        assert e2e is not None and e2e.verdict == REGRESSION
        assert e2e.p_value is not None and e2e.p_value < 0.01
        assert (e2e.n_a, e2e.n_b) == (8, 8)
        assert e2e.change_pct is not None and e2e.change_pct > 100
    # peak and knee come from the stored sweeps: the same arithmetic as the run pages
    sweeps_a = next(iter(load_sweeps(nightly.store, fast).values()))
    sweeps_b = next(iter(load_sweeps(nightly.store, slow).values()))
    assert sweep.peak_a == peak_throughput(sweeps_a) and sweep.peak_b == peak_throughput(sweeps_b)
    assert sweep.peak_change_pct is not None and sweep.peak_change_pct < -40
    assert knee_level(sweeps_a) is None and sweep.knee_a is None  # 2 slots, 2 streams: no knee
    assert "Ollama 0.12.6 → 0.13.0" in comparison.notes
    assert not any("not compared" in note for note in comparison.notes)


def test_mixed_runs_still_compare_their_ordinary_groups(nightly: Nightly) -> None:
    _, fast, slow = nightly.runs
    comparison = compare_runs(nightly.store, fast, slow)
    assert comparison.groups_compared == 1
    assert {f.mode for f in comparison.findings} == {"sequential"}
    assert {f.n_a for f in comparison.findings} == {3}  # no load request pooled in


def test_a_sweep_compared_with_itself_has_no_regression(nightly: Nightly) -> None:
    fast = nightly.runs[0]
    sweep = compare_runs(nightly.store, fast, fast).load[0]
    assert sweep.peak_change_pct == 0
    assert sweep.regressions(0.0) == [] and sweep.failing(0.0) == []
    assert all(f.verdict == "no difference" for lv in sweep.levels for f in lv.figures)


def test_run_with_baseline_exits_4_on_a_load_regression(nightly: Nightly) -> None:
    first, fast, slow = nightly.runs
    assert nightly.codes == [0, 0, EXIT_REGRESSION], nightly.outputs
    assert f"larger than 25%: exit {EXIT_REGRESSION}" in nightly.outputs[2]
    assert "peak throughput" in nightly.outputs[2]
    comparison = baseline_comparison(nightly.store, slow)
    assert comparison is not None and comparison.baseline_run_ids == [fast]
    assert any("peak throughput" in line for line in comparison.load_failing)
    assert any("e2e p95" in line for line in comparison.load_failing)
    # the no-change night: compared, nothing beyond 50%
    unchanged = baseline_comparison(nightly.store, fast)
    assert unchanged is not None and unchanged.load and unchanged.load_failing == []
    assert unchanged.load[0].baseline_run_id == first


def test_the_run_page_lists_the_load_regressions(nightly: Nightly) -> None:
    slow = nightly.runs[2]
    page = (nightly.out / "runs" / f"{slow}.html").read_text(encoding="utf-8")
    baseline = page[page.index('id="baseline"') :]
    baseline = baseline[: baseline.index("</section>")]
    assert 'id="load-changes"' in baseline
    assert "peak throughput" in baseline and "beyond 25%" in baseline


def test_median_baseline_uses_the_newest_sweep_with_the_same_levels(nightly: Nightly) -> None:
    first, fast, slow = nightly.runs
    run = nightly.store.get_run(slow)
    from novabench.analysis.compare import parse_baseline

    changes, notes = baseline_sweeps(nightly.store, run, parse_baseline("median:5"))
    assert [c.baseline_run_id for c in changes] == [fast]
    assert not any("same levels" in n for n in notes)


def test_a_baseline_sweep_reads_only_the_runs_it_can_use(
    nightly: Nightly, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweeps a baseline may use are found in the stored load levels: with 'last', the raw
    rows of one earlier run are read, not of every earlier load run of the suite."""
    from novabench.analysis import compare_sweeps
    from novabench.analysis.compare import parse_baseline

    first, fast, slow = nightly.runs
    read: list[str] = []
    swept = compare_sweeps.swept

    def counted(store: Store, run_id: str) -> object:
        read.append(run_id)
        return swept(store, run_id)

    monkeypatch.setattr(compare_sweeps, "swept", counted)
    run = nightly.store.get_run(slow)
    changes, _ = baseline_sweeps(nightly.store, run, parse_baseline("last"))
    assert [c.baseline_run_id for c in changes] == [fast]
    assert read == [slow, fast]  # not `first`


def test_a_sweep_whose_every_request_failed_is_no_baseline(
    nightly: Nightly, tmp_path: Path
) -> None:
    """The fast run's load requests all failed (as if out of memory at every level): 'last'
    compares the slow run with the older sweep that was measured, not with nothing."""
    from novabench.analysis.compare import parse_baseline

    first, fast, slow = nightly.runs
    store = Store(Path(shutil.copy(nightly.store.path, tmp_path / "db.duckdb")))
    with store.connect() as con:
        con.execute(
            "UPDATE results SET error = 'out of memory' WHERE run_id = ? AND mode = 'load'", [fast]
        )
    store.summarize([fast])
    changes, notes = baseline_sweeps(store, store.get_run(slow), parse_baseline("last"))
    assert [c.baseline_run_id for c in changes] == [first], notes


def test_compare_cli_prints_the_load_table(nightly: Nightly) -> None:
    _, fast, slow = nightly.runs
    result = CliRunner().invoke(
        cli, ["compare", fast, slow, "--db", str(nightly.store.path), "--out", str(nightly.out)]
    )
    assert result.exit_code == 0, result.output
    assert "load: llama3.2" in result.output
    assert "1 concurrent request" in result.output and "2 concurrent requests" in result.output
    assert "peak throughput" in result.output and "knee: none → none" in result.output
    assert "one number per run: no significance test" in result.output


def test_compare_page_has_the_load_table(nightly: Nightly) -> None:
    _, fast, slow = nightly.runs
    page = render_comparison(nightly.store, fast, slow, nightly.out).read_text(encoding="utf-8")
    section = page[page.index('id="load-changes"') :]
    assert section.count('class="level"') == 2
    assert "peak throughput" in section.lower()
    assert "no significance test" in section


def test_history_charts_peak_throughput_per_run(nightly: Nightly, tmp_path: Path) -> None:
    page = render_history(nightly.store, tmp_path).read_text(encoding="utf-8")
    match = re.search(
        r'<script type="application/json" id="figure-history-1-load-peak">(.*?)</script>',
        page,
        re.S,
    )
    assert match, "no peak throughput chart"
    figure = json.loads(match.group(1))
    (trace,) = [t for t in figure["data"] if t.get("mode") == "lines+markers"]
    peaks = [
        peak_throughput(next(iter(load_sweeps(nightly.store, run_id).values())))
        for run_id in nightly.runs
    ]
    assert trace["y"] == [round(p, 3) for p in peaks if p is not None]
    assert all("did not saturate" in text for text in trace["text"])


def test_no_change_in_the_groups_is_not_said_of_the_sweeps(nightly: Nightly) -> None:
    first, fast, _ = nightly.runs
    result = CliRunner().invoke(
        cli, ["compare", first, fast, "--db", str(nightly.store.path), "--out", str(nightly.out)]
    )
    assert result.exit_code == 0, result.output
    # the sequential groups have 3 repetitions each: nothing there can be significant
    assert "no significant changes in the per-prompt groups" in result.output
    assert result.output.index("per-prompt groups") < result.output.index("load: llama3.2")
