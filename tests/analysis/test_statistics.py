"""Statistics against known inputs: describe, bootstrap CI, outliers, derived figures, caching."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from novabench.analysis.figures import derive, queue_ns, with_figures
from novabench.analysis.statistics import (
    ci_half_width_ratio,
    describe,
    median_ci,
    outlier_flags,
    summarize,
)
from novabench.records import StoredResult
from tests.builders import stored_result


def test_describe_known_values() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 14.0, None]
    d = describe(values)
    assert d["n"] == 5
    assert d["mean"] == pytest.approx(12.0)
    assert d["median"] == pytest.approx(12.0)
    assert d["min"] == 10.0 and d["max"] == 14.0
    assert d["stdev"] == pytest.approx(math.sqrt(2.5))  # sample stdev, ddof=1
    assert d["cv"] == pytest.approx(math.sqrt(2.5) / 12.0)
    assert d["p5"] == pytest.approx(10.2)  # linear interpolation: 10 + 0.05*4*(11-10)
    assert d["p95"] == pytest.approx(13.8)
    assert d["ci_low"] <= d["median"] <= d["ci_high"]
    assert d["outliers"] == 0


def test_describe_empty_and_single() -> None:
    assert describe([])["n"] == 0 and describe([])["median"] is None
    single = describe([5.0])
    assert single["median"] == 5.0 and single["stdev"] is None and single["ci_low"] is None


def test_median_ci_is_a_bootstrap_interval_and_repeatable() -> None:
    rng = np.random.default_rng(1)
    data = list(rng.normal(100, 10, 200))
    low, high = median_ci(data)
    # for n=200 from N(100, 10) the median's standard error is about 1.25*10/sqrt(200) = 0.89
    assert high - low == pytest.approx(2 * 1.96 * 0.886, rel=0.35)
    assert low < float(np.median(data)) < high
    assert median_ci(data) == (low, high)  # fixed seed: the same rows give the same interval


def test_median_ci_of_constant_values_is_a_point() -> None:
    assert median_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)
    assert median_ci([3.0]) is None


def test_ci_half_width_ratio() -> None:
    assert ci_half_width_ratio([5.0, 5.0, 5.0]) == 0.0
    ratio = ci_half_width_ratio([90.0, 100.0, 110.0, 95.0, 105.0])
    assert ratio is not None and 0 < ratio < 0.2
    assert ci_half_width_ratio([1.0]) is None


def test_outliers_beyond_three_iqr_are_flagged_not_dropped() -> None:
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 100.0, None]
    flags = outlier_flags(values)
    # quartiles 11.25 and 13.75: fences at 3.75 and 21.25
    assert flags == [False, False, False, False, False, True, False]
    assert describe(values)["outliers"] == 1
    assert describe(values)["max"] == 100.0  # still counted in the statistics
    assert outlier_flags([1.0, 50.0, 2.0]) == [False, False, False]  # too few to judge


def test_tpot_queue_and_gap_distribution() -> None:
    row = stored_result(
        ttft_s=0.1,
        e2e_s=0.6,
        token_offsets_s=[0.1, 0.2, 0.3, 0.4, 0.9],
        eval_count=5,
        eval_duration_ns=800_000_000,
        load_duration_ns=10_000_000,
        prompt_eval_duration_ns=40_000_000,
        total_duration_ns=1_000_000_000,
    )
    figures = derive(row)
    assert figures.tpot_ms == pytest.approx(125.0)  # (600 - 100) / 4
    assert figures.gap_p50_ms == pytest.approx(100.0)
    assert figures.gap_max_ms == pytest.approx(500.0)
    assert figures.gap_p99_ms == pytest.approx(488.0)  # numpy's linear rule
    assert figures.gap_p99_ms == pytest.approx(np.percentile([100, 100, 100, 500], 99))
    assert figures.queue_ms == pytest.approx(150.0)  # 1000 - (10 + 40 + 800)
    assert queue_ns(stored_result(total_duration_ns=None)) is None


def test_server_client_disagreement_is_flagged_above_ten_percent() -> None:
    base: dict[str, Any] = {"token_offsets_s": [0.0, 0.5, 1.0], "eval_count": 3}  # 0.5 s apart
    agreeing = derive(stored_result(**base, eval_duration_ns=1_500_000_000))  # 2 tokens/s
    assert agreeing.tps_disagreement is False
    # n tokens over n - 1 gaps: the client figure reads 3/2 of the server's, yet both agree
    assert agreeing.client_tokens_per_s == pytest.approx(3.0)
    disagreeing = derive(stored_result(**base, eval_duration_ns=1_200_000_000))  # 2.5 tokens/s
    assert disagreeing.tps_disagreement is True


def test_prompt_cache_is_detected_against_the_uncached_rate() -> None:
    def row(duration_ns: int) -> StoredResult:
        return stored_result(
            prompt_id="p", prompt_eval_count=100, prompt_eval_duration_ns=duration_ns
        )

    rows = with_figures([row(100_000_000), row(2_000_000), row(90_000_000)])
    assert [r.prompt_cached for r in rows] == [False, True, False]


def test_summary_has_ci_and_excludes_cold_starts() -> None:
    def row(ttft: float, **extra: Any) -> StoredResult:
        return stored_result(prompt_id="p", ttft_s=ttft, token_offsets_s=[ttft], **extra)

    rows = [row(0.1), row(0.2), row(0.3), row(5.0, is_cold=True), row(9.0, is_warmup=True)]
    (summary,) = summarize(with_figures(rows), by_prompt=True)
    ttft = summary.figures["ttft_ms"]
    assert summary.n == 3
    assert ttft.median == pytest.approx(200)
    assert ttft.max == pytest.approx(300)
    assert ttft.ci_low is not None and ttft.ci_high is not None
    assert ttft.ci_low <= 200 <= ttft.ci_high
    assert summary.check_pass_rate is None
