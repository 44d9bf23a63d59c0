"""The HTML reports: self-contained pages, escaped model output, numbers that match the store."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from novabench.metrics import RequestResult
from novabench.report import render_all, render_history, render_index, render_run
from novabench.store import Store

HOST = "http://127.0.0.1:11434"
NEW_RUN = "20261127T104500Z-3fa1"
OLD_RUN = "20261126T090000Z-aaaa"
MODES = ("sequential", "parallel")
LLAMA, QWEN, GHOST = "llama3.2:3b", "qwen2.5:7b", "ghost:1b"
LLAMA_DIGEST = "sha256:a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"
QWEN_DIGEST = "sha256:845dbda0ea48ed749caafd9e6037047aa19acfcfd82e704d7ca97d631a0b697e"
HOSTILE = "Sure! <script>alert(1)</script> and <img src=x onerror=alert(1)> done."
WARMUP_TTFT_S = 99.0  # absurd on purpose: any statistic that counts a warm-up shows it
TOKENS = 40
TOKEN_GAP_S = 0.02

SUITE_TEXT = """\
name: chat-latency
description: How fast do small chat models answer <short> questions?
models: [llama3.2:3b, qwen2.5:7b, ghost:1b]
prompts:
  - {id: greet, text: "Say hi."}
  - {id: math, text: "What is 2+2?", system: "Be terse."}
