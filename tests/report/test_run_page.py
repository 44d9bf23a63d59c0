"""The run page: escaped output, the summary against the store, header, responses, the baseline."""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

import pytest

from novabench.analysis import statistics as stats
from novabench.report import render_run
from novabench.storage.store import Store
from tests.history import FAST, RUN_A, RUN_B, SLOW, add_run, two_runs
from tests.report.chat_latency import (
    GHOST,
    HOST,
    LLAMA,
    LLAMA_DIGEST,
    NEW_RUN,
    QWEN,
    WARMUP_TTFT_S,
    chat_result,
    model_row,
    run_samples,
)
from tests.report.pages import (
    PLOTLY_BANNER,
    cell_text,
    page_figures,
    prompt_rows,
    read_page,
    response_html,
    row_cells,
    summary_cells,
    table_html,
)

# ---- run page -----------------------------------------------------------------------------


def test_model_output_appears_only_as_text(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "<b>unexpectedly</b>" not in page and "&lt;b&gt;unexpectedly&lt;/b&gt;" in page
    assert "Let me think about &lt;this&gt; first." in page
    assert "How fast do small chat models answer &lt;short&gt; questions?" in page


def test_summary_matches_the_stored_rows(reports: dict[str, Path]) -> None:
    cells = summary_cells(read_page(reports["run"]))
    # Six measured TTFTs each; the median is the mean of the middle two, e.g. (0.14 + 0.20) / 2.
    assert cells[("sequential", LLAMA)]["ttft_ms_median"] == "170.0"
    assert cells[("parallel", LLAMA)]["ttft_ms_median"] == "270.0"
    assert cells[("sequential", QWEN)]["ttft_ms_median"] == "370.0"
    # One failure leaves 0.40 0.42 0.44 0.50 0.52: the median is 0.44.
    assert cells[("parallel", QWEN)]["ttft_ms_median"] == "440.0"
    assert cells[("parallel", QWEN)]["n"] == "5"
    assert cells[("parallel", QWEN)]["errors"] == "1"
    # p95 of 0.10 0.12 0.14 0.20 0.22 0.24 (linear): 0.22 + 0.75 * 0.02 = 0.235.
    assert cells[("sequential", LLAMA)]["ttft_ms_p95"] == "235.0"
    # 40 tokens in 0.4 s; prompt 20 tokens in 50 ms; 40 chunks 20 ms apart over 0.78 s.
    assert cells[("sequential", LLAMA)]["eval_tokens_per_s_median"] == "100.0"
    assert cells[("parallel", QWEN)]["eval_tokens_per_s_median"] == "40.0"
    assert cells[("sequential", LLAMA)]["prompt_tokens_per_s_median"] == "400.0"
    assert cells[("sequential", LLAMA)]["client_tokens_per_s_median"] == f"{40 / 0.78:.1f}"
    assert cells[("sequential", LLAMA)]["itl_ms_median"] == "20.0"
    assert cells[("sequential", LLAMA)]["load_ms_median"] == "15.0"  # warm-up loads took 3 s
    assert cells[("sequential", GHOST)]["n"] == "0"
    assert cells[("sequential", GHOST)]["errors"] == "6"
    assert cells[("sequential", GHOST)]["ttft_ms_median"] == "—"


def test_best_values_are_highlighted(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    summary = table_html(page, "summary-table")
    best = re.findall(r'<td class="num best" data-col="([^"]+)"><span class="v">([^<]*)<', summary)
    assert ("ttft_ms_median", "170.0") in best  # lowest latency
    assert ("eval_tokens_per_s_median", "100.0") in best  # highest rate
    assert ("ttft_ms_median", "440.0") not in best
    assert "prompt_tokens_per_s_median" not in dict(best)  # a tie everywhere has no winner
    # Per prompt, the best within each prompt; a rate read from the KV cache is left out of the
    # median (it times only the uncached tokens), so the cell shows the uncached rate.
    rows = prompt_rows(page)
    assert 'class="num best"' not in rows[("parallel", QWEN, "math")]["prompt_tokens_per_s_median"]
    assert cell_text(rows[("parallel", QWEN, "math")]["prompt_tokens_per_s_median"]) == "400.0"


def test_warmups_count_nowhere_but_the_response_list(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    for figure in page_figures(page).values():
        for trace in figure["data"]:
            values = trace.get("y") or []
            assert all(v < WARMUP_TTFT_S * 1000 for v in values if isinstance(v, int | float))
    assert page.count('class="badge warmup">warm-up 1</span>') == 4  # 2 models x 2 modes
    assert "99,000.0" in page  # shown, marked, in the responses


def test_speedup_shown_when_both_phases_exist(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    assert 'id="modes"' in page
    assert 'data-stat="speedup">1.88×' in page  # 6.0 s / 3.2 s
    assert 'data-stat="efficiency">94%' in page  # 1.875 / 2 models found
    assert "6.00 s" in page and "3.20 s" in page
    walls = page_figures(page)["walls"]["data"][0]
    assert walls["x"] == ["sequential", "parallel"] and walls["y"] == [6.0, 3.2]


def test_speedup_absent_with_one_phase(reports: dict[str, Path]) -> None:
    page = read_page(reports["old"])
    assert 'id="modes"' not in page and "Speedup" not in page
    assert "walls" not in page_figures(page)


def test_run_header_and_tables(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    for text in (
        "chat-latency",
        NEW_RUN,
        "2026-11-27 10:45:00 UTC",
        "0.12.3",
        "AMD Ryzen 9 7950X 16-Core Processor",
        "64.0 GiB",
        "bench-box",
        f'title="{LLAMA_DIGEST}">a80c4f17acd5<',
        "2.02 GB",
        "not found on host",
        "Q4_K_M",
        "num_ctx=4096",
        "Be terse.",
        "prompts:\n  - {id: greet",  # the suite file as it was run
    ):
        assert text in page, text
    assert '<div class="banner' not in page  # complete: no banner
    assert '<div class="banner interrupted"' in read_page(reports["old"])


def test_errors_section_lists_every_failure(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    table = page[page.index('<table id="errors-table">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 1 + 12 + 1  # header, ghost in 2 modes x 6, qwen's failure
    assert "model &#39;ghost:1b&#39; not found" in table


def test_responses_are_grouped_by_prompt_then_model(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    section = page[page.index('id="responses"') : page.index('id="setup"')]
    assert section.index('<span class="mono">greet</span>') < section.index(
        '<span class="mono">math</span>'
    )
    greet = section[: section.index('<span class="mono">math</span>')]
    assert greet.index(f"<h4>{LLAMA}</h4>") < greet.index(f"<h4>{QWEN}</h4>")
    # 2 cold starts + 2 modes x (2 warm-ups + 3 models x 2 prompts x 3 repetitions)
    assert section.count('<details class="response') == 2 + 2 * (2 + 3 * 2 * 3)
    assert section.count('<span class="badge cold">cold start</span>') == 2
    # qwen thinks: its cold start and 2 modes x (1 warm-up + 6 requests), less its one failure
    assert section.count('<details class="thinking">') == 1 + 2 * (1 + 6) - 1


def test_bad_run_ids_are_refused(store: Store, tmp_path: Path) -> None:
    for bad in ("", "..", "../evil", "a/b", "a\\b", "x..y"):
        with pytest.raises(ValueError):
            render_run(store, bad, tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


# ---- a small run of its own: an outlier, an old suite text, a model on the CPU ---------------


def test_outliers_checks_of_an_invalid_suite_and_cpu_only_models(tmp_path: Path) -> None:
    db = Store(tmp_path / "db.duckdb")
    started_at = datetime(2026, 11, 28, 8, 0, 0)
    db.create_run(
        {
            "run_id": NEW_RUN,
            "started_at": started_at,
            "status": "running",
            "suite_name": "old-suite",
            # an older novabench took a key this one refuses: no descriptions, but no crash
            "suite_text": "name: old-suite\nmodels: [llama3.2:3b]\nprompts: [Hi]\ntemprature: 1\n",
            "suite_sha256": "0" * 64,
            "host": HOST,
            "novabench_version": "0.1.0",
            "modes": ["sequential"],
            "repetitions": 8,
            "warmup": 0,
            "system": {"gpus": [{"index": 0, "name": "NVIDIA <RTX> 4090", "driver_version": "1"}]},
            "manifest": {"git": None, "repetitions": 8, "cold_start": False},
            "models": [model_row(LLAMA, True, LLAMA_DIGEST, 1, "llama", "3.2B", "Q4_K_M")],
            "prompts": [{"prompt_id": "p1", "text": "Hi", "system": None}],
        }
    )
    ttfts = [0.10, 0.11, 0.10, 0.12, 0.11, 0.10, 0.11, 0.90]  # the last one stalled
    results = [
        chat_result("sequential", LLAMA, "p1", rep, ttft, started_at, checks={"contains": rep != 7})
        for rep, ttft in enumerate(ttfts)
    ]
    db.add_results(NEW_RUN, list(enumerate(results)))
    db.update_model(NEW_RUN, LLAMA, HOST, loaded_size_bytes=2_000_000_000, loaded_vram_bytes=0)
    db.finish_run(NEW_RUN, "complete")
    page = read_page(render_run(db, NEW_RUN, tmp_path / "reports"))
    cells = prompt_rows(page)[("sequential", LLAMA, "p1")]
    # the suite no longer parses: CV and outliers of the default target, end-to-end latency
    assert "CV and outliers are of end-to-end latency" in page
    assert cell_text(cells["outliers"]) == "1"
    assert 'title="1 outlier (beyond 3×IQR), kept"' in cells["outliers"]
    assert cell_text(cells["checks"]) == "7/8" and "title=" not in cells["checks"]
    assert page.count('<span class="badge outlier"') == 1
    stalled = response_html(page, '<span class="badge outlier"')
    assert "rep 8" in stalled and "TTFT 900.0 ms" in stalled
    assert '<span class="check fail">✗ contains</span>' in stalled  # the check's name only
    assert (
        f"{LLAMA}: ran entirely on the CPU (none of its 2.00 GB in GPU memory) although the "
        "machine has NVIDIA &lt;RTX&gt; 4090"
    ) in page
    assert 'data-fact="git">' in page and "not in a git repository" in page
    assert "resources" not in page_figures(page) and 'id="cold"' not in page


# ---- a run that just started --------------------------------------------------------------


def test_a_run_that_just_started_renders_without_charts(tmp_path: Path) -> None:
    db = Store(tmp_path / "db.duckdb")
    db.create_run(
        {
            "run_id": NEW_RUN,
            "started_at": datetime(2026, 11, 27, 10, 45, 0),
            "status": "running",
            "suite_name": "chat-latency",
            "suite_text": "name: chat-latency\nmodels: [llama3.2:3b]\nprompts: [Hi]\n",
            "suite_sha256": "0" * 64,
            "host": HOST,
            "novabench_version": "0.1.0",
            "modes": ["sequential"],
            "repetitions": 3,
            "warmup": 1,
            "models": [model_row(LLAMA, True, LLAMA_DIGEST, 1, "llama", "3.2B", "Q4_K_M")],
            "prompts": [{"prompt_id": "p1", "text": "Hi", "system": None}],
        }
    )
    page = read_page(render_run(db, NEW_RUN, tmp_path / "reports"))
    assert '<div class="banner running"' in page
    assert "No requests stored for this run yet." in page
    assert not PLOTLY_BANNER.search(page) and not page_figures(page)
    # the sampler's first samples arrive before any answer: a chart, so plotly.js, once
    db.add_samples(NEW_RUN, run_samples(datetime(2026, 11, 27, 10, 45, 0), 2.0))
    page = read_page(render_run(db, NEW_RUN, tmp_path / "reports"))
    assert set(page_figures(page)) == {"resources"} and len(PLOTLY_BANNER.findall(page)) == 1


# ---- run page: the baseline block ---------------------------------------------------------


def test_regressions_are_listed_at_the_top_of_the_run_page(tmp_path: Path) -> None:
    db = two_runs(tmp_path)
    db.set_baseline(RUN_B, "last", 10)
    page = read_page(render_run(db, RUN_B, tmp_path / "reports"))
    block = page[
        page.index('id="baseline"') : page.index("</section>", page.index('id="baseline"'))
    ]
    assert page.index('id="baseline"') < page.index('id="manifest"')  # right after the header
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", block)).split())
    assert "1 significant regression, 4 improvements against the baseline" in text
    assert f"Baseline last: run {RUN_A}" in text
    assert "the run fails on a significant regression beyond 10%" in text
    assert f'href="../runs/{RUN_A}.html"' in block
    rows = re.findall(r'<tr class="finding ([^"]*)" data-metric="([^"]+)"(.*?)</tr>', block, re.S)
    verdicts = [(classes, metric) for classes, metric, _ in rows]
    # regressions first, then improvements; the one beyond 10% is marked
    assert verdicts[0] == ("regression failing", "ttft_ms")
    assert [c for c, _ in verdicts[1:]] == ["improvement"] * 4
    ttft = {k: cell_text(v) for k, v in row_cells(rows[0][2]).items()}
    assert ttft["a"] == f"{stats.median(FAST):.1f}" and ttft["b"] == f"{stats.median(SLOW):.1f}"
    change = 100 * (stats.median(SLOW) / stats.median(FAST) - 1)  # type: ignore[operator]
    assert ttft["change"] == f"{change:+.1f}%"
    assert ttft["p"] == f"{2 / 12870:.2g}"  # 8 values wholly below 8 others
    assert "beyond 10%" in rows[0][2]
    assert "1 beyond 10%" in block and "exits with code 4" in block
    assert '<a href="#baseline">Baseline</a>' in page
    # run A had no baseline; nor has the fixture's run: no block at all
    assert 'id="baseline"' not in read_page(render_run(db, RUN_A, tmp_path / "reports"))


def test_baseline_block_says_when_nothing_changed(tmp_path: Path) -> None:
    db = Store(tmp_path / "db.duckdb")
    add_run(db, RUN_A, 0, FAST)
    add_run(db, RUN_B, 1, [v + 0.5 for v in FAST])  # interleaved: noise
    db.set_baseline(RUN_B, "last")
    page = read_page(render_run(db, RUN_B, tmp_path / "reports"))
    assert "No significant change</span>" not in page
    assert re.search(r"<h2>No significant change against the baseline</h2>", page)
    assert 'id="baseline-table"' not in page
    assert 'id="baseline-none">Nothing changed significantly in 5 figures: ' in page
    block = page[page.index('id="baseline"') :]
    block = block[: block.index("</section>")]
    assert "within noise" in block and "beyond" not in block


def test_no_baseline_block_without_a_baseline(reports: dict[str, Path]) -> None:
    for name in ("run", "old"):
        assert 'id="baseline"' not in read_page(reports[name])
