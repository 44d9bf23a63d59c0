"""The run page: what makes each figure defensible (CIs, checks, stops, warnings, cold starts)."""

from __future__ import annotations

import html
import re
from pathlib import Path

from novabench.analysis import statistics as stats
from novabench.analysis.resources import window_stats
from novabench.storage.store import Store
from tests.report.chat_latency import (
    CAPPED,
    COLD_TTFT_S,
    EVAL_S,
    GHOST,
    GIT_COMMIT,
    HOSTILE,
    LLAMA,
    MODES,
    NEW_RUN,
    QWEN,
    TOKEN_GAP_S,
    TOKENS,
    measured_ms,
)
from tests.report.pages import (
    cell_text,
    ci_text,
    page_figures,
    prompt_rows,
    read_page,
    response_html,
    row_cells,
    summary_cells,
    summary_row,
    table_html,
)

# ---- what makes each figure defensible -----------------------------------------------------


def test_summary_shows_the_ci_of_the_median(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    llama = summary_row(page, "sequential", LLAMA)
    values = measured_ms("sequential", LLAMA, "greet") + measured_ms("sequential", LLAMA, "math")
    assert (
        '<span class="ci" title="95% bootstrap confidence interval of the median">'
        f"{ci_text(values)}</span>"
    ) in llama["ttft_ms_median"]
    # every request generated at 100 tok/s: the interval is that one value
    assert "[100.0–100.0]" in llama["eval_tokens_per_s_median"]
    assert summary_cells(page)[("sequential", QWEN)]["checks"] == "5/6"
    assert "cached" in summary_row(page, "parallel", QWEN)["prompt_tokens_per_s_median"]
    assert "cached" not in summary_row(page, "sequential", QWEN)["prompt_tokens_per_s_median"]


def test_per_prompt_table(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    rows = prompt_rows(page)
    assert set(rows) == {
        (mode, model, prompt_id)
        for mode in MODES
        for model in (LLAMA, QWEN, GHOST)
        for prompt_id in ("greet", "math")
    }
    tbodies = re.findall(r'<tbody class="group" data-prompt="([^"]+)">', page)
    assert tbodies == ["greet", "math"]
    for (mode, model, prompt_id), cells in rows.items():
        if model == GHOST:
            assert cell_text(cells["n"]) == "0" and "3 failed" in cells["n"]
            assert cell_text(cells["ttft_ms_median"]) == "—"
            continue
        ttfts = measured_ms(mode, model, prompt_id)
        assert cell_text(cells["n"]) == str(len(ttfts))
        assert cell_text(cells["ttft_ms_median"]) == f"{stats.median(ttfts):,.1f}"
        assert ci_text(ttfts) in cells["ttft_ms_median"]
        assert cell_text(cells["ttft_ms_p95"]) == f"{stats.percentile(ttfts, 95):,.1f}"
        generation = TOKENS / EVAL_S[(model, mode)]
        assert cell_text(cells["eval_tokens_per_s_median"]) == f"{generation:.1f}"
        assert cell_text(cells["client_tokens_per_s_median"]) == f"{40 / 0.78:.1f}"
        assert cell_text(cells["itl_ms_median"]) == "20.0"
        assert cell_text(cells["load_ms_median"]) == "15.0"  # not the cold start's 4 s
        cv = stats.describe(ttfts)["cv"]
        assert cell_text(cells["cv"]) == f"{cv * 100:.1f}%"  # of TTFT, the suite's target
        assert cell_text(cells["outliers"]) == "0"
    # (e2e - ttft) / 39 tokens = (0.78 + 0.01) / 39
    assert cell_text(rows[("sequential", LLAMA, "greet")]["tpot_ms_median"]) == "20.3"
    failed = rows[("parallel", QWEN, "math")]
    assert "1 failed" in failed["n"]
    assert "cached" in failed["prompt_tokens_per_s_median"]
    assert (
        'title="prompt served from the KV cache in 1 request: prompt tokens/s is not comparable"'
        in failed["prompt_tokens_per_s_median"]
    )
    assert "cached" not in rows[("parallel", QWEN, "greet")]["prompt_tokens_per_s_median"]
    assert cell_text(failed["queue_ms_median"]) == "22.5"  # the cached prompt took 5 ms, not 50


def test_check_pass_rates_and_marks(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    rows = prompt_rows(page)
    assert cell_text(rows[("sequential", QWEN, "math")]["checks"]) == "2/3"
    assert "badge error" in rows[("sequential", QWEN, "math")]["checks"]
    assert cell_text(rows[("sequential", LLAMA, "math")]["checks"]) == "3/3"
    assert cell_text(rows[("parallel", QWEN, "math")]["checks"]) == "2/2"
    assert cell_text(rows[("sequential", GHOST, "math")]["checks"]) == "—"
    # descriptions from the suite: the prompt's own check merged over the suite's
    described = (
        'title="contains &#39;4&#39;; does not contain &#39;&lt;b&gt;&#39;; at most 1 sentence"'
    )
    assert described in rows[("sequential", LLAMA, "math")]["checks"]
    assert 'title="at most 1 sentence"' in rows[("sequential", LLAMA, "greet")]["checks"]
    section = page[page.index('id="responses"') : page.index('id="setup"')]
    passed = '<span class="check pass">✓ at most 1 sentence</span>'
    assert section.count(passed) == 2 * 2 * 6 - 1  # every successful measured request
    assert section.count('<span class="check pass">✓ contains &#39;4&#39;</span>') == 2 * 2 * 3 - 2
    assert section.count('<span class="check fail">✗ contains &#39;4&#39;</span>') == 1
    not_bold = '<span class="check pass">✓ does not contain &#39;&lt;b&gt;&#39;</span>'
    assert section.count(not_bold) == 2 * 2 * 3 - 1  # the suite's text, escaped
    failing = response_html(page, '<span class="check fail">')
    # qwen's third sequential answer to math (0.44 s to the first token): FAILED_CHECK
    assert '<span class="badge mode">sequential</span>' in failing
    assert "rep 3" in failing and "TTFT 440.0 ms" in failing
    assert 'data-col="checks"' not in read_page(reports["old"])  # checks never ran: no column


def test_repetition_stops(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    rows = prompt_rows(page)
    reached = "stopped: target ±5% reached after 3"
    for key, cells in rows.items():
        shown = cell_text(cells["repetitions"])
        if key[1] == GHOST:
            assert shown == "—"  # never ran: no stop
        elif key == CAPPED:
            assert shown == "cap of 3 reached at ±8.1%"
        elif key == ("parallel", LLAMA, "math"):
            assert shown == "cap of 3 reached at ±4% (within target)"
        else:
            assert shown == reached, key
    # the cap stands out where it cost precision; elsewhere a tooltip says why it was reached
    assert page.count('<td class="stop capped"') == 1
    assert page.count('<td class="stop" title="parallel mode repeats a prompt on the whole') == 1
    # the old run has no stops, so no repetitions column at all
    assert 'data-col="repetitions"' not in read_page(reports["old"])


def test_warnings_block(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    block = page[page.index('<ul class="notices" id="warnings"') :]
    block = html.unescape(block[: block.index("</ul>")])
    items = re.findall(r"<li.*?</li>", block, re.S)
    notices = [re.sub(r"<[^>]+>", "", item).strip() for item in items]
    assert notices[0].startswith("warning13 requests failed: the statistics count only")
    expected = [
        f"{QWEN}: only 50% of the model in GPU memory — it spilled to CPU; expect lower tokens/s",
        f"{LLAMA}: server and client tokens/s differ by more than 10% in 12 of 12 requests",
        f"{QWEN}: server and client tokens/s differ by more than 10% in 5 of 11 requests",
        "Auto repetitions stopped at the cap without reaching the target ±5% on TTFT in 1 of 8 "
        f"cases: {QWEN} · math (parallel, ±8.1%)",
        f"The suite's repository had uncommitted changes (commit {GIT_COMMIT[:12]} on main)",
        f"note{QWEN}: prompt served from the KV cache in 1 request: prompt tokens/s is not "
        "comparable",
    ]
    for text in expected:
        assert sum(text in notice for notice in notices) == 1, text
    assert len(notices) == 1 + len(expected)  # llama fits in GPU memory: no spill warning
    assert notices[-1].startswith("note")  # notes after warnings
    old = read_page(reports["old"])  # no manifest, no /api/ps figures, no stops
    assert "spilled" not in old and "uncommitted" not in old and "Auto repetitions" not in old


def test_cold_starts_shown_apart_and_counted_nowhere_else(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    table = table_html(page, "cold-table")
    for model in (LLAMA, QWEN):
        row = re.search(rf'<tr data-model="{re.escape(model)}">(.*?)</tr>', table, re.S)
        assert row is not None
        cells = {key: cell_text(value) for key, value in row_cells(row.group(1)).items()}
        warm = stats.median(measured_ms("sequential", model, "greet"))
        assert warm is not None
        assert cells == {
            "cold_ttft": "5,000.0",
            "warm_ttft": f"{warm:,.1f}",
            "cold_load": "4,000.0",
            "warm_load": "15.0",
            "ratio": f"{COLD_TTFT_S * 1000 / warm:.1f}×",
        }
    assert "4 warm-up requests and 2 cold starts excluded" in page
    for figure in page_figures(page).values():
        if figure["data"][0].get("type") in ("box", "violin"):
            for trace in figure["data"]:
                assert all(v < COLD_TTFT_S * 1000 for v in trace["y"])
    assert 'id="cold"' not in read_page(reports["old"])


def test_resource_chart_and_per_request_usage(store: Store, reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    figure = page_figures(page)["resources"]
    lines = {t["name"]: t for t in figure["data"] if t["type"] == "scatter"}
    assert set(lines) == {"CPU (system)", "Ollama server CPU", "RAM used", "Ollama server RSS"}
    samples = store.samples(NEW_RUN)
    assert lines["CPU (system)"]["x"] == [s["offset_s"] for s in samples]
    assert lines["CPU (system)"]["y"] == [s["cpu_percent"] for s in samples]
    assert lines["Ollama server CPU"]["y"][0] == 5.0  # 160% of one core, of 32 cores
    assert lines["Ollama server RSS"]["y"][0] == 3.0  # GiB
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    assert [t["name"] for t in bars] == ["warm-up / cold start", LLAMA, QWEN]
    assert len(bars[1]["x"]) == 12  # every measured request of llama
    assert len(bars[0]["x"]) == 2 * (1 + 2)  # each model's cold start and its 2 warm-ups
    assert "41 samples every 0.5 s" in page
    # the hostile answer's request: its own lifetime's peak and mean
    row = next(r for r in store.results(NEW_RUN) if r["response_text"] == HOSTILE)
    end_s = row.start_offset_s + (row.e2e_s or 0.0)
    usage = window_stats(samples, row.start_offset_s, end_s, nearest=True)
    peak, mean = usage.peak["cpu_percent"], usage.mean["cpu_percent"]
    assert peak is not None and mean is not None
    shown = f"CPU {peak:.0f}% peak, {mean:.0f}% mean · server RSS 3.0 GiB peak"
    assert shown in response_html(page, "&lt;img src=x onerror=alert(1)&gt;")
    old = read_page(reports["old"])
    assert "resources" not in page_figures(old) and "% peak" not in old


def test_token_gap_chart(reports: dict[str, Path]) -> None:
    figure = page_figures(read_page(reports["run"]))["gaps"]
    assert [t["name"] for t in figure["data"]] == ["p50", "p95", "p99"]
    for trace in figure["data"]:
        assert len(trace["y"]) == 2 * 2 * 6 - 1  # every successful measured request
        assert all(v == TOKEN_GAP_S * 1000 for v in trace["y"])
        assert trace["x"][0] == f"{LLAMA}<br>sequential"
    assert "p95/p99 far above p50 expose stalls" in read_page(reports["run"])


def test_manifest_and_models(reports: dict[str, Path]) -> None:
    page = read_page(reports["run"])
    facts = dict(re.findall(r'<dd[^>]*data-fact="([^"]+)">(.*?)</dd>', page, re.S))
    text = {
        key: " ".join(html.unescape(re.sub(r"<[^>]+>", "", value)).split())
        for key, value in facts.items()
    }
    assert text["sha256"] == "9f2c" * 16
    assert text["git"] == f"{GIT_COMMIT[:12]} on main uncommitted changes"
    assert f'title="{GIT_COMMIT}"' in facts["git"]
    assert text["repetitions"].startswith("auto (3..3, target ±5.0% on ttft_ms) per model")
    assert text["cold-start"].startswith("yes")
    assert text["sampling"] == "CPU, memory, GPU every 0.5 s"
    assert text["gpu"] == "NVIDIA GeForce RTX 4070 · 12.0 GiB · driver 550.54.14"
    models = table_html(page, "models-table")
    assert re.findall(r'data-col="context">([^<]*)<', models) == ["131,072", "32,768", "—"]
    assert re.findall(r'data-col="gpu">(?:<span[^>]*>)?([^<]*)<', models) == ["100%", "50%", "—"]
    old = read_page(reports["old"])  # stored before manifests existed
    assert 'data-fact="git"' not in old and 'data-fact="gpu"' not in old
    assert "3 per model, prompt and mode" in old