modes: [sequential, parallel]
repetitions: 3
warmup: 1
"""

# Client TTFT (s) of every measured request, by (mode, model, prompt): one value per repetition.
TTFT_S = {
    ("sequential", LLAMA, "greet"): [0.10, 0.12, 0.14],
    ("sequential", LLAMA, "math"): [0.20, 0.22, 0.24],
    ("parallel", LLAMA, "greet"): [0.20, 0.22, 0.24],
    ("parallel", LLAMA, "math"): [0.30, 0.32, 0.34],
    ("sequential", QWEN, "greet"): [0.30, 0.32, 0.34],
    ("sequential", QWEN, "math"): [0.40, 0.42, 0.44],
    ("parallel", QWEN, "greet"): [0.40, 0.42, 0.44],
    ("parallel", QWEN, "math"): [0.50, 0.52, None],  # rep 3 failed
}
# Server eval_duration (s) for the 40 generated tokens, by model and mode.
EVAL_S = {
    (LLAMA, "sequential"): 0.4,  # 100 tok/s
    (LLAMA, "parallel"): 0.5,  # 80 tok/s
    (QWEN, "sequential"): 0.8,  # 50 tok/s
    (QWEN, "parallel"): 1.0,  # 40 tok/s
}


def _result(
    mode: str,
    model: str,
    prompt_id: str,
    repetition: int,
    ttft_s: float | None,
    started_at: datetime,
    is_warmup: bool = False,
    text: str = "Hello! How can I help you today?",
    error: str | None = None,
) -> RequestResult:
    if error is not None or ttft_s is None:
        return RequestResult(
            mode=mode,
            model=model,
            host=HOST,
            prompt_id=prompt_id,
            repetition=repetition,
            is_warmup=is_warmup,
            started_at=started_at,
            error=error or "HTTP 500: model runner crashed <b>unexpectedly</b>",
            http_status=None if error else 500,
        )
    offsets = [ttft_s + i * TOKEN_GAP_S for i in range(TOKENS)]
    eval_ns = int(EVAL_S[(model, mode)] * 1e9)
    return RequestResult(
        mode=mode,
        model=model,
        host=HOST,
        prompt_id=prompt_id,
        repetition=repetition,
        is_warmup=is_warmup,
        started_at=started_at,
        start_offset_s=1.0,
        ttft_s=ttft_s,
        e2e_s=offsets[-1] + 0.01,
        chunk_count=TOKENS + 1,
        response_bytes=len(text.encode()),
        token_offsets_s=offsets,
        prompt_eval_count=20,
        prompt_eval_duration_ns=50_000_000,  # 400 tok/s
        eval_count=TOKENS,
        eval_duration_ns=eval_ns,
        load_duration_ns=3_000_000_000 if is_warmup else 15_000_000,
        total_duration_ns=eval_ns + 65_000_000,
        done_reason="stop",
        response_text=text,
        thinking_text="Let me think about <this> first." if model == QWEN else "",
    )


def _add_run(
    store: Store,
    run_id: str,
    started_at: datetime,
    modes: list[str],
    status: str,
    phases: dict[str, float],
) -> None:
    store.create_run(
        {
            "run_id": run_id,
            "started_at": started_at,
            "status": "running",
            "suite_name": "chat-latency",
            "suite_path": "suites/chat-latency.yaml",
            "suite_text": SUITE_TEXT,
            "suite_sha256": "9f2c" * 16,
            "host": HOST,
            "ollama_version": "0.12.3",
            "host_versions": {HOST: "0.12.3"},
            "novabench_version": "0.1.0",
            "modes": modes,
            "repetitions": 3,
            "warmup": 1,
            "options": {"options": {"temperature": 0}, "keep_alive": "5m", "timeout_s": 300.0},
            "system": {
                "os": "Linux 6.8.0",
                "machine": "x86_64",
                "cpu_model": "AMD Ryzen 9 7950X 16-Core Processor",
                "cpu_cores_physical": 16,
                "cpu_cores_logical": 32,
                "ram_bytes": 64 * 2**30,
                "python": "3.11.9",
                "hostname": "bench-box",
            },
            "hostname": "bench-box",
            "pid": 4242,
            "models": [
                _model(LLAMA, True, LLAMA_DIGEST, 2_019_393_189, "llama", "3.2B", "Q4_K_M"),
                _model(QWEN, True, QWEN_DIGEST, 4_683_087_332, "qwen2", "7.6B", "Q4_K_M"),
                _model(GHOST, False, None, None, None, None, None),
            ],
            "prompts": [
                {"prompt_id": "greet", "text": "Say hi.", "system": None},
                {"prompt_id": "math", "text": "What is 2+2?", "system": "Be terse."},
            ],
        }
    )
    at = started_at
    results: list[RequestResult] = []
    for mode in modes:
        for model in (LLAMA, QWEN):
            at += timedelta(seconds=1)
            results.append(_result(mode, model, "greet", 0, WARMUP_TTFT_S, at, is_warmup=True))
        for prompt_id in ("greet", "math"):
            for rep in range(3):
                at += timedelta(seconds=1)
                results.append(
                    _result(
                        mode, GHOST, prompt_id, rep, None, at, error=f"model {GHOST!r} not found"
                    )
                )
                for model in (LLAMA, QWEN):
                    hostile = (mode, model, prompt_id, rep) == ("sequential", LLAMA, "greet", 0)
                    ttft = TTFT_S[(mode, model, prompt_id)][rep]
                    text = HOSTILE if hostile else f"Answer {rep + 1} to {prompt_id}."
                    results.append(_result(mode, model, prompt_id, rep, ttft, at, text=text))
    store.add_results(run_id, list(enumerate(results)))
    for mode, wall_s in phases.items():
        store.add_phase(run_id, mode, started_at + timedelta(seconds=5), wall_s, 12)
    store.finish_run(run_id, status)


def _model(
    name: str,
    found: bool,
    digest: str | None,
    size_bytes: int | None,
    family: str | None,
    parameter_size: str | None,
    quantization: str | None,
) -> dict[str, Any]:
    return {
        "model": name,
        "host": HOST,
        "found": found,
        "digest": digest,
        "size_bytes": size_bytes,
        "family": family,
        "parameter_size": parameter_size,
        "quantization": quantization,
        "options": {"temperature": 0, "num_ctx": 4096},
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Two runs of one suite: an older interrupted sequential-only one, a complete two-mode one."""
    db = Store(tmp_path_factory.mktemp("store") / "db.duckdb")
    _add_run(
        db,
        OLD_RUN,
        datetime(2026, 11, 26, 9, 0, 0),
        ["sequential"],
        "interrupted",
        {"sequential": 7.5},
    )
    _add_run(
        db,
        NEW_RUN,
        datetime(2026, 11, 27, 10, 45, 0),
        ["sequential", "parallel"],
        "complete",
        {"sequential": 6.0, "parallel": 3.2},
    )
    return db


