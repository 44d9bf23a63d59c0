"""When a change between two samples counts: a two-sided Mann-Whitney U test at p < 0.01, and
the verdicts it gives. Shared by group comparisons and sweep comparisons."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from novabench.analysis.mann_whitney import mann_whitney_u

SIGNIFICANCE = 0.01  # two-sided p below this is a significant change


MIN_REPETITIONS = 3  # per side; below it no test is attempted


REGRESSION = "regression"


IMPROVEMENT = "improvement"


WITHIN_NOISE = "within noise"


TOO_FEW = "too few repetitions"


NO_DIFFERENCE = "no difference"


@dataclass(frozen=True)
class Metric:
    """A compared figure and which way is worse."""

    name: str
    label: str
    unit: str
    higher_is_worse: bool


METRICS = (
    Metric("ttft_ms", "TTFT", "ms", True),
    Metric("e2e_ms", "end-to-end", "ms", True),
    Metric("itl_ms", "ITL", "ms", True),
    Metric("eval_tokens_per_s", "gen rate, server", "tok/s", False),
    Metric("client_tokens_per_s", "gen rate, client", "tok/s", False),
)
METRIC_NAMES = tuple(m.name for m in METRICS)


def smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value an exact Mann-Whitney U test can reach with these sizes."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a))


def judge(
    a: Sequence[float], b: Sequence[float], higher_is_worse: bool
) -> tuple[str, float | None]:
    """The verdict on samples A (baseline) and B, and the p-value when a test ran."""
    if min(len(a), len(b)) < MIN_REPETITIONS:
        return TOO_FEW, None
    if sorted(a) == sorted(b):
        return NO_DIFFERENCE, None
    u_a, p_value = mann_whitney_u(a, b)  # scipy.stats.mannwhitneyu's figures, ~100x sooner
    # With few repetitions even completely separated samples cannot reach SIGNIFICANCE.
    if smallest_p(len(a), len(b)) >= SIGNIFICANCE:
        return TOO_FEW, p_value
    if not p_value < SIGNIFICANCE:
        return WITHIN_NOISE, p_value
    b_higher = u_a < len(a) * len(b) / 2  # U counts A's wins
    return (REGRESSION if b_higher == higher_is_worse else IMPROVEMENT), p_value


def _p_text(p_value: float | None) -> str:
    return "no test" if p_value is None else f"p = {p_value:.2g}"
