"""Hostile server answers: each becomes an error row with a readable reason, and the run goes on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from novabench import Store, load_suite, run_suite
from tests.conftest import write_suite
from tests.ollama_double import Fault, OllamaDouble
from tests.robustness.conftest import Figures

CASES = [
    (Fault.malformed(after_tokens=1, line=b'{"message": '), "malformed line from server: "),
    (Fault.malformed(after_tokens=1, line=b'{"message": "text"}'), "malformed line from server: "),
    (Fault.malformed(after_tokens=0, line=b"[1, 2, 3]"), "malformed line from server: '[1, 2, 3]'"),
    (Fault.malformed(after_tokens=2, line=b"\xff\xfe\x00garbage"), "malformed line from server: "),
    (Fault.huge_line(10 * 1024 * 1024, after_tokens=1), "line longer than 1 MiB from server"),
    (Fault.endless(), "no complete response within timeout_s=1.5"),
    (
        Fault.not_ndjson("<html><body>Please log in</body></html>"),
        "malformed line from server: '<html><body>Please log in</body></html>'",
    ),
    (Fault.http_status(500, {"error": "llama runner process has terminated"}), "HTTP 500: llama "),
    (Fault.http_status(500), "HTTP 500: (empty body)"),
    (Fault.http_status(503, {"error": "server busy"}), "HTTP 503: server busy"),
    (Fault.http_status(503, "<h1>Service Unavailable</h1>"), "HTTP 503: <h1>Service Unavailable"),
    (Fault.http_status(503, "x" * 5_000_000), "HTTP 503: xxxxxxxx"),
    (
        Fault.redirect("http://elsewhere.example/api/chat"),
        "HTTP 307: redirected to http://elsewhere.example/api/chat "
        "(novabench does not follow redirects)",
    ),
    (Fault.redirect("/login", status=302), "HTTP 302: redirected to /login (novabench does not"),
]


@pytest.mark.parametrize(("fault", "reason"), CASES, ids=lambda v: getattr(v, "kind", ""))
def test_hostile_answer_becomes_an_error_row(
    ollama: OllamaDouble, tmp_path: Path, figures: Figures, fault: Fault, reason: str
) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            ollama.url,
            modes="[sequential]",
            warmup=0,
            models="[llama3.2]",
            timeout_s=1.5,
        )
    )
    ollama.add_fault("llama3.2", fault)
    figures.faults_injected += 1
    store = Store(tmp_path / "db.duckdb")
    started = time.monotonic()
    outcome = run_suite(suite, store)
    rows = store.results(outcome.run_id)
    figures.rows_expected += 4  # 2 prompts x 2 repetitions
    figures.rows_found += len(rows)
    assert len(rows) == 4
    assert rows[0]["error"] is not None and rows[0]["error"].startswith(reason), rows[0]["error"]
    assert len(rows[0]["error"]) < 400
    assert all(r["error"] is None for r in rows[1:])  # the run went on
    assert outcome.exit_code == 1
    assert time.monotonic() - started < 30


def test_several_faults_in_one_parallel_run_lose_no_row(
    ollama: OllamaDouble, tmp_path: Path, figures: Figures
) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s.yaml", ollama.url, warmup=0, repetitions=3, timeout_s=2)
    )
    for fault in (Fault.endless(), Fault.huge_line(2 * 1024 * 1024), Fault.cut(after_tokens=2)):
        ollama.add_fault("llama3.2", fault)
        figures.faults_injected += 1
    ollama.add_fault("nemotron-mini", Fault.redirect("http://x.invalid/"))
    ollama.add_fault("nemotron-mini", Fault.not_ndjson("nope"))
    figures.faults_injected += 2
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)
    rows = store.results(outcome.run_id)
    expected = 2 * 2 * 2 * 3  # modes x models x prompts x repetitions
    figures.rows_expected += expected
    figures.rows_found += len(rows)
    assert len(rows) == expected
    assert sum(r["error"] is not None for r in rows) >= 3


def test_no_rows_were_lost(figures: Figures) -> None:
    """Runs last in this module: the tally of every test above."""
    assert figures.rows_lost == 0
