"""Resource samples over a stretch of a run (one request's lifetime, one load level's span): the
one definition of which samples count, and their peak and mean."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from novabench.records import ResourceSample

# The figures a window is summarised on.
RESOURCE_FIGURES = (
    "cpu_percent",
    "ram_used_bytes",
    "server_cpu_percent",
    "server_rss_bytes",
    "gpu_util_percent",
    "gpu_mem_used_bytes",
    "gpu_power_w",
)


@dataclass(frozen=True)
class WindowStats:
    """Peak and mean of each RESOURCE_FIGURES figure over a window; None where no sample had it."""

    samples: int
    peak: dict[str, float | None]
    mean: dict[str, float | None]


def window(
    samples: Sequence[ResourceSample], start_s: float, end_s: float, nearest: bool = False
) -> Sequence[ResourceSample]:
    """The samples taken within [start_s, end_s] (offsets since the run started).

    `samples` must be in offset order (as the sampler and the store give them). With `nearest`,
    an empty window (a request shorter than the sampling interval) takes the first sample after
    the start instead, whose CPU figures cover the interval that ends at it; failing that, the
    last sample before the start.
    """
    first = bisect.bisect_left(samples, start_s, key=_offset)
    after_last = bisect.bisect_right(samples, end_s, key=_offset)
    inside = samples[first:after_last]
    if not inside and nearest and samples:
        return [samples[first] if first < len(samples) else samples[-1]]
    return inside


def window_stats(
    samples: Sequence[ResourceSample], start_s: float, end_s: float, nearest: bool = False
) -> WindowStats:
    """The peak and mean of every figure over `window(...)`."""
    inside = window(samples, start_s, end_s, nearest)
    peak: dict[str, float | None] = {}
    mean: dict[str, float | None] = {}
    for figure in RESOURCE_FIGURES:
        values = [float(v) for s in inside if (v := getattr(s, figure)) is not None]
        peak[figure] = max(values) if values else None
        mean[figure] = sum(values) / len(values) if values else None
    return WindowStats(len(inside), peak, mean)


def _offset(sample: ResourceSample) -> float:
    return sample.offset_s
