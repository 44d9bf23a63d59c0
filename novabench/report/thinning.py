"""What a chart of a big run draws: at most a few thousand requests, the extremes always among them.

Every figure a page states (tables, medians, percentiles, confidence intervals, box quartiles) is
computed over every request; only the marks a chart draws of single requests (a dot, a bar) are
thinned, and the page says so beside the chart. The rule: a chart draws at most
POINTS_PER_CHART requests, shared evenly among its traces; a trace with more keeps its first and
its last request, the ones with its lowest and highest value, and a fixed sample of the rest
(seeded: the same run always draws the same requests). Where a trace holds several models
(a mode's dots across models), each model's share keeps its own extremes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from novabench.analysis.figures import quantile

T = TypeVar("T")

POINTS_PER_CHART = 3000
MIN_PER_TRACE = 200  # a chart of many traces still draws enough of each to show its spread
SEED = 13
RULE = (
    "each model's share keeps its first and last request and its lowest and highest value, "
    "the rest a fixed sample"
)
WHISKER_IQR = 1.5  # the box whiskers' reach, as Plotly draws them from every point


@dataclass
class Tally:
    """How many requests a chart drew of how many it has, for the statement beside it."""

    drawn: int = 0
    total: int = 0

    @property
    def thinned(self) -> bool:
        return self.drawn < self.total

    def note(self, exact: str = "every figure on this page counts them all") -> str | None:
        """'Drawn: 3,000 of 100,000 requests (...)'; None when the chart draws every one."""
        if not self.thinned:
            return None
        return f"Drawn: {self.drawn:,} of {self.total:,} requests ({RULE}); {exact}."


def per_trace(traces: int, budget: int = POINTS_PER_CHART) -> int:
    """How many requests each of a chart's `traces` may draw."""
    return max(MIN_PER_TRACE, budget // max(traces, 1))


def thin(
    items: Sequence[T],
    value: Callable[[T], float | None],
    limit: int,
    tally: Tally | None = None,
) -> list[T]:
    """At most `limit` of `items`, in their order: the first, the last, the lowest and the highest
    `value`, and a seeded sample of the rest. All of them when there are no more than `limit`."""
    count = len(items)
    if tally is not None:
        tally.total += count
    if count <= limit:
        if tally is not None:
            tally.drawn += count
        return list(items)
    keep = {0, count - 1}
    valued = [(v, i) for i, item in enumerate(items) if (v := value(item)) is not None]
    if valued:
        keep |= {min(valued)[1], max(valued)[1]}
    rest = [i for i in range(count) if i not in keep]
    keep |= set(random.Random(SEED).sample(rest, max(0, limit - len(keep))))
    if tally is not None:
        tally.drawn += len(keep)
    return [items[i] for i in sorted(keep)]


def thin_by(
    items: Sequence[T],
    key: Callable[[T], Any],
    value: Callable[[T], float | None],
    limit: int,
    tally: Tally | None = None,
) -> list[T]:
    """`thin` of each group of `items` with the same `key` (a model), `limit` shared evenly
    among the groups; in their order."""
    groups: dict[Any, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(key(item), []).append(index)
    share = max(1, limit // max(len(groups), 1))
    kept = sorted(
        i
        for members in groups.values()
        for i in thin(members, lambda i: value(items[i]), share, tally)
    )
    return [items[i] for i in kept]


def box_stats(values: Sequence[float]) -> dict[str, float]:
    """Quartiles and whisker ends of every value (Tukey's: the most extreme values within 1.5
    interquartile ranges of the box), for a box drawn without its points."""
    ordered = sorted(values)
    q1, middle, q3 = (quantile(ordered, q) for q in (0.25, 0.5, 0.75))
    assert q1 is not None and middle is not None and q3 is not None
    reach = WHISKER_IQR * (q3 - q1)
    return {
        "q1": q1,
        "median": middle,
        "q3": q3,
        "lowerfence": next(v for v in ordered if v >= q1 - reach),
        "upperfence": next(v for v in reversed(ordered) if v <= q3 + reach),
    }


def boxes(
    names: Sequence[str], values: Sequence[Sequence[float]], digits: int = 3
) -> dict[str, Any]:
    """A Box trace's precomputed statistics: x (the names) and one box per name's values."""
    stats = [box_stats(v) for v in values]
    made: dict[str, Any] = {"x": list(names)}
    for key in ("q1", "median", "q3", "lowerfence", "upperfence"):
        made[key] = [round(s[key], digits) for s in stats]
    return made
