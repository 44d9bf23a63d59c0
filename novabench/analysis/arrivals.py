"""The chunk arrivals of many requests at once: `figures.arrivals` of each, to the last bit.

A run of 100,000 requests holds millions of arrival times; gaps and their quantiles computed in
one pass of numpy over all of them take a fraction of a second, where a Python loop per request
takes many. Same arithmetic as `figures.arrivals` and `figures.quantile` (a test holds them equal
bit for bit): the gaps are (b - a) * 1000.0, the quantiles the same interpolation between closest
ranks with the same lerp.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import numpy as np

GAP_QUANTILES = (0.50, 0.95, 0.99)


class Arrivals(NamedTuple):
    """What the figures need of a request's chunk arrivals: how many, the first and the last,
    and the gaps between consecutive ones (ms). A tuple: a run makes one per request."""

    chunks: int
    first_s: float | None
    last_s: float | None
    gap_p50_ms: float | None
    gap_p95_ms: float | None
    gap_p99_ms: float | None
    gap_max_ms: float | None


def arrivals_of_many(offsets: Sequence[Sequence[float]]) -> list[Arrivals]:
    """`figures.arrivals(o)` for every `o` in `offsets`, in order."""
    if not offsets:
        return []
    import numpy as np  # only when figures are made: not at start-up

    counts = np.fromiter((len(o) for o in offsets), dtype=np.int64, count=len(offsets))
    joined = array("d")
    for each in offsets:
        joined.extend(each)  # a copy of an array('d') (Reads.results_for_figures), else floats
    flat = np.frombuffer(joined, dtype=np.float64) if len(joined) else np.zeros(0)
    ends = np.cumsum(counts)
    starts = ends - counts
    quantiles, maxima = _gap_figures(flat, counts, starts)
    has_any, has_gaps = counts > 0, counts >= 2
    last_index = max(len(flat) - 1, 0)
    first = flat[np.minimum(starts, last_index)] if len(flat) else np.zeros(len(counts))
    last = flat[np.maximum(ends - 1, 0)] if len(flat) else np.zeros(len(counts))
    columns = [
        counts.tolist(),
        _or_none(first, has_any),
        _or_none(last, has_any),
        *(_or_none(q, has_gaps) for q in quantiles),
        _or_none(maxima, has_gaps),
    ]
    return list(map(Arrivals._make, zip(*columns, strict=True)))


def _or_none(values: np.ndarray, present: np.ndarray) -> list[float | None]:
    """Python floats where `present`, None elsewhere."""
    made = values.astype(object)
    made[~present] = None
    return list(made.tolist())


def _gap_figures(
    flat: np.ndarray, counts: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per request, each GAP_QUANTILES quantile of its gaps and their maximum (ms); values of
    requests with fewer than two arrivals are meaningless (the caller drops them).

    Requests with about as many gaps (within a power of two) are padded into one matrix and
    sorted row by row: a sort keyed by request first is many times slower on millions of gaps.
    """
    import numpy as np

    n = len(counts)
    gap_counts = np.maximum(counts - 1, 0)
    quantiles = np.zeros((len(GAP_QUANTILES), n))
    maxima = np.zeros(n)
    size_class = np.ceil(np.log2(np.maximum(gap_counts, 1))).astype(np.int64)
    size_class[gap_counts == 0] = -1
    for found in np.unique(size_class[size_class >= 0]).tolist():
        rows = np.flatnonzero(size_class == found)
        mine = gap_counts[rows]
        width = int(mine.max())
        columns = np.arange(width)
        # past its own gaps a row repeats its last one, then reads +inf: it sorts last
        index = starts[rows][:, None] + np.minimum(columns, (mine - 1)[:, None])
        matrix = (flat[index + 1] - flat[index]) * 1000.0
        matrix[columns >= mine[:, None]] = np.inf
        matrix.sort(axis=1)
        picked = np.arange(len(rows))
        last = mine - 1
        for k, q in enumerate(GAP_QUANTILES):
            position = q * last.astype(np.float64)
            low = position.astype(np.int64)  # positions are never negative: truncation is floor
            high = np.minimum(low + 1, last)
            t = position - low
            a, b = matrix[picked, low], matrix[picked, high]
            # numpy's lerp, as figures.quantile computes it
            quantiles[k, rows] = np.where(t < 0.5, a + (b - a) * t, b - (b - a) * (1 - t))
        maxima[rows] = matrix[picked, last]
    return quantiles, maxima
