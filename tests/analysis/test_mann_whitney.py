"""The Mann-Whitney U test in plain Python gives scipy.stats.mannwhitneyu's U and p-value."""

from __future__ import annotations

import random

import pytest
from scipy.stats import mannwhitneyu

from novabench.analysis.mann_whitney import EXACT_MAX_SIZE, mann_whitney_u


def _sample(rng: random.Random, size: int, shift: float, tied: bool) -> list[float]:
    if tied:  # few distinct values: many ties
        return [float(rng.randint(0, 6)) + shift for _ in range(size)]
    return [rng.gauss(100.0, 15.0) + shift for _ in range(size)]


@pytest.mark.parametrize("tied", [False, True])
def test_u_and_p_equal_scipys_on_random_samples(tied: bool) -> None:
    rng = random.Random(13 + tied)
    exact = asymptotic = 0
    for _ in range(400):
        n_a, n_b = rng.randint(1, 14), rng.randint(1, 14)
        shift = rng.choice([0.0, 5.0, 20.0, 60.0])
        a, b = _sample(rng, n_a, 0.0, tied), _sample(rng, n_b, shift, tied)
        expected = mannwhitneyu(a, b, alternative="two-sided")
        u_a, p_value = mann_whitney_u(a, b)
        assert u_a == float(expected.statistic), (a, b)
        assert p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-15), (a, b)
        small = n_a <= EXACT_MAX_SIZE or n_b <= EXACT_MAX_SIZE
        exact += small and len(set(a + b)) == n_a + n_b
        asymptotic += not small or len(set(a + b)) < n_a + n_b
    assert exact > 50 or tied
    assert asymptotic > 50


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),  # completely separated
        ([5.0] * 4, [5.0] * 6),  # every value tied
        ([1.0, 2.0, 3.0], [float(v) for v in range(100, 400)]),  # exact, one sample large
        ([float(v) for v in range(40)], [float(v) + 0.5 for v in range(30)]),
    ],
)
def test_edge_cases_equal_scipys(a: list[float], b: list[float]) -> None:
    expected = mannwhitneyu(a, b, alternative="two-sided")
    u_a, p_value = mann_whitney_u(a, b)
    assert u_a == float(expected.statistic)
    assert p_value == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-15)
