"""A run of 20,000 stored requests: its page draws a thinned share of them by a stated rule
(at most POINTS_PER_CHART per chart, each trace's extremes kept) and says so beside each chart,
while every figure it states counts every request."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest

from novabench.analysis.figures import derive, is_measured, quantile
from novabench.analysis.statistics import median
from novabench.records import Figures, StoredResult
from novabench.report import render_run
from novabench.report.thinning import POINTS_PER_CHART, RULE
from novabench.storage.store import Store
from tests.report.big_run import add_load_run
from tests.report.pages import page_figures, read_page, summary_cells, without_plotly_js

REQUESTS = 20_000
MODELS = ("llama3.2", "qwen2.5")
RUN_ID = "20260101T000000Z-big"


@dataclass(frozen=True)
class BigRun:
    page: str
    figures: dict[str, dict[str, Any]]
    rows: list[StoredResult]  # as Reads.results reads them: the full, slow path
    derived: dict[int, Figures]  # by seq, each request's figures one by one


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigRun:
    folder = tmp_path_factory.mktemp("big")
    store = Store(folder / "db.duckdb")
    add_load_run(store, REQUESTS, run_id=RUN_ID, models=MODELS, mode="sequential")
    page = read_page(render_run(store, RUN_ID, folder / "out"))
    rows = store.results(RUN_ID)
    return BigRun(page, page_figures(page), rows, {r.seq: derive(r) for r in rows})


def _measured(big: BigRun) -> list[tuple[StoredResult, Figures]]:
    return [(r, big.derived[r.seq]) for r in big.rows if is_measured(r) and r.error is None]


def _by_model(big: BigRun, figure: str) -> dict[str, list[float]]:
    values: dict[str, list[float]] = defaultdict(list)
    for row, figures in _measured(big):
        if (value := getattr(figures, figure)) is not None:
            values[row.model].append(value)
    return values


def _points(trace: dict[str, Any]) -> int:
    return len(trace.get("y") or trace.get("x") or [])


def test_the_run_is_big_and_every_request_is_stored(big: BigRun) -> None:
    assert len(big.rows) >= REQUESTS
    assert len(_measured(big)) > 19_000


@pytest.mark.parametrize("figure_id", ["ttft", "generation", "e2e", "gaps", "length"])
def test_a_chart_of_single_requests_draws_at_most_its_share(big: BigRun, figure_id: str) -> None:
    traces = big.figures[figure_id]["data"]
    dots = [t for t in traces if t.get("boxpoints") == "all" or t["type"] == "scatter"]
    drawn = sum(_points(t) for t in dots if t.get("mode") != "markers+text" and _points(t) > 2)
    assert 0 < drawn <= POINTS_PER_CHART
    assert all(_points(t) <= POINTS_PER_CHART for t in traces)


def test_the_timeline_and_resource_bars_are_thinned_too(big: BigRun) -> None:
    lanes = big.figures["timeline"]["data"]
    assert max(_points(t) for t in lanes) <= POINTS_PER_CHART
    bars = [t for t in big.figures["resources"]["data"] if t["type"] == "bar"]
    assert 0 < sum(_points(t) for t in bars) <= POINTS_PER_CHART + len(bars)


def test_each_trace_keeps_its_lowest_and_highest_value(big: BigRun) -> None:
    ttft = _by_model(big, "ttft_ms")
    (dots,) = [t for t in big.figures["ttft"]["data"] if t["type"] == "box"]
    drawn = set(dots["y"])
    for values in ttft.values():
        assert round(min(values), 3) in drawn and round(max(values), 3) in drawn
    rates = _by_model(big, "eval_tokens_per_s")
    for trace in big.figures["length"]["data"]:
        values = rates[trace["name"]]
        assert len(trace["y"]) < len(values)
        assert round(min(values), 3) in trace["y"] and round(max(values), 3) in trace["y"]


def _note(page: str, figure_id: str) -> str:
    card = page[: page.index(f'id="chart-{figure_id}"')]
    card = card[card.rindex('<div class="card">') :]
    found = re.search(r'<p class="caption thinned">(.*?)</p>', card, re.S)
    assert found is not None, f"no note beside {figure_id}"
    return html.unescape(found.group(1))


def test_the_page_states_the_rule_beside_each_thinned_chart(big: BigRun) -> None:
    with_ttft = sum(f.ttft_ms is not None for _, f in _measured(big))
    note = _note(big.page, "ttft")
    assert note.startswith(f"Drawn: {POINTS_PER_CHART:,} of {with_ttft:,} requests ({RULE});")
    assert "count every request" in note
    for figure_id in ("generation", "e2e", "gaps", "length", "timeline", "resources"):
        assert RULE in _note(big.page, figure_id)


def test_summary_figures_count_every_request(big: BigRun) -> None:
    cells = summary_cells(big.page)
    ttft = _by_model(big, "ttft_ms")
    rates = _by_model(big, "eval_tokens_per_s")
    for model in MODELS:
        row = cells[("sequential", model)]
        assert row["n"] == str(sum(r.model == model for r, _ in _measured(big)))
        assert row["ttft_ms_median"] == f"{median(ttft[model]):,.1f}"
        assert row["ttft_ms_p95"] == f"{quantile(sorted(ttft[model]), 0.95):,.1f}"
        assert row["eval_tokens_per_s_median"] == f"{median(rates[model]):,.1f}"


def test_box_quartiles_count_every_request(big: BigRun) -> None:
    e2e = _by_model(big, "e2e_ms")
    (box,) = [t for t in big.figures["e2e"]["data"] if "q1" in t]
    for name, q1, middle, q3 in zip(box["x"], box["q1"], box["median"], box["q3"], strict=True):
        values = sorted(e2e[name])
        assert [q1, middle, q3] == [round(quantile(values, q), 3) for q in (0.25, 0.5, 0.75)]


def test_the_page_lists_a_selection_of_responses_and_errors(big: BigRun) -> None:
    failed = sum(r.error is not None for r in big.rows)
    assert failed > 100
    assert f"The first 100 of {failed:,} failed requests" in big.page
    assert f"Listed: 200 of {len(big.rows):,} responses" in big.page
    assert len(re.findall(r'<details class="response', big.page)) == 200


def test_the_page_stays_small(big: BigRun) -> None:
    # size, not speed: the share of each chart is bounded, whatever the run's size
    assert len(without_plotly_js(big.page).encode()) < 3_000_000