@pytest.fixture(scope="module")
def reports(store: Store, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The pages of both runs, the history and the index, rendered once for every test to read."""
    out = tmp_path_factory.mktemp("out") / "reports"
    run_page, history, index = render_all(store, NEW_RUN, out)
    old_page = render_run(store, OLD_RUN, out)
    pages = {"run": run_page, "old": old_page, "history": history, "index": index}
    for name, path in pages.items():
        print(f"report size: {name:8} {path.stat().st_size / 1e6:6.2f} MB  {path.name}")
    return pages


# ---- helpers ------------------------------------------------------------------------------

PLOTLY_BANNER = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _summary_cells(page: str) -> dict[tuple[str, str], dict[str, str]]:
    """The summary table as {(mode, model): {column: shown text}}."""
    table = page[page.index('<table id="summary-table">') :]
    table = table[: table.index("</table>")]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for row in re.finditer(
        r'<tr data-model="([^"]*)" data-host="[^"]*" data-mode="([^"]*)">(.*?)</tr>', table, re.S
    ):
        columns = re.findall(r'data-col="([^"]+)">(.*?)</td>', row.group(3), re.S)
        cells[(row.group(2), html.unescape(row.group(1)))] = {
            key: re.sub(r"<[^>]+>", "", value).strip() for key, value in columns
        }
    return cells


def _figures(page: str) -> dict[str, dict[str, Any]]:
    blocks = re.findall(
        r'<script type="application/json" id="figure-([^"]+)">(.*?)</script>', page, re.S
    )
    return {figure_id: json.loads(text) for figure_id, text in blocks}


def _without_plotly_js(page: str) -> str:
    start = page.index("/**\n* plotly.js v")
    end = page.index("</script>", start)
    return page[:start] + page[end:]


# ---- every page ---------------------------------------------------------------------------


def test_render_all_writes_the_three_pages_run_page_first(reports: dict[str, Path]) -> None:
    out = reports["index"].parent
    assert reports["run"] == out / "runs" / f"{NEW_RUN}.html"
    assert reports["history"] == out / "history.html"
    assert reports["index"] == out / "index.html"
    leftovers = [
        p.name for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")
    ]
    assert leftovers == []


@pytest.mark.parametrize("name", ["run", "old", "history", "index"])
def test_pages_are_self_contained(reports: dict[str, Path], name: str) -> None:
    page = _read(reports[name])
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for remote in (
        "<script src",
        "<link href",
        "<link rel",
        '<img src="http',
        'src="http',
        "@import",
        "url(http",
    ):
        assert remote not in lowered, remote
    copies = len(PLOTLY_BANNER.findall(page))
    assert copies == (0 if name == "index" else 1)
    if copies:
        outside = _without_plotly_js(page).lower()
        assert "http://" not in outside.replace(HOST, "") and "https://" not in outside
        assert '{"displaylogo": false, "responsive": true}' in page
    assert "novabench 0.1.0" in page  # footer


def test_figures_are_embedded_once_and_cannot_break_out_of_their_script(
    reports: dict[str, Path],
) -> None:
    page = _read(reports["run"])
    figures = _figures(page)
    assert set(figures) == {"ttft", "generation", "e2e", "walls"}
    for figure_id in figures:
        assert page.count(f'id="figure-{figure_id}"') == 1
        assert page.count(f'data-figure="figure-{figure_id}"') == 1
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S):
        assert "<" not in block and ">" not in block and "&" not in block


# ---- run page -----------------------------------------------------------------------------


def test_model_output_appears_only_as_text(reports: dict[str, Path]) -> None:
    page = _read(reports["run"])
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "<b>unexpectedly</b>" not in page and "&lt;b&gt;unexpectedly&lt;/b&gt;" in page
    assert "Let me think about &lt;this&gt; first." in page
    assert "How fast do small chat models answer &lt;short&gt; questions?" in page


def test_summary_matches_the_stored_rows(reports: dict[str, Path]) -> None:
    cells = _summary_cells(_read(reports["run"]))
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
    page = _read(reports["run"])
    best = re.findall(r'<td class="num best" data-col="([^"]+)">([^<]*)</td>', page)
    assert ("ttft_ms_median", "170.0") in best  # lowest latency
    assert ("eval_tokens_per_s_median", "100.0") in best  # highest rate
    assert ("ttft_ms_median", "440.0") not in best
    assert "prompt_tokens_per_s_median" not in dict(best)  # a tie everywhere has no winner


def test_warmups_count_nowhere_but_the_response_list(reports: dict[str, Path]) -> None:
    page = _read(reports["run"])
    for figure in _figures(page).values():
        for trace in figure["data"]:
            values = trace.get("y") or []
            assert all(v < WARMUP_TTFT_S * 1000 for v in values if isinstance(v, int | float))
    assert page.count('class="badge warmup">warm-up 1</span>') == 4  # 2 models x 2 modes
    assert "99,000.0" in page  # shown, marked, in the responses


def test_speedup_shown_when_both_phases_exist(reports: dict[str, Path]) -> None:
    page = _read(reports["run"])
    assert 'id="modes"' in page
    assert 'data-stat="speedup">1.88×' in page  # 6.0 s / 3.2 s
    assert 'data-stat="efficiency">94%' in page  # 1.875 / 2 models found
    assert "6.00 s" in page and "3.20 s" in page
    walls = _figures(page)["walls"]["data"][0]
    assert walls["x"] == ["sequential", "parallel"] and walls["y"] == [6.0, 3.2]


def test_speedup_absent_with_one_phase(reports: dict[str, Path]) -> None:
    page = _read(reports["old"])
    assert 'id="modes"' not in page and "Speedup" not in page
    assert "walls" not in _figures(page)


def test_run_header_and_tables(reports: dict[str, Path]) -> None:
    page = _read(reports["run"])
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
    assert '<div class="banner interrupted"' in _read(reports["old"])


def test_errors_section_lists_every_failure(reports: dict[str, Path]) -> None:
    page = _read(reports["run"])
    table = page[page.index('<table id="errors-table">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == 1 + 12 + 1  # header, ghost in 2 modes x 6, qwen's failure
    assert "model &#39;ghost:1b&#39; not found" in table


def test_responses_are_grouped_by_prompt_then_model(reports: dict[str, Path]) -> None:
    page = _read(reports["run"])
    section = page[page.index('id="responses"') : page.index('id="setup"')]
    assert section.index('<span class="mono">greet</span>') < section.index(
        '<span class="mono">math</span>'
    )
    greet = section[: section.index('<span class="mono">math</span>')]
    assert greet.index(f"<h4>{LLAMA}</h4>") < greet.index(f"<h4>{QWEN}</h4>")
    # 2 modes x (2 warm-ups + 3 models x 2 prompts x 3 repetitions)
    assert section.count('<details class="response') == 2 * (2 + 3 * 2 * 3)
    # qwen thinks: 2 modes x (1 warm-up + 6 requests), less its one failure
    assert section.count('<details class="thinking">') == 2 * (1 + 6) - 1


def test_bad_run_ids_are_refused(store: Store, tmp_path: Path) -> None:
    for bad in ("", "..", "../evil", "a/b", "a\\b", "x..y"):
        with pytest.raises(ValueError):
            render_run(store, bad, tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


# ---- index and history --------------------------------------------------------------------


def test_index_lists_runs_newest_first(reports: dict[str, Path]) -> None:
    page = _read(reports["index"])
    assert page.index(NEW_RUN) < page.index(OLD_RUN)
    assert f'href="runs/{NEW_RUN}.html"' in page and 'href="history.html"' in page
    row = re.search(rf'<tr data-run-id="{NEW_RUN}">(.*?)</tr>', page, re.S)
    assert row is not None
    numbers = re.findall(r'<td class="num">(?:<span[^>]*>)?(\d+)', row.group(1))
    assert numbers == ["36", "13"]  # 2 modes x 3 models x 6; ghost's 12 and qwen's one failure


def test_history_has_a_trace_per_model_and_mode(reports: dict[str, Path]) -> None:
    page = _read(reports["history"])
    figures = _figures(page)
    assert set(figures) == {"history-generation", "history-ttft"}
    ttft = {trace["name"]: trace for trace in figures["history-ttft"]["data"]}
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
    index = _read(render_index(empty, tmp_path / "out"))
    history = _read(render_history(empty, tmp_path / "out"))
    assert "No runs yet." in index
    assert "No measurements yet." in history
    assert not PLOTLY_BANNER.search(index) and not PLOTLY_BANNER.search(history)


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
            "models": [_model(LLAMA, True, LLAMA_DIGEST, 1, "llama", "3.2B", "Q4_K_M")],
            "prompts": [{"prompt_id": "p1", "text": "Hi", "system": None}],
        }
    )
    page = _read(render_run(db, NEW_RUN, tmp_path / "reports"))
    assert '<div class="banner running"' in page
    assert "No requests stored for this run yet." in page
    assert not PLOTLY_BANNER.search(page) and not _figures(page)
