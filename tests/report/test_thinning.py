"""The thinning rule: at most `limit` items, first, last, lowest and highest kept, the same every
time; box statistics of every value."""

from __future__ import annotations

import random

from novabench.analysis.figures import quantile
from novabench.report.thinning import Tally, box_stats, thin, thin_by


def test_thin_keeps_ends_and_extremes_within_the_limit() -> None:
    rng = random.Random(3)
    values = [rng.gauss(100, 15) for _ in range(10_000)]
    tally = Tally()
    kept = thin(list(range(len(values))), lambda i: values[i], 500, tally)
    assert len(kept) == 500 and kept == sorted(kept)
    lowest = min(range(len(values)), key=values.__getitem__)
    highest = max(range(len(values)), key=values.__getitem__)
    assert {0, len(values) - 1, lowest, highest} <= set(kept)
    assert (tally.drawn, tally.total) == (500, 10_000)
    assert thin(list(range(len(values))), lambda i: values[i], 500) == kept  # seeded
    assert tally.note() is not None and "500 of 10,000" in tally.note()  # type: ignore[operator]


def test_thin_keeps_everything_up_to_the_limit_and_says_nothing() -> None:
    tally = Tally()
    assert thin([3, 1, 2], float, 3, tally) == [3, 1, 2]
    assert tally.note() is None


def test_thin_by_keeps_each_groups_extremes() -> None:
    rng = random.Random(5)
    items = [(rng.choice("ab"), rng.random()) for _ in range(5000)]
    kept = thin_by(items, lambda item: item[0], lambda item: item[1], 400)
    assert len(kept) <= 400
    for group in "ab":
        mine = [v for g, v in items if g == group]
        drawn = {v for g, v in kept if g == group}
        assert min(mine) in drawn and max(mine) in drawn


def test_box_stats_are_tukeys_over_every_value() -> None:
    values = [float(v) for v in range(1, 101)] + [1000.0]
    stats = box_stats(values)
    ordered = sorted(values)
    q1, q3 = quantile(ordered, 0.25), quantile(ordered, 0.75)
    assert q1 is not None and q3 is not None
    assert (stats["q1"], stats["median"], stats["q3"]) == (q1, quantile(ordered, 0.5), q3)
    assert stats["lowerfence"] == 1.0  # the lowest value within 1.5 IQR
    assert stats["upperfence"] == 100.0  # 1000 is beyond the whisker
