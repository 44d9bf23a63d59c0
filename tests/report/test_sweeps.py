"""The run page's Load section: real sweeps against the double, figures as analysis.sweeps gives."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from novabench import Store, load_suite, run_suite
from novabench.analysis.compare import LOAD_MODE, compare_runs, history_changes
from novabench.analysis.sweeps import (
    level_name,
    limits_of,
    load_sweeps,
    saturated_at,
    sweeps,
    verdict,
)
from novabench.report import render_comparison, render_history, render_run, trends
from novabench.report.sweep_charts import doubles
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble
from tests.report.pages import with_shared

# Plotly reads <b> in labels and browsers read all of it: it must stay text everywhere.
HOSTILE = "ev<b>il</b><img src=x onerror=alert(1)>"
REPLY = " ".join(["word"] * 20)
LEVELS = [1, 2, 4, 8]
SLO_TTFT_MS = 60


@dataclass(frozen=True)
class Rendered:
    """A stored run and its page."""

    store: Store
    run_id: str
    page: str


def _model(name: str) -> FakeModel:
    return FakeModel(name, reply=REPLY, token_interval_s=0.004, ttft_s=0.01)


def _run(store: Store, path: Path, out_dir: Path) -> Rendered:
    outcome = run_suite(load_suite(path), store)
    assert outcome.status == "complete", outcome.failed[:1]
    page = render_run(store, outcome.run_id, out_dir).read_text(encoding="utf-8")
    return Rendered(store, outcome.run_id, page)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """A mixed run (sequential + a concurrency sweep, two models, one hostile), a rate sweep, a
    run without load; all in one store."""
    root = tmp_path_factory.mktemp("load-report")
    store = Store(root / "db.duckdb")
    out = root / "reports"
    with OllamaDouble(models=[_model("llama3.2"), _model(HOSTILE)], num_parallel=2) as double:
        common: dict[str, object] = {
            "models": f'[llama3.2, "{HOSTILE}"]',
            "prompts": '["Hi.", {id: q, text: "What?"}]',
            "warmup": 1,
            "sample_interval_s": 0.05,
        }
        mixed = write_suite(
            root / "mixed.yaml",
            double.url,
            **common,
            name="mixed",
            modes="[sequential, load]",
            repetitions=2,
            load=f"{{concurrency: {LEVELS}, requests_per_level: 8, early_stop: false, "
            f"slo: {{ttft_ms: {SLO_TTFT_MS}}}}}",
        )
        rate = write_suite(
            root / "rate.yaml",
            double.url,
            **{**common, "models": "[llama3.2]"},
            name="rate",
            modes="[load]",
            load="{rate: [20, 40], requests_per_level: 8, max_in_flight: 1}",
        )
        plain = write_suite(
            root / "plain.yaml",
            double.url,
            **common,
            name="plain",
            modes="[sequential]",
            repetitions=2,
        )
        return {
            "mixed": _run(store, mixed, out),
            "rate": _run(store, rate, out),
            "plain": _run(store, plain, out),
        }


def _stored_sweeps(run: Rendered) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """What analysis.sweeps makes of the stored rows: the figures the page must show."""
    store, run_id = run.store, run.run_id
    limits = limits_of(store.get_run(run_id)["facts"]["load"])
    return sweeps(store.load_levels(run_id), store.results(run_id), limits, store.samples(run_id))


def _sweep_html(page: str, model: str) -> str:
    start = page.index(f'<div class="sweep" data-model="{html.escape(model)}"')
    return page[start : page.index("</table>", start)]


def _cells(sweep_html: str) -> dict[int, dict[str, str]]:
    """level index -> data-col -> the cell's text."""
    found = {}
    for index, row in re.findall(r'<tr data-level="(\d+)"[^>]*>(.*?)</tr>', sweep_html, re.S):
        cells = re.findall(r'<td[^>]*data-col="([a-z_0-9]+)"[^>]*>(.*?)</td>', row, re.S)
        found[int(index)] = {
            col: " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())
            for col, text in cells
        }
    return found


def _figure(page: str, figure_id: str) -> dict[str, Any] | None:
    match = re.search(
        rf'<script type="application/json" id="figure-{figure_id}">(.*?)</script>', page, re.S
    )
    return None if match is None else with_shared(page, json.loads(match.group(1)))


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


# ---- the section --------------------------------------------------------------------------


def test_each_sweep_has_its_verdict_and_slos(runs: dict[str, Rendered]) -> None:
    page = runs["mixed"].page
    assert '<section class="card" id="load">' in page
    assert '<a href="#load">Load</a>' in page
    found = _stored_sweeps(runs["mixed"])
    assert {model for model, _ in found} == {"llama3.2", HOSTILE}
    for (model, _host), levels in found.items():
        sweep = _sweep_html(page, model)
        sentence = verdict(levels, "ollama")
        assert f'<p class="verdict-line" data-load="verdict">{escape(sentence)}</p>' in sweep
    # two slots, no early stop: the double saturates at 2 and the page says so in words
    assert "OLLAMA_NUM_PARALLEL is probably 2." in page
    assert f"SLOs in force: <strong>TTFT ≤ {SLO_TTFT_MS} ms</strong>" in page


