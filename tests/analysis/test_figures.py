"""Per-request figures derived from raw timings, and aggregates over them."""

from __future__ import annotations

import pytest

from novabench.analysis.figures import derive, with_figures
from novabench.analysis.statistics import percentile, summarize
from novabench.records import StoredResult
from novabench.text import one_line, terminal_safe
from tests.builders import stored_result


def test_derived_figures_from_known_timings() -> None:
    row = stored_result(
        ttft_s=0.25,
        e2e_s=1.5,
        token_offsets_s=[0.25, 0.5, 0.75, 1.0, 1.25],
        eval_count=5,
        eval_duration_ns=2_000_000_000,
        prompt_eval_count=30,
        prompt_eval_duration_ns=100_000_000,
        load_duration_ns=5_000_000,
    )
    figures = derive(row)
    assert figures.ttft_ms == 250
    assert figures["e2e_ms"] == 1500
    assert figures.itl_ms == pytest.approx(250)  # 1.0 s over 4 gaps
    assert figures.eval_tokens_per_s == pytest.approx(2.5)  # server: 5 tokens in 2 s
    assert figures.prompt_tokens_per_s == pytest.approx(300)
    assert figures.client_tokens_per_s == pytest.approx(5.0)  # client: 5 tokens over 1.0 s
    assert figures.load_ms == 5


def test_missing_server_fields_give_none_not_errors() -> None:
    figures = derive(stored_result(ttft_s=None, e2e_s=0.1, token_offsets_s=[]))
    assert figures.itl_ms is None and figures.eval_tokens_per_s is None
    assert figures.client_tokens_per_s is None and figures.ttft_ms is None


def test_single_token_has_no_itl() -> None:
    assert derive(stored_result(token_offsets_s=[0.1], eval_count=1)).itl_ms is None


def test_percentiles_ignore_missing_values() -> None:
    assert percentile([1, None, 3, 2], 50) == 2
    assert percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert percentile([None], 50) is None


def test_summary_groups_and_excludes_warmups_and_errors() -> None:
    def row(model: str, ttft: float, **kw: object) -> StoredResult:
        return stored_result(
            mode="parallel", model=model, ttft_s=ttft, token_offsets_s=[ttft], **kw
        )

    rows = [
        row("a", 0.1),
        row("a", 0.3),
        row("a", 0.2),
        row("a", 9.0, is_warmup=True),
        row("a", 0.0, error="boom"),
        row("b", 0.5),
    ]
    summaries = {s.model: s for s in summarize(with_figures(rows))}
    assert summaries["a"].n == 3 and summaries["a"].errors == 1
    assert summaries["a"].stat("ttft_ms", "median") == pytest.approx(200)
    assert summaries["b"].stat("ttft_ms", "p95") == pytest.approx(500)


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("plain text", "plain text"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("bell\x07", "bell\\x07"),
        ("\x9b2J", "\\x9b2J"),  # C1 control sequence introducer
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("emoji 👍🏽 ok", "emoji 👍🏽 ok"),
        ("line\nbreak", "line\\x0abreak"),
    ],
)
def test_terminal_safe_neutralises_control_characters(text: str, safe: str) -> None:
    assert terminal_safe(text) == safe


def test_one_line_keeps_the_end_of_long_text() -> None:
    assert one_line("ab\ncd\x1b", 20) == "ab cd\\x1b"
    assert len(one_line("x" * 50, 12)) == 12
    assert one_line("x" * 50, 12).startswith("…")
