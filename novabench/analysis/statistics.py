"""Aggregates over stored results: descriptive statistics, bootstrap CIs, outliers, summaries.

Warm-up and cold-start requests never count towards a statistic of warm, measured requests.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from novabench.analysis.figures import is_measured, quantile
from novabench.records import FIGURES, FigureStats, GroupSummary, Request

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261127  # fixed: the same rows always give the same interval
OUTLIER_IQR_FACTOR = 3.0
# Beyond this many values the bootstrap distribution of the median is computed exactly instead of
# resampled: 2,000 resamples of 100,000 values take seconds per interval, a page has dozens.
RESAMPLED_MAX_VALUES = 1000

GroupKey = tuple[str, str, str, str | None]  # mode, model, host, prompt id (None: every prompt)


def _clean(values: Iterable[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0-100, figures.quantile's definition), ignoring missing values."""
    return quantile(_clean(values), q / 100)


def median(values: Iterable[float | None]) -> float | None:
    return percentile(values, 50)


def median_ci(values: Iterable[float | None]) -> tuple[float, float] | None:
    """95% percentile-bootstrap confidence interval of the median; None below 2 values.

    Up to RESAMPLED_MAX_VALUES values, BOOTSTRAP_RESAMPLES seeded resamples; beyond, the same
    interval from the bootstrap distribution of the median computed exactly (`_exact_median_ci`),
    which the resampled one approaches, at the cost of one pass over the values.
    """
    import numpy as np  # numpy and scipy load when a statistic needs them, not at start-up

    data = np.array(_clean(values), dtype=float)
    if data.size < 2:
        return None
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    if data.size > RESAMPLED_MAX_VALUES:
        return _exact_median_ci(np.sort(data))
    from scipy import stats as scipy_stats

    result = scipy_stats.bootstrap(
        (data,),
        np.median,
        confidence_level=CONFIDENCE,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _exact_median_ci(ordered: Any) -> tuple[float, float]:
    """The percentile interval of the bootstrap median's exact distribution over sorted values.

    A resample's middle value is at most the k-th smallest x_(k) when at least m of its n draws
    are: P = P(Binomial(n, k/n) >= m), m = (n + 1) / 2 (Efron 1979). For an even n the median
    averages the n/2-th and the next: each bound is the mean of theirs.
    """
    import numpy as np
    from scipy.stats import binom

    n = len(ordered)
    share = np.arange(1, n + 1) / n
    tail = (1 - CONFIDENCE) / 2

    def bounds(m: int) -> tuple[float, float]:
        below = binom.sf(m - 1, n, share)  # P(bootstrap median <= x_(k)), rising with k
        low = min(int(np.searchsorted(below, tail)), n - 1)
        high = min(int(np.searchsorted(below, 1 - tail)), n - 1)
        return float(ordered[low]), float(ordered[high])

    if n % 2:
        return bounds((n + 1) // 2)
    (low_a, high_a), (low_b, high_b) = bounds(n // 2), bounds(n // 2 + 1)
    return (low_a + low_b) / 2, (high_a + high_b) / 2


def outlier_flags(values: Sequence[float | None]) -> list[bool]:
    """True for each value beyond OUTLIER_IQR_FACTOR interquartile ranges outside the quartiles."""
    data = _clean(values)
    if len(data) < 4:
        return [False] * len(values)
    q1, q3 = quantile(data, 0.25), quantile(data, 0.75)
    assert q1 is not None and q3 is not None
    low = q1 - OUTLIER_IQR_FACTOR * (q3 - q1)
    high = q3 + OUTLIER_IQR_FACTOR * (q3 - q1)
    return [v is not None and not low <= v <= high for v in values]


def describe(values: Iterable[float | None]) -> FigureStats:
    """n, mean, median, p5, p95, min, max, stdev, cv, 95% CI of the median, outlier count."""
    data = _clean(values)
    if not data:
        return FigureStats()
    import numpy as np

    array = np.array(data, dtype=float)
    stdev = float(np.std(array, ddof=1)) if array.size > 1 else None
    mean = float(np.mean(array))
    ci = median_ci(data)
    return FigureStats(
        n=len(data),
        mean=mean,
        median=quantile(data, 0.5),
        p5=quantile(data, 0.05),
        p95=quantile(data, 0.95),
        min=min(data),
        max=max(data),
        stdev=stdev,
        cv=stdev / mean if stdev is not None and mean else None,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        outliers=sum(outlier_flags(data)),
    )


def ci_half_width_ratio(values: Iterable[float | None]) -> float | None:
    """Half the width of the median's CI over the median: the precision auto-repetition targets."""
    data = _clean(values)
    ci = median_ci(data)
    mid = quantile(data, 0.5) if data else 0.0
    if ci is None or not mid:
        return None
    return (ci[1] - ci[0]) / 2 / abs(mid)


def group_key(request: Request, by_prompt: bool) -> GroupKey:
    return (
        request.mode,
        request.model,
        request.host,
        request.prompt_id if by_prompt else None,
    )


def summarize(
    requests: Iterable[Request],
    by_prompt: bool = False,
    keep: Callable[[Request], bool] = is_measured,
) -> list[GroupSummary]:
    """One summary per group of measured requests (mode, model, host, and prompt when
    `by_prompt`), in first-seen order. Failed requests count as errors, not in the figures."""
    groups: dict[GroupKey, list[Request]] = defaultdict(list)
    for request in requests:
        if keep(request):
            groups[group_key(request, by_prompt)].append(request)
    return [_summary(key, members) for key, members in groups.items()]


def _summary(key: GroupKey, members: Sequence[Request]) -> GroupSummary:
    ok = [r for r in members if r.ok]
    uncached = [r for r in ok if not r.prompt_cached]
    figures = {}
    for figure in FIGURES:
        # A cached prompt's rate counts only the uncached tokens' time: not comparable.
        source = uncached if figure == "prompt_tokens_per_s" else ok
        figures[figure] = describe(getattr(r, figure) for r in source)
    checked = [r.checks for r in ok if r.checks]
    mode, model, host, prompt_id = key
    return GroupSummary(
        mode=mode,
        model=model,
        host=host,
        prompt_id=prompt_id,
        n=len(ok),
        errors=len(members) - len(ok),
        figures=figures,
        checks_total=len(checked),
        checks_passed=sum(all(c.values()) for c in checked),
        prompt_cached=sum(r.prompt_cached for r in ok),
        tps_disagreements=sum(bool(r.tps_disagreement) for r in ok),
    )
