"""Resource samples over a stretch of a run: one request's lifetime, one load level's span."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from novabench.records import ResourceSample

# The figures lifetime_stats summarises for one request.
LIFETIME_FIGURES = (
    "cpu_percent",
    "ram_used_bytes",
    "server_cpu_percent",
    "server_rss_bytes",
    "gpu_util_percent",
    "gpu_mem_used_bytes",
    "gpu_power_w",
)


def lifetime_stats(
    samples: Sequence[Mapping[str, Any] | ResourceSample],
    start_offset_s: float,
    end_offset_s: float,
) -> dict[str, float | None]:
    """Peak and mean of each LIFETIME_FIGURES figure over one request's lifetime.

    `samples` must be in offset order (as the sampler and Store.samples give them). When none
    falls inside [start, end] (a request shorter than the interval), the first sample after the
    start stands in: its CPU figures cover the interval that ends at it. Failing that, the last
    sample before the start.
    """
    first = bisect.bisect_left(samples, start_offset_s, key=_offset_of)
    after_last = bisect.bisect_right(samples, end_offset_s, key=_offset_of)
    window = samples[first:after_last]
    if not window and samples:
        window = [samples[first] if first < len(samples) else samples[-1]]
    stats: dict[str, float | None] = {}
    for figure in LIFETIME_FIGURES:
        values = [v for v in (_figure_of(s, figure) for s in window) if v is not None]
        stats[f"{figure}_peak"] = float(max(values)) if values else None
        stats[f"{figure}_mean"] = sum(values) / len(values) if values else None
    return stats


def _offset_of(sample: Mapping[str, Any] | ResourceSample) -> float:
    return float(_figure_of(sample, "offset_s"))


def _figure_of(sample: Mapping[str, Any] | ResourceSample, name: str) -> Any:
    return sample.get(name) if isinstance(sample, Mapping) else getattr(sample, name)