def test_level_rows_show_the_load_stats_figures(runs: dict[str, Rendered]) -> None:
    page = runs["mixed"].page
    for (model, _host), levels in _stored_sweeps(runs["mixed"]).items():
        cells = _cells(_sweep_html(page, model))
        assert sorted(cells) == [lv["level_index"] for lv in levels]
        knee = saturated_at(levels)
        for position, lv in enumerate(levels):
            row = cells[lv["level_index"]]
            assert row["level"].split()[0] == f"{lv['level']:g}"
            assert ("knee" in row["level"]) == (knee is not None and knee.knee_index == position)
            assert row["requests"] == str(lv["requests"]) == "8"
            assert row["output_tokens_per_s"] == _num(lv["output_tokens_per_s"])
            assert row["requests_per_s"] == _num(lv["requests_per_s"], 2)
            assert row["goodput_rps"] == _num(lv["goodput_rps"], 2)
            assert row["slo_attainment"] == f"{lv['slo_attainment'] * 100:.1f}%"
            assert row["ttft_ms"] == " / ".join(_num(lv[f"ttft_ms_p{q}"]) for q in (50, 95, 99))
            assert row["itl_ms"] == " / ".join(_num(lv[f"itl_ms_p{q}"]) for q in (50, 95, 99))
            assert row["e2e_ms"] == " / ".join(_num(lv[f"e2e_ms_p{q}"]) for q in (50, 95))
            assert row["queue_ms"] == " / ".join(_num(lv[f"queue_ms_p{q}"]) for q in (50, 95))
            assert row["cpu_percent"] == (
                f"{_num(lv['cpu_percent_mean'], 0)} / {_num(lv['cpu_percent_peak'], 0)}"
            )
            assert "delayed_arrivals" not in row  # closed loop: no arrivals wait
        # past 2 slots TTFT climbs above the SLO: goodput falls behind requests/s
        assert levels[-1]["slo_attainment"] < 1.0 == levels[0]["slo_attainment"]


def test_charts_have_a_trace_per_sweep_and_the_stored_points(runs: dict[str, Rendered]) -> None:
    page = runs["mixed"].page
    found = _stored_sweeps(runs["mixed"])
    throughput = _figure(page, "load-throughput")
    assert throughput is not None and len(throughput["data"]) == len(found) == 2
    for trace, levels in zip(throughput["data"], found.values(), strict=True):
        assert trace["x"] == [float(v) for v in LEVELS]
        assert trace["y"] == [round(lv["output_tokens_per_s"], 3) for lv in levels]
    assert throughput["layout"]["xaxis"]["type"] == "log"  # 1, 2, 4, 8 double
    assert throughput["layout"]["xaxis"]["title"]["text"] == "concurrent requests"
    # requests/s and goodput per sweep; p50, p95, p99 per sweep
    assert len(_figure(page, "load-requests")["data"]) == 2 * len(found)  # type: ignore[index]
    assert len(_figure(page, "load-ttft")["data"]) == 3 * len(found)  # type: ignore[index]
    assert len(_figure(page, "load-itl")["data"]) == 3 * len(found)  # type: ignore[index]
    curve = _figure(page, "load-curve")
    assert curve is not None
    knees = sum(saturated_at(levels) is not None for levels in found.values())
    assert knees >= 1 and len(curve["data"]) == len(found) + 1
    for trace, levels in zip(curve["data"], found.values(), strict=False):
        assert trace["x"] == [round(lv["e2e_ms_p95"], 3) for lv in levels]
        assert trace["text"] == [str(v) for v in LEVELS]
    assert curve["data"][-1]["name"] == "saturation knee"
    assert len(curve["data"][-1]["x"]) == knees


def test_hostile_model_names_are_escaped_everywhere(runs: dict[str, Rendered]) -> None:
    page = runs["mixed"].page
    assert HOSTILE not in page
    assert "<b>il</b>" not in page and "<img" not in page
    assert html.escape(HOSTILE) in page  # the sweep's heading, as text
    names = [t["name"] for t in _figure(page, "load-throughput")["data"]]  # type: ignore[index]
    assert html.escape(HOSTILE, quote=False) in names  # Plotly shows the tags, not bold text


def test_a_rate_sweep_names_its_axis_and_delayed_arrivals(runs: dict[str, Rendered]) -> None:
    page = runs["rate"].page
    (levels,) = _stored_sweeps(runs["rate"]).values()
    cells = _cells(_sweep_html(page, "llama3.2"))
    for lv in levels:
        row = cells[lv["level_index"]]
        assert row["level"].split()[0] == f"{lv['level']:g}"
        assert row["delayed_arrivals"] == str(lv["delayed_arrivals"])
    assert "goodput_rps" not in cells[0]  # no SLOs: no goodput column
    assert "No SLOs given" in page
    throughput = _figure(page, "load-throughput")
    assert throughput is not None
    assert throughput["layout"]["xaxis"]["title"]["text"] == "offered requests/s"
    # two levels: one category each, never a linear axis with ticks between them
    assert throughput["layout"]["xaxis"]["type"] == "category"
    texts = [f"{lv['level']:g}" for lv in levels]
    assert throughput["layout"]["xaxis"]["categoryarray"] == texts
    assert throughput["data"][0]["x"] == texts
    assert len(_figure(page, "load-requests")["data"]) == 1  # type: ignore[index]
    # a load-only run: the ordinary summary points at the section instead of saying "no requests"
    assert 'see <a href="#load">Load</a>' in page


