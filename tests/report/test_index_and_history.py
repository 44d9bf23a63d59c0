"""The index and the history page: runs newest first, traces per model and mode, the filters."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from novabench.analysis import statistics as stats
from novabench.report import render_history, render_index
from novabench.storage.store import Store
from tests.history import FAST, SLOW, add_run
from tests.report.chat_latency import HOST, LLAMA, MODES, NEW_RUN, OLD_RUN, QWEN
from tests.report.pages import PLOTLY_BANNER, page_figures, read_page, table_html, without_plotly_js

# ---- index and history --------------------------------------------------------------------


def test_index_lists_runs_newest_first(reports: dict[str, Path]) -> None:
    page = read_page(reports["index"])
    assert page.index(NEW_RUN) < page.index(OLD_RUN)
    assert f'href="runs/{NEW_RUN}.html"' in page and 'href="history.html"' in page
    row = re.search(rf'<tr data-run-id="{NEW_RUN}">(.*?)</tr>', page, re.S)
    assert row is not None
    numbers = re.findall(r'<td class="num">(?:<span[^>]*>)?(\d+)', row.group(1))
    # 2 modes x 3 models x 6 (warm-ups and cold starts are not counted);
    # ghost's 12 failures and qwen's one
    assert numbers == ["36", "13"]


def test_history_has_a_trace_per_model_and_mode(reports: dict[str, Path]) -> None:
    page = read_page(reports["history"])
    figures = page_figures(page)
    assert set(figures) == {f"history-1-{m}" for m in ("generation", "ttft", "e2e", "itl")}
    lines = [t for t in figures["history-1-ttft"]["data"] if t["mode"] == "lines+markers"]
    ttft = {trace["name"]: trace for trace in lines}
    # the missing model never succeeded: no line; modes are kept apart
    assert set(ttft) == {f"{m} ({mode})" for m in (LLAMA, QWEN) for mode in MODES}
    llama = ttft[f"{LLAMA} (sequential)"]
    assert len(llama["x"]) == 2 and llama["x"][0].startswith("2026-11-26")
    assert llama["y"] == [170.0, 170.0]  # old run and new run, sequential requests only
    assert ttft[f"{LLAMA} (parallel)"]["y"] == [270.0]  # only the new run ran in parallel
    assert NEW_RUN in llama["text"][1] and "a80c4f17acd5" in llama["text"][1]
    assert f'href="runs/{NEW_RUN}.html"' in page


def test_empty_database_renders_index_and_history(tmp_path: Path) -> None:
    empty = Store(tmp_path / "empty.duckdb")
    index = read_page(render_index(empty, tmp_path / "out"))
    history = read_page(render_history(empty, tmp_path / "out"))
    assert "No runs yet." in index
    assert "No measurements yet." in history
    assert not PLOTLY_BANNER.search(index) and not PLOTLY_BANNER.search(history)


# ---- history: what moved the numbers, and the filters ---------------------------------------

HISTORY_RUNS = [f"20261127T1{i}0000Z-000{i}" for i in range(1, 6)]


def _history_store(tmp_path: Path) -> Store:
    """Five runs of suite 'mini': the third slower (a regression), then Ollama 0.13.0, then a
    new digest of the model; and a run of another suite, with another model."""
    db = Store(tmp_path / "db.duckdb")
    first, second, third, fourth, fifth = HISTORY_RUNS
    add_run(db, first, 0, FAST)
    add_run(db, second, 60, FAST)
    add_run(db, third, 120, SLOW)
    add_run(db, fourth, 180, SLOW, version="0.13.0")
    add_run(db, fifth, 240, SLOW, version="0.13.0", digest="e" * 64)
    add_run(db, "20261127T170000Z-other", 300, FAST, suite="other <suite>", model="m2")
    return db


def test_history_marks_digest_and_version_changes_and_regressions(tmp_path: Path) -> None:
    db = _history_store(tmp_path)
    page = read_page(render_history(db, tmp_path / "reports"))
    figures = page_figures(page)
    assert set(figures) == {
        f"history-{n}-{m}" for n in (1, 2) for m in ("generation", "ttft", "e2e", "itl")
    }
    ttft = figures["history-1-ttft"]  # suites sorted by name: 'mini' first
    by_name: dict[str, list[dict[str, Any]]] = {}
    for trace in ttft["data"]:
        by_name.setdefault(trace["name"], []).append(trace)
    line = by_name["m"][0]
    assert len(line["x"]) == 5 and line["meta"] == {"suite": "mini", "model": "m", "host": HOST}
    changed = by_name["digest or Ollama changed"][0]
    assert changed["x"] == line["x"][3:] and changed["y"] == line["y"][3:]
    assert "Ollama 0.12.6 → 0.13.0" in changed["text"][0]
    assert "digest dddddddddddd → eeeeeeeeeeee" in changed["text"][1]
    assert changed["marker"]["symbol"] == "diamond-open"
    regression = by_name["regression"][0]
    assert regression["x"] == [line["x"][2]] and regression["y"] == [line["y"][2]]
    change = 100 * (stats.median(SLOW) / stats.median(FAST) - 1)  # type: ignore[operator]
    assert (
        f"regression: TTFT {change:+.1f}% (p = {2 / 12870:.2g}), prompt p1"
        in (regression["text"][0])
    )
    assert HISTORY_RUNS[1] in regression["text"][0]
    assert "improvement" not in by_name
    # a dotted line and a label where something changed
    lines = [s for s in ttft["layout"]["shapes"] if s["type"] == "line"]
    assert sorted(s["x0"] for s in lines) == line["x"][3:]
    labels = [a["text"] for a in ttft["layout"]["annotations"]]
    assert labels == ["Ollama 0.12.6 → 0.13.0", "new digest"]
    # the table of changes: the third run's TTFT and end-to-end latency got slower
    table = table_html(page, "changes-table")
    assert f'<tbody class="group" data-run-id="{HISTORY_RUNS[2]}">' in table
    metrics = re.findall(r'<tr class="finding regression"[^>]*data-metric="([^"]+)"', table)
    assert metrics == ["ttft_ms", "e2e_ms"]
    assert f"+{change:.1f}%" in table
    # untrusted text only ever escaped: in the HTML, and as \u003c in the figures' JSON
    assert "other &lt;suite&gt;" in page and "other <suite>" not in without_plotly_js(page)


def test_history_filters_list_every_suite_model_and_host(tmp_path: Path) -> None:
    db = _history_store(tmp_path)
    page = read_page(render_history(db, tmp_path / "reports"))
    options = {
        name: re.findall(r'<option value="([^"]*)">', block)
        for name, block in re.findall(
            r'<select id="filter-(\w+)" data-filter="\w+">(.*?)</select>', page, re.S
        )
    }
    assert options == {
        "suite": ["", "mini", "other &lt;suite&gt;"],
        "model": ["", "m", "m2"],
        "host": ["", HOST],
    }
    assert re.findall(r'<section class="suite" id="suite-\d" data-suite="([^"]+)">', page) == [
        "mini",
        "other &lt;suite&gt;",
    ]
    facets = {
        run_id: json.loads(html.unescape(value))
        for run_id, value in re.findall(r'<tr data-run-id="([^"]+)" data-facets="([^"]+)">', page)
    }
    assert facets[HISTORY_RUNS[0]] == {"suite": "mini", "model": ["m"], "host": [HOST]}
    assert facets["20261127T170000Z-other"]["suite"] == "other <suite>"
    for figure in page_figures(page).values():  # every trace says what the filters match
        assert all(set(t["meta"]) == {"suite", "model", "host"} for t in figure["data"])
    script = page[page.rindex("<script>") :]
    assert "Plotly.restyle(div, {visible: visible})" in script
    assert "fetch(" not in script and "XMLHttpRequest" not in script
