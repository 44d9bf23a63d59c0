"""Aggregates over stored results: descriptive statistics, bootstrap CIs, outliers, summaries.

Warm-up and cold-start requests never count towards a statistic of warm, measured requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from novabench.analysis.figures import derive

# Derived per-request figures that summaries aggregate.
FIGURES = (
    "ttft_ms",
    "e2e_ms",
    "itl_ms",
    "tpot_ms",
    "eval_tokens_per_s",
    "prompt_tokens_per_s",
    "client_tokens_per_s",
    "load_ms",
    "queue_ms",
    "output_tokens",
)
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20261127  # fixed: the same rows always give the same interval
OUTLIER_IQR_FACTOR = 3.0
STATISTICS = (
    "mean",
    "median",
    "p5",
    "p95",
    "min",
    "max",
    "stdev",
    "cv",
    "ci_low",
    "ci_high",
    "outliers",
)
# A prompt counts as served from the KV cache when its prompt tokens/s is this many times the
# slowest (uncached) rate seen for the same host, model and prompt in the run.
PROMPT_CACHE_FACTOR = 5.0


def _clean(values: Iterable[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation), ignoring missing values."""
    data = _clean(values)
    return float(np.percentile(data, q)) if data.size else None


def median(values: Iterable[float | None]) -> float | None:
    return percentile(values, 50)


def median_ci(values: Iterable[float | None]) -> tuple[float, float] | None:
    """95% percentile-bootstrap confidence interval of the median; None below 2 values."""
    data = _clean(values)
    if data.size < 2:
        return None
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
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


def outlier_flags(values: Sequence[float | None]) -> list[bool]:
    """True for each value beyond OUTLIER_IQR_FACTOR interquartile ranges outside the quartiles."""
    data = _clean(values)
    if data.size < 4:
        return [False] * len(values)
    q1, q3 = np.percentile(data, [25, 75])
    low = q1 - OUTLIER_IQR_FACTOR * (q3 - q1)
    high = q3 + OUTLIER_IQR_FACTOR * (q3 - q1)
    return [v is not None and not low <= v <= high for v in values]


def describe(values: Iterable[float | None]) -> dict[str, Any]:
    """n, mean, median, p5, p95, min, max, stdev, cv, 95% CI of the median, outlier count."""
    data = _clean(values)
    if not data.size:
        return {"n": 0, **dict.fromkeys(STATISTICS)}
    stdev = float(np.std(data, ddof=1)) if data.size > 1 else None
    mean = float(np.mean(data))
    ci = median_ci(data)
    return {
        "n": int(data.size),
        "mean": mean,
        "median": float(np.median(data)),
        "p5": float(np.percentile(data, 5)),
        "p95": float(np.percentile(data, 95)),
        "min": float(np.min(data)),
        "max": float(np.max(data)),
        "stdev": stdev,
        "cv": stdev / mean if stdev is not None and mean else None,
        "ci_low": ci[0] if ci else None,
        "ci_high": ci[1] if ci else None,
        "outliers": sum(outlier_flags(list(data))),
    }


def ci_half_width_ratio(values: Iterable[float | None]) -> float | None:
    """Half the width of the median's CI over the median: the precision auto-repetition targets."""
    data = _clean(values)
    ci = median_ci(data)
    mid = float(np.median(data)) if data.size else 0.0
    if ci is None or not mid:
        return None
    return (ci[1] - ci[0]) / 2 / abs(mid)


def is_measured(row: dict[str, Any]) -> bool:
    """A warm, counted request: neither a warm-up nor a cold start."""
    return not row.get("is_warmup") and not row.get("is_cold")


def with_figures(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each stored result row with its derived figures and a prompt-cache flag added."""
    derived = [{**row, **derive(row)} for row in rows]
    slowest: dict[tuple[Any, ...], float] = {}
    for row in derived:
        rate = row["prompt_tokens_per_s"]
        key = (row.get("host"), row.get("model"), row.get("prompt_id"))
        if rate is not None:
            slowest[key] = min(rate, slowest.get(key, rate))
    for row in derived:
        rate = row["prompt_tokens_per_s"]
        reference = slowest.get((row.get("host"), row.get("model"), row.get("prompt_id")))
        row["prompt_cached"] = bool(
            row.get("prompt_eval_count")
            and (rate is None or (reference and rate > PROMPT_CACHE_FACTOR * reference))
        )
    return derived


def summarize(
    rows: Iterable[dict[str, Any]], keys: Sequence[str] = ("mode", "model", "host")
) -> list[dict[str, Any]]:
    """One summary per group of measured results, in first-seen order.

    Each summary has the group keys, `n` (successful requests), `errors`, `checks_passed` /
    `checks_total` where checks ran, and for every figure `<figure>_<stat>` for each statistic
    of `describe` (median, p95, ci_low, ci_high, cv, ...).
    """
    all_rows = with_figures(rows)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in all_rows:
        if is_measured(row):
            groups[tuple(row[k] for k in keys)].append(row)
    summaries = []
    for key, members in groups.items():
        ok = [r for r in members if r.get("error") is None]
        summary: dict[str, Any] = dict(zip(keys, key, strict=True))
        summary["n"] = len(ok)
        summary["errors"] = len(members) - len(ok)
        uncached = [r for r in ok if not r["prompt_cached"]]
        for figure in FIGURES:
            # A cached prompt's rate counts only the uncached tokens' time: not comparable.
            source = uncached if figure == "prompt_tokens_per_s" else ok
            for stat, value in describe(r[figure] for r in source).items():
                if stat != "n":
                    summary[f"{figure}_{stat}"] = value
        check_results = [r["checks"] for r in ok if r.get("checks")]
        summary["checks_total"] = len(check_results)
        summary["checks_passed"] = sum(all(c.values()) for c in check_results)
        summary["check_pass_rate"] = (
            summary["checks_passed"] / len(check_results) if check_results else None
        )
        summary["prompt_cached"] = sum(r["prompt_cached"] for r in ok)
        summary["tps_disagreements"] = sum(bool(r["tps_disagreement"]) for r in ok)
        summaries.append(summary)
    return summaries