def test_no_load_section_without_load_mode(runs: dict[str, Rendered]) -> None:
    page = runs["plain"].page
    assert 'id="load"' not in page and "figure-load-" not in page
    assert 'href="#load"' not in page


# ---- load rows stay out of everything that pools repetitions -------------------------------


def test_load_rows_are_not_in_the_ordinary_summary(runs: dict[str, Rendered]) -> None:
    run = runs["mixed"]
    page = run.page
    summary = page[
        page.index('id="summary-table"') : page.index("</table>", page.index('id="summary-table"'))
    ]
    modes = set(re.findall(r'data-mode="([^"]+)"', summary))
    assert modes == {"sequential"}
    measured = [
        r
        for r in run.store.results(run.run_id)
        if r["mode"] == "sequential" and not r["is_warmup"] and not r["is_cold"]
    ]
    counts = re.findall(r'data-col="n">(\d+)</td>', summary)
    assert sorted(int(c) for c in counts) == [len(measured) // 2] * 2
    assert 'data-mode="load"' not in page  # nor in the per-prompt table
    for figure_id in ("ttft", "generation", "e2e", "gaps", "length"):
        figure = _figure(page, figure_id)
        assert figure is not None
        assert LOAD_MODE not in {t.get("name") for t in figure["data"]}
    # the responses list only the sequential requests; the load ones are counted, not listed
    load_count = sum(1 for r in run.store.results(run.run_id) if r["mode"] == LOAD_MODE)
    assert '<span class="badge mode">load</span>' not in page
    assert f"The {load_count} requests of the load sweep are not listed" in page


def test_timeline_keeps_the_load_requests(runs: dict[str, Rendered]) -> None:
    run = runs["mixed"]
    timeline = _figure(run.page, "timeline")
    assert timeline is not None
    lanes = timeline["layout"]["yaxis"]["ticktext"]
    assert any(LOAD_MODE in lane for lane in lanes), lanes


def test_compare_and_history_keep_load_rows_out_of_ordinary_groups(
    runs: dict[str, Rendered], tmp_path: Path
) -> None:
    store, mixed, rate = runs["mixed"].store, runs["mixed"].run_id, runs["rate"].run_id
    comparison = compare_runs(store, mixed, mixed)
    assert comparison.findings and {f.mode for f in comparison.findings} == {"sequential"}
    # the sweeps are compared level by level instead (tests/analysis/test_compare_sweeps.py)
    assert {(s.model, s.baseline_run_id) for s in comparison.load} == {
        (model, mixed) for model, _ in load_sweeps(store, mixed)
    }
    only_load = compare_runs(store, rate, rate)
    assert only_load.findings == [] and only_load.groups_compared == 0
    assert only_load.load
    assert all(f.mode != LOAD_MODE for fs in history_changes(store).values() for f in fs)
    history = render_history(store, tmp_path).read_text(encoding="utf-8")  # summarizes the runs
    series = trends.history_series(store.history_points(trends.TREND_NAMES))
    assert series and all(s["mode"] != LOAD_MODE for s in series)
    assert "mixed" in history and rate in history
    page = render_comparison(store, mixed, rate, tmp_path).read_text(encoding="utf-8")
    # a concurrency sweep and a rate sweep share no level: said, not compared
    assert "only in run" in page


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ([1, 2, 4, 8], True),
        ([1, 2, 4], True),
        ([1, 2], False),
        ([1, 2, 3, 4], False),
        ([2, 4, 9], False),
    ],
)
def test_a_log_axis_only_when_levels_double(levels: list[float], expected: bool) -> None:
    assert doubles(levels) is expected


def test_a_level_the_run_never_wrote_is_shown_from_its_requests(
    runs: dict[str, Rendered], tmp_path: Path
) -> None:
    # as after kill -9 during the last level: its requests are stored, its level row is not
    mixed = runs["mixed"]
    copy = tmp_path / "killed.duckdb"
    with mixed.store.connect() as con:
        con.execute(f"ATTACH '{copy}' AS killed")
        con.execute(
            "COPY FROM DATABASE "
            + con.execute("SELECT current_database()").fetchone()[0]
            + " TO killed"
        )
    store = Store(copy)
    with store.connect() as con:
        con.execute(
            "DELETE FROM load_levels WHERE run_id = ? AND level_index = ?",
            [mixed.run_id, len(LEVELS) - 1],
        )
    page = render_run(store, mixed.run_id, tmp_path / "out").read_text(encoding="utf-8")
    assert page.count("stopped: aborted") == 2  # both swept models lost their last level row
    assert f"{level_name('concurrency', LEVELS[-1])}" in page
