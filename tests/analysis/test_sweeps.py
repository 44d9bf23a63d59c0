"""Load-level arithmetic: throughput, percentiles, SLOs and goodput, saturation, the verdict."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from novabench.analysis.sweeps import (
    limits_of,
    meets_slo,
    saturated_at,
    summarize_level,
    sweeps,
    verdict,
)
from novabench.records import LevelSummary, ResourceSample, StoredResult
from tests.builders import figures, level_record, level_summary, stored_result


def sample(**fields: Any) -> ResourceSample:
    values: dict[str, Any] = dict.fromkeys(ResourceSample.__dataclass_fields__)
    values.update(taken_at=None, **fields)
    return ResourceSample(**values)


def request(
    ttft_ms: float, tokens: int, itl_ms: float, error: str | None = None, **extra: Any
) -> StoredResult:
    """A stored result whose derived figures are exactly the given ones."""
    offsets = [ttft_ms / 1000 + i * itl_ms / 1000 for i in range(tokens)]
    fields: dict[str, Any] = {
        "mode": "load",
        "ttft_s": offsets[0] if offsets else None,
        "e2e_s": (offsets[-1] if offsets else 0.1) + 0.001,
        "token_offsets_s": offsets,
        "eval_count": tokens,
        "error": error,
    }
    return stored_result(**{**fields, **extra})


LEVEL = level_record(kind="concurrency", level=2.0, wall_s=2.0, started_offset_s=10.0)


def test_throughput_counts_successful_tokens_over_the_level_wall_time() -> None:
    rows = [request(100, 11, 10), request(200, 21, 10), request(50, 5, 10, error="HTTP 500")]
    summary = summarize_level(LEVEL, rows)
    assert summary["requests"] == 3 and summary["ok"] == 2 and summary["errors"] == 1
    assert summary["error_rate"] == pytest.approx(1 / 3)
    assert summary["output_tokens"] == 32  # the failed request's tokens do not count
    assert summary["output_tokens_per_s"] == pytest.approx(16.0)
    assert summary["requests_per_s"] == pytest.approx(1.0)
    # no SLO given: goodput is not defined rather than equal to throughput
    assert summary["goodput_rps"] is None and summary["slo_attainment"] is None


def test_percentiles_are_over_successful_requests() -> None:
    rows = [request(t, 3, 10) for t in (100, 200, 300, 400, 500)] + [
        request(5000, 3, 10, error="stalled")
    ]
    summary = summarize_level(LEVEL, rows)
    assert summary["ttft_ms_p50"] == pytest.approx(300)
    assert summary["ttft_ms_p95"] == pytest.approx(480)  # numpy's linear interpolation
    assert summary["ttft_ms_p99"] == pytest.approx(496)
    assert summary["itl_ms_p50"] == pytest.approx(10)


def test_goodput_counts_requests_meeting_every_slo() -> None:
    rows = [
        request(100, 11, 10),  # meets both
        request(600, 11, 10),  # TTFT too slow
        request(100, 11, 40),  # ITL too slow
        request(100, 1, 10),  # one token: no ITL, so the ITL limit cannot fail it
        request(100, 11, 10, error="boom"),  # failed: never good
    ]
    limits = {"ttft_ms": 500.0, "itl_ms": 20.0}
    summary = summarize_level(LEVEL, rows, limits)
    assert summary["slo_met"] == 2
    assert summary["goodput_rps"] == pytest.approx(2 / 2.0)
    assert summary["slo_attainment"] == pytest.approx(2 / 5)


def test_meets_slo_is_inclusive_at_the_limit() -> None:
    assert meets_slo(figures(ttft_ms=500.0), {"ttft_ms": 500.0})
    assert not meets_slo(figures(ttft_ms=500.1), {"ttft_ms": 500.0})
    assert meets_slo(figures(ttft_ms=1e9), {})


def test_queue_wait_is_server_total_minus_its_parts() -> None:
    rows = [
        request(
            100,
            3,
            10,
            total_duration_ns=900_000_000,
            load_duration_ns=100_000_000,
            prompt_eval_duration_ns=100_000_000,
            eval_duration_ns=200_000_000,
        )
    ]
    assert summarize_level(LEVEL, rows)["queue_ms_p50"] == pytest.approx(500)


def test_resources_are_those_sampled_during_the_level() -> None:
    samples = [
        sample(offset_s=9.0, cpu_percent=99.0, server_cpu_percent=400.0),
        sample(offset_s=10.5, cpu_percent=20.0, server_cpu_percent=100.0),
        sample(offset_s=11.5, cpu_percent=40.0, server_cpu_percent=None),
        sample(offset_s=12.5, cpu_percent=99.0, server_cpu_percent=400.0),
    ]
    summary = summarize_level(LEVEL, [request(100, 3, 10)], samples=samples)
    assert summary["samples"] == 2
    assert summary["cpu_percent_mean"] == pytest.approx(30.0)
    assert summary["cpu_percent_peak"] == pytest.approx(40.0)
    assert summary["server_cpu_percent_mean"] == pytest.approx(100.0)
    assert summary["gpu_util_percent_mean"] is None


def levels(*points: tuple[float, float, float]) -> list[LevelSummary]:
    """Level summaries from (level, tokens/s, e2e p50 ms)."""
    return [
        level_summary(kind="concurrency", level=lv, output_tokens_per_s=tps, e2e_ms_p50=e2e)
        for lv, tps, e2e in points
    ]


def test_linear_growth_is_not_saturation() -> None:
    assert saturated_at(levels((1, 100, 500), (2, 190, 520), (4, 370, 560))) is None


def test_flat_throughput_with_climbing_latency_is_saturation() -> None:
    found = saturated_at(levels((1, 100, 500), (2, 195, 510), (4, 380, 530), (8, 390, 1050)))
    assert found is not None
    assert (found.knee_index, found.seen_index) == (2, 3)
    assert found.gain == pytest.approx(390 / 380 - 1)
    assert found.latency_climb == pytest.approx(1050 / 530 - 1)


def test_flat_throughput_without_latency_climb_is_not_saturation() -> None:
    # a client-side limit (or a tiny level step) rather than a server at its limit
    assert saturated_at(levels((1, 100, 500), (2, 101, 505))) is None


def test_saturation_is_judged_against_the_best_level_not_the_previous_one() -> None:
    # level 4 dips (noise); level 8 is no better than level 2, with latency up: saturated at 2
    found = saturated_at(levels((1, 100, 500), (2, 200, 500), (4, 150, 1000), (8, 210, 2000)))
    assert found is not None and found.knee_index == 1 and found.seen_index == 2


def test_small_steps_need_proportionally_small_gains() -> None:
    # 8 -> 10 streams can add at most 25%; +10% is 40% of that, so this is still growing
    assert saturated_at(levels((8, 800, 500), (10, 880, 700))) is None


def test_verdict_names_the_knee_and_the_queue() -> None:
    summaries = levels((1, 100, 500), (2, 102, 1000))
    summaries[1] = replace(summaries[1], queue_ms_p50=480.0)
    text = verdict(summaries, "ollama")
    assert text.startswith("Throughput stops growing at 1 concurrent request (100 tokens/s)")
    assert "at 2 concurrent requests it changed +2% while median latency rose +100%" in text
    assert text.endswith("OLLAMA_NUM_PARALLEL is probably 1.")


def test_verdict_blames_the_hardware_when_streams_slow_down_without_queueing() -> None:
    summaries = levels((1, 100, 500), (2, 110, 950))
    summaries[0] = replace(summaries[0], queue_ms_p50=0.0, itl_ms_p50=10.0)
    summaries[1] = replace(summaries[1], queue_ms_p50=0.0, itl_ms_p50=19.0)
    assert "the hardware, not the number of slots, is the limit" in verdict(summaries)


def test_verdict_without_saturation_says_to_go_higher() -> None:
    text = verdict(levels((1, 100, 500), (2, 200, 500)))
    assert "did not saturate" in text and "2 concurrent requests" in text


def test_verdict_on_rate_levels_speaks_of_requests_per_second() -> None:
    summaries = [
        level_summary(kind="rate", level=r, output_tokens_per_s=t, e2e_ms_p50=e)
        for r, t, e in ((0.5, 50, 400), (1.0, 60, 4000))
    ]
    assert verdict(summaries).startswith("Throughput stops growing at 0.5 requests/s")


def test_verdict_of_a_failing_sweep() -> None:
    summaries = levels((1, 100, 500))
    summaries[0] = replace(summaries[0], stop_reason="failing", error_rate=0.75)
    assert verdict(summaries) == (
        "The sweep stopped at 1 concurrent request: 75% of its requests failed."
    )


def test_sweeps_group_stored_rows_by_model_host_and_level() -> None:
    level_rows = [
        level_record(level_index=i, level=lv, wall_s=1.0) for i, lv in ((1, 2.0), (0, 1.0))
    ]
    results = [
        request(100, 3, 10, load_level=0),
        request(100, 3, 10, load_level=1),
        request(100, 3, 10, load_level=1),
        request(100, 3, 10, load_level=0, is_warmup=True),  # never counted
        request(100, 3, 10, mode="sequential"),  # other modes are not load levels
    ]
    found = sweeps(level_rows, results)
    assert list(found) == [("m", "h")]
    assert [(s["level"], s["requests"]) for s in found[("m", "h")]] == [(1.0, 1), (2.0, 2)]


def test_limits_come_from_the_sweep_facts_stored_with_the_run() -> None:
    load = {"slo": {"ttft_ms": 300, "itl_ms": None, "e2e_ms": 5000}}
    assert limits_of(load) == {"ttft_ms": 300.0, "e2e_ms": 5000.0}
    assert limits_of({"slo": {}}) == {} and limits_of(None) == {}


def test_a_level_without_its_row_is_rebuilt_from_its_requests() -> None:
    # the run was killed during level 1: its requests are stored, its level row never was
    level_rows = [level_record(level_index=0, level=1.0, wall_s=1.0)]
    late = [request(100, 3, 10, load_level=1, start_offset_s=start) for start in (2.0, 2.5)]
    results = [request(100, 3, 10, load_level=0, start_offset_s=0.0), *late]
    load = {"kind": "concurrency", "levels": [1, 2, 4]}  # the sweep's facts, stored with the run
    found = sweeps(level_rows, results, load=load)[("m", "h")]
    assert [(s["level"], s["requests"], s["stop_reason"]) for s in found] == [
        (1.0, 1, None),
        (2.0, 2, "aborted"),
    ]
    assert found[1]["started_offset_s"] == 2.0
    assert found[1].wall_s == pytest.approx(0.5 + (late[1].e2e_s or 0.0))
    assert "stopped (killed or crashed) during 2 concurrent requests" in verdict(found)
    # without the sweep's levels there is nothing to name the level by: it is left out
    assert len(sweeps(level_rows, results)[("m", "h")]) == 1
