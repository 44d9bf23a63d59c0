"""Load charts place discrete levels on a log axis ticked at each level or on a category axis:
never on a linear axis, whose ticks (1.2, 1.4...) would name levels that were never run."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from novabench.report import sweep_charts


def _sweep(levels: list[float], kind: str = "concurrency") -> dict[str, Any]:
    rows = [
        SimpleNamespace(
            level=level,
            name=f"level {level:g}",
            summary=SimpleNamespace(
                output_tokens_per_s=10.0 * (i + 1),
                requests_per_s=1.0 + i,
                goodput_rps=None,
                ttft_ms_p50=100.0 + i,
                ttft_ms_p95=150.0 + i,
                ttft_ms_p99=190.0 + i,
            ),
        )
        for i, level in enumerate(levels)
    ]
    return {"label": "llama3.2", "kind": kind, "levels": rows}


def _figures(sweeps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    made = [
        sweep_charts.throughput(sweeps),
        sweep_charts.request_rates(sweeps),
        sweep_charts.percentiles(sweeps, "ttft_ms", "TTFT (ms)"),
    ]
    return [fig.to_plotly_json() for fig in made if fig is not None]


@pytest.mark.parametrize(
    ("levels", "kind"),
    [([1, 2], "concurrency"), ([1, 2, 3, 4], "concurrency"), ([0.5, 1.5, 2.5], "rate")],
)
def test_levels_that_do_not_double_are_categories(levels: list[float], kind: str) -> None:
    texts = [f"{v:g}" for v in levels]
    figures = _figures([_sweep([float(v) for v in levels], kind)])
    assert len(figures) == 3
    for fig in figures:
        axis = fig["layout"]["xaxis"]
        assert axis["type"] == "category"
        assert list(axis["categoryarray"]) == texts
        for trace in fig["data"]:
            assert list(trace["x"]) == texts  # each point on its own level's category


def test_doubling_levels_are_on_a_log_axis_ticked_at_each_level() -> None:
    levels = [1.0, 2.0, 4.0, 8.0, 16.0]
    for fig in _figures([_sweep(levels)]):
        axis = fig["layout"]["xaxis"]
        assert axis["type"] == "log"
        assert list(axis["tickvals"]) == levels
        assert list(axis["ticktext"]) == ["1", "2", "4", "8", "16"]
        assert all(list(t["x"]) == levels for t in fig["data"])


def test_two_sweeps_share_the_levels_of_both() -> None:
    # one model swept 1, 2; another 1, 3: the axis names 1, 2, 3 in order
    fig = sweep_charts.throughput([_sweep([1.0, 2.0]), _sweep([1.0, 3.0])])
    assert fig is not None
    made = fig.to_plotly_json()
    assert list(made["layout"]["xaxis"]["categoryarray"]) == ["1", "2", "3"]
    assert [list(t["x"]) for t in made["data"]] == [["1", "2"], ["1", "3"]]
