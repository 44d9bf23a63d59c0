"""Chunk arrivals of many requests at once (numpy) equal each request's own, to the last bit; the
exact bootstrap interval of a big group's median agrees with the resampled one."""

from __future__ import annotations

import random
from array import array

import pytest

from novabench.analysis import statistics
from novabench.analysis.arrivals import arrivals_of_many
from novabench.analysis.figures import arrivals


def _offsets(rng: random.Random, count: int) -> list[float]:
    at, made = rng.uniform(0.01, 2.0), []
    for _ in range(count):
        made.append(at)
        at += rng.expovariate(50.0) * (40 if rng.random() < 0.01 else 1)  # a stall now and then
    return made


def test_many_at_once_equal_one_by_one_bit_for_bit() -> None:
    rng = random.Random(7)
    # every size class, empty and single arrivals, one long stream, repeated gaps
    counts = [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100, 129, 1000, 4097]
    counts += [rng.randrange(0, 300) for _ in range(400)]
    offsets: list[list[float]] = [_offsets(rng, n) for n in counts]
    offsets.append([1.0, 1.5, 2.0, 2.5])  # equal gaps
    offsets.append([0.5, 0.5, 0.5])  # zero gaps
    assert arrivals_of_many(offsets) == [arrivals(o) for o in offsets]
    compact = [array("d", o) for o in offsets]  # as Reads.results_for_figures gives them
    assert arrivals_of_many(compact) == [arrivals(o) for o in offsets]


def test_nothing_to_compute() -> None:
    assert arrivals_of_many([]) == []
    assert arrivals_of_many([[], []]) == [arrivals([]), arrivals([])]


@pytest.mark.parametrize("count", [1001, 1500, 2000])
def test_a_big_groups_interval_is_the_bootstraps(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(count)
    values = [rng.lognormvariate(5.0, 0.5) for _ in range(count)]
    exact = statistics.median_ci(values)
    monkeypatch.setattr(statistics, "RESAMPLED_MAX_VALUES", 10**9)
    resampled = statistics.median_ci(values)
    assert exact is not None and resampled is not None
    middle = statistics.median(values)
    assert middle is not None and exact[0] < middle < exact[1]
    width = resampled[1] - resampled[0]
    # 2,000 resamples vary by a few percent of the width: the exact bounds are within that
    assert abs(exact[0] - resampled[0]) < 0.1 * width
    assert abs(exact[1] - resampled[1]) < 0.1 * width
