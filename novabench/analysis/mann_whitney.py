"""The two-sided Mann-Whitney U test as scipy.stats.mannwhitneyu computes it (method 'auto',
continuity correction), in plain Python.

scipy's own call costs about 3 ms, most of it argument handling; the history tests every
metric of every group of every run against its previous run (tens of tests a run, hundreds of
thousands when an old database gets its changes made), so the same arithmetic is done here.
tests/analysis/test_mann_whitney.py holds the two equal on random samples, ties and sizes.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

# Both samples larger than this, or any tie: the normal approximation (scipy's 'auto').
EXACT_MAX_SIZE = 8


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(U of A: how often A's values beat B's, ties counting a half; the two-sided p-value)."""
    n_a, n_b = len(a), len(b)
    ranks, tie_sizes = _ranks([*a, *b])
    u_a = sum(ranks[:n_a]) - n_a * (n_a + 1) / 2
    u = max(u_a, n_a * n_b - u_a)
    if (n_a > EXACT_MAX_SIZE and n_b > EXACT_MAX_SIZE) or any(t > 1 for t in tie_sizes):
        p_value = 2 * _normal_sf(u, n_a, n_b, tie_sizes)
    else:
        counts = _u_counts(min(n_a, n_b), max(n_a, n_b))
        p_value = 2 * sum(counts[int(u) :]) / math.comb(n_a + n_b, n_a)
    return u_a, min(max(p_value, 0.0), 1.0)


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Each value's rank from 1 (ties get their average rank), and the size of each tie group."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    sizes = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        sizes.append(end - start + 1)
        start = end + 1
    return ranks, sizes


def _normal_sf(u: float, n_a: int, n_b: int, tie_sizes: Sequence[int]) -> float:
    """P(U >= u) by the normal approximation with tie and continuity corrections."""
    n = n_a + n_b
    tie_term = sum(t**3 - t for t in tie_sizes)
    spread = math.sqrt(n_a * n_b / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    numerator = u - n_a * n_b / 2 - 0.5
    if spread == 0:  # every value tied: U is its mean, the numerator -0.5
        return 1.0 if numerator < 0 else 0.0
    return 0.5 * math.erfc(numerator / spread / math.sqrt(2))


@functools.cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many orderings of m and n distinct values give each U from 0 to m*n: the
    coefficients of the Gaussian binomial [m+n, m]_q = prod (1 - q^(n+i)) / (1 - q^i)."""
    poly = [1]
    for i in range(1, m + 1):
        grown = poly + [0] * (n + i)
        for power, count in enumerate(poly):
            grown[power + n + i] -= count
        for power in range(i, len(grown)):  # divided by (1 - q^i), exactly
            grown[power] += grown[power - i]
        poly = grown[: len(grown) - i]
    return tuple(poly)
