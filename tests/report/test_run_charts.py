"""The run page's charts: medians with their CI, output length, the request timeline, resources."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from novabench.analysis import statistics as stats
from novabench.analysis.figures import queue_ns
from novabench.report import timeline, usage_chart
from novabench.storage.store import Store
from tests.builders import request, resource_sample
from tests.report.chat_latency import EVAL_S, LLAMA, MODES, NEW_RUN, QWEN, TOKENS, measured_ms
from tests.report.pages import page_figures, read_page

# ---- run page: medians with their CI, output length, the request timeline --------------------


def test_median_charts_show_the_bootstrap_ci_as_error_bars(reports: dict[str, Path]) -> None:
    figures = page_figures(read_page(reports["run"]))
    for figure_id, figure in (("ttft", "ttft_ms"), ("generation", "eval_tokens_per_s")):
        medians = [t for t in figures[figure_id]["data"] if t["type"] == "scatter"]
        assert [t["name"] for t in medians] == list(MODES)
        dots = [t for t in figures[figure_id]["data"] if t["type"] == "box"]
        assert sum(len(t["y"]) for t in dots) == 2 * 2 * 6 - 1  # every successful measured one
        for trace in medians:
            mode = trace["name"]
            assert trace["x"] == [f"{LLAMA}<br>{mode}", f"{QWEN}<br>{mode}"]
            for model, x, y, up, down in zip(
                (LLAMA, QWEN),
                trace["x"],
                trace["y"],
                trace["error_y"]["array"],
                trace["error_y"]["arrayminus"],
                strict=True,
            ):
                if figure == "ttft_ms":
                    values = measured_ms(mode, model, "greet") + measured_ms(mode, model, "math")
                else:
                    values = [TOKENS / EVAL_S[(model, mode)]] * len(
                        measured_ms(mode, model, "greet") + measured_ms(mode, model, "math")
                    )
                middle = stats.median(values)
                interval = stats.median_ci(values)
                assert middle is not None and interval is not None
                assert y == pytest.approx(middle, abs=1e-3), x
                assert y + up == pytest.approx(interval[1], abs=2e-3), x
                assert y - down == pytest.approx(interval[0], abs=2e-3), x
                assert trace["error_y"]["symmetric"] is False
    # every request generated at its model's one rate: the interval is that value, no bar
    generation = next(t for t in figures["generation"]["data"] if t["type"] == "scatter")
    assert generation["error_y"]["array"] == [0.0, 0.0]


def test_generation_speed_against_output_length(reports: dict[str, Path]) -> None:
    traces = page_figures(read_page(reports["run"]))["length"]["data"]
    assert [t["name"] for t in traces] == [
        f"{model} · {mode}" for model in (LLAMA, QWEN) for mode in MODES
    ]
    for trace in traces:
        model, mode = trace["name"].split(" · ")
        assert set(trace["x"]) == {TOKENS}
        assert set(trace["y"]) == {TOKENS / EVAL_S[(model, mode)]}
    assert sum(len(t["x"]) for t in traces) == 2 * 2 * 6 - 1


def _bars(figure: dict[str, Any], name: str) -> list[tuple[int, float, float]]:
    """(lane, start s, length s) of every bar of the timeline trace `name`."""
    trace = next(t for t in figure["data"] if t["name"] == name)
    return list(zip(trace["y"], trace["base"], trace["x"], strict=True))


def test_request_timeline_segments_are_the_stored_durations(
    store: Store, reports: dict[str, Path]
) -> None:
    figure = page_figures(read_page(reports["run"]))["timeline"]
    timed = [r for r in store.results(NEW_RUN) if r["e2e_s"] is not None]
    lanes = figure["layout"]["yaxis"]["ticktext"]
    # a lane per mode and model, sequential first; requests that overlap (the 99 s warm-ups)
    # get lanes of their own below it: 'llama3.2:3b · sequential (2)'
    families = [re.sub(r" \(\d+\)$", "", lane) for lane in lanes]
    assert list(dict.fromkeys(families)) == [
        f"{model} · {mode}" for mode in MODES for model in (LLAMA, QWEN)
    ]
    assert families == sorted(families, key=families.index)  # each family's lanes together
    # one transparent bar per request carries the hover: from its send to its last chunk
    requests = _bars(figure, "request")
    assert len(requests) == len(timed)
    for row, (lane, start, length) in zip(timed, requests, strict=True):
        assert families[lane] == f"{row['model']} · {row['mode']}"
        assert start == pytest.approx(row["start_offset_s"], abs=1e-6)
        assert start + length == pytest.approx(row["start_offset_s"] + row["e2e_s"], abs=1e-6)
    for lane in range(len(lanes)):  # no two requests of a lane overlap
        spans = sorted((start, start + length) for y, start, length in requests if y == lane)
        assert all(a[1] <= b[0] + 1e-6 for a, b in zip(spans, spans[1:], strict=False))
    hover = next(t for t in figure["data"] if t["name"] == "request")["hovertext"]
    assert "prompt greet, cold start" in hover[0] and "load: 4,000.0 ms" in hover[0]
    # each request's phases, laid back from its end, are the server's own durations
    segments: dict[str, list[tuple[int, float, float]]] = {}
    for trace in figure["data"]:
        if trace["name"] != "request":
            segments.setdefault(trace["name"], []).extend(
                zip(trace["y"], trace["base"], trace["x"], strict=True)
            )
    for row, (lane, start, _length) in zip(timed, requests, strict=True):
        end = row["start_offset_s"] + row["e2e_s"]
        mine = {
            name: next((s for s in bars if s[0] == lane and start - 1e-6 <= s[1] < end), None)
            for name, bars in segments.items()
        }
        expected = [
            ("generation", row["eval_duration_ns"]),
            ("prompt eval", row["prompt_eval_duration_ns"]),
            ("load", row["load_duration_ns"]),
            ("queue", queue_ns(row)),  # the server's time unaccounted for
        ]
        at = end
        measured = stats.is_measured(row)
        for name, ns in expected:
            if not ns:
                continue  # an empty phase has no segment
            shown = mine[name if measured else timeline.UNMEASURED]
            if not measured:  # warm-ups and cold starts: hatched, one legend item
                shown = next(
                    s
                    for t in figure["data"]
                    if t["name"] == timeline.UNMEASURED
                    for s in zip(t["y"], t["base"], t["x"], strict=True)
                    if s[0] == lane
                    and s[2] * 1e9 == pytest.approx(ns, abs=1e3)
                    and s[1] + s[2] == pytest.approx(at, abs=2e-6)
                )
            assert shown is not None, (row["seq"], name)
            assert shown[2] * 1000 == pytest.approx(ns / 1e6, abs=1e-3)  # ms
            assert shown[1] + shown[2] == pytest.approx(at, abs=2e-6)  # contiguous
            at = shown[1]
        if measured:  # the client and network before the server: from the send on
            network = mine["client & network"]
            assert network is not None
            assert network[1] == pytest.approx(row["start_offset_s"], abs=1e-6)
            assert network[1] + network[2] == pytest.approx(at, abs=2e-6)
    unmeasured = [t for t in figure["data"] if t["name"] == timeline.UNMEASURED]
    assert unmeasured and all(t["marker"]["pattern"]["shape"] == "/" for t in unmeasured)
    assert sum(t["showlegend"] for t in unmeasured) == 1


def test_timeline_gives_overlapping_requests_lanes_of_their_own() -> None:
    rows = [
        request(mode="parallel", model="m", start_offset_s=0.0, e2e_s=2.0),
        request(mode="parallel", model="m", start_offset_s=1.0, e2e_s=2.0),
        request(mode="parallel", model="m", start_offset_s=2.0, e2e_s=1.0),
        request(mode="parallel", model="n", start_offset_s=0.5, e2e_s=1.0),
    ]
    names, lane_of = timeline.lanes(rows, lambda r: r.model, ["parallel"])
    assert names == ["m", "m (2)", "n"]
    assert lane_of == [0, 1, 0, 2]  # the third request starts as the first ends
    failed = request(start_offset_s=1.0, e2e_s=0.5, error="HTTP 500")
    assert timeline.request_segments(failed) == [timeline.Segment("failed", 1.0, 0.5)]


def test_timeline_lanes_stop_growing_at_the_cap() -> None:
    # 100 requests all at once (a load level of 100 streams): 32 lanes, bars share the rest
    rows = [
        request(mode="load", model="m", start_offset_s=i * 0.001, e2e_s=10.0) for i in range(100)
    ]
    names, lane_of = timeline.lanes(rows, lambda r: r.model, ["load"])
    assert len(names) == timeline.MAX_SUB_LANES == 32
    assert lane_of[:32] == list(range(32))
    assert sorted(set(lane_of)) == list(range(32))
    assert lane_of[32] == 0  # the lane that frees first takes the next request


# ---- the resource chart, averaged down ----------------------------------------------------


def test_resource_samples_are_averaged_down_to_a_light_page() -> None:
    samples = [
        resource_sample(offset_s=i * 0.01, cpu_percent=float(i % 2) * 100, ram_used_bytes=2**30)
        for i in range(5001)
    ]
    figure = usage_chart.resource_usage(samples, [], str, None)
    assert figure is not None
    for trace in figure.data:
        assert len(trace.x) <= usage_chart.MAX_SAMPLE_POINTS
    cpu = next(t for t in figure.data if t.name == "CPU (system)")
    # buckets of 3 samples: 0, 100, 0 and 100, 0, 100 ... each shown as its mean
    assert len(cpu.x) == 1667 and cpu.x[0] == 0.01 and cpu.y[:2] == (33.333, 66.667)
    assert usage_chart.downsample(samples[:2000]) == ([dict(s) for s in samples[:2000]], 1)
