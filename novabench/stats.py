"""Aggregates over stored results: percentiles and per-group summaries (warm-ups never count)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from novabench.metrics import derive

# Derived per-request figures that summaries aggregate.
FIGURES = (
    "ttft_ms",
    "e2e_ms",
    "itl_ms",
    "eval_tokens_per_s",
    "prompt_tokens_per_s",
    "client_tokens_per_s",
    "load_ms",
    "output_tokens",
)


def _clean(values: Iterable[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None], dtype=float)


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation), ignoring missing values."""
    data = _clean(values)
    return float(np.percentile(data, q)) if data.size else None


def median(values: Iterable[float | None]) -> float | None:
    return percentile(values, 50)


def with_figures(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each stored result row with its derived figures added."""
    return [{**row, **derive(row)} for row in rows]


def summarize(
    rows: Iterable[dict[str, Any]], keys: Sequence[str] = ("mode", "model", "host")
) -> list[dict[str, Any]]:
    """One summary per group of measured (non-warm-up) results, in first-seen order.

    Each summary has the group keys, `n` (successful requests), `errors`, and for every figure
    its `<figure>_median` and `<figure>_p95`.
    """
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if not row.get("is_warmup"):
            groups[tuple(row[k] for k in keys)].append(row)
    summaries = []
    for key, members in groups.items():
        ok = with_figures(r for r in members if r.get("error") is None)
        summary: dict[str, Any] = dict(zip(keys, key, strict=True))
        summary["n"] = len(ok)
        summary["errors"] = len(members) - len(ok)
        for figure in FIGURES:
            values = [r[figure] for r in ok]
            summary[f"{figure}_median"] = median(values)
            summary[f"{figure}_p95"] = percentile(values, 95)
        summaries.append(summary)
    return summaries
