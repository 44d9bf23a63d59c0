"""What analysis derives from stored rows: a request with its figures, the statistics of a group
of requests, the figures of one load level. Made in analysis/, read by report/ and console/."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from novabench.records.stored import FieldAccess, StoredResult

# The per-request figures a group summary describes, in the order tables show them.
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
# What describe() gives of each figure.
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


@dataclass(frozen=True, kw_only=True)
class Figures(FieldAccess):
    """What one request measured, in the units tables show (analysis/figures.py has the rules)."""

    ttft_ms: float | None = None
    e2e_ms: float | None = None
    itl_ms: float | None = None
    tpot_ms: float | None = None
    gap_p50_ms: float | None = None
    gap_p95_ms: float | None = None
    gap_p99_ms: float | None = None
    gap_max_ms: float | None = None
    eval_tokens_per_s: float | None = None
    prompt_tokens_per_s: float | None = None
    client_tokens_per_s: float | None = None
    tps_disagreement: bool | None = None
    load_ms: float | None = None
    total_ms: float | None = None
    queue_ms: float | None = None
    output_tokens: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Request(StoredResult, Figures):
    """A stored result with the figures derived from it."""

    prompt_cached: bool = False  # its prompt rate counts only uncached tokens: not comparable


@dataclass(frozen=True)
class FigureStats(FieldAccess):
    """One figure over a group of requests; every value None when no request had it."""

    n: int = 0
    mean: float | None = None
    median: float | None = None
    p5: float | None = None
    p95: float | None = None
    min: float | None = None
    max: float | None = None
    stdev: float | None = None
    cv: float | None = None
    ci_low: float | None = None  # the 95% bootstrap confidence interval of the median
    ci_high: float | None = None
    outliers: int | None = None  # beyond OUTLIER_IQR_FACTOR interquartile ranges


@dataclass(frozen=True)
class GroupSummary(FieldAccess):
    """The measured requests of one (mode, model, host[, prompt]) group."""

    mode: str
    model: str
    host: str
    prompt_id: str | None  # None: every prompt of the mode and model together
    n: int  # successful measured requests
    errors: int
    figures: dict[str, FigureStats] = field(default_factory=dict)
    checks_total: int = 0  # requests whose checks ran
    checks_passed: int = 0  # ...and passed every one
    prompt_cached: int = 0  # requests whose prompt was served from the KV cache
    tps_disagreements: int = 0  # server and client tokens/s more than 10% apart

    @property
    def check_pass_rate(self) -> float | None:
        return self.checks_passed / self.checks_total if self.checks_total else None

    def stat(self, figure: str, statistic: str) -> float | None:
        """One statistic of one figure: stat('ttft_ms', 'median')."""
        found = self.figures.get(figure)
        return None if found is None else getattr(found, statistic)


@dataclass(frozen=True)
class LevelSummary(FieldAccess):
    """One level of a load sweep: its record and what its requests achieved (analysis/sweeps)."""

    model: str
    host: str
    level_index: int
    kind: str
    level: float
    started_offset_s: float
    wall_s: float
    requests: int  # sent at this level, failed ones included
    delayed_arrivals: int
    stop_reason: str | None
    started_at: datetime | None
    ok: int
    errors: int
    error_rate: float | None
    output_tokens: float
    output_tokens_per_s: float | None
    requests_per_s: float | None
    goodput_rps: float | None  # requests meeting every SLO, per second (None without SLOs)
    slo_met: int | None
    slo_attainment: float | None
    stream_tokens_per_s_p50: float | None
    queue_ms_p50: float | None
    queue_ms_p95: float | None
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    ttft_ms_p99: float | None
    itl_ms_p50: float | None
    itl_ms_p95: float | None
    itl_ms_p99: float | None
    e2e_ms_p50: float | None
    e2e_ms_p95: float | None
    e2e_ms_p99: float | None
    samples: int = 0  # resource samples taken during the level
    cpu_percent_mean: float | None = None
    cpu_percent_peak: float | None = None
    server_cpu_percent_mean: float | None = None
    server_cpu_percent_peak: float | None = None
    server_rss_bytes_peak: float | None = None
    ram_used_bytes_peak: float | None = None
    gpu_util_percent_mean: float | None = None
    gpu_mem_used_bytes_peak: float | None = None
    gpu_power_w_mean: float | None = None

    def percentile(self, figure: str, q: int) -> float | None:
        """percentile('ttft_ms', 95): one of the level's latency percentiles."""
        value = getattr(self, f"{figure}_p{q}")
        return None if value is None else float(value)


@dataclass(frozen=True)
class FindingRecord(FieldAccess):
    """One metric of one (mode, model, host, prompt) group: a baseline (A) against a run (B).

    What analysis/compare.py's Finding holds; the significant ones of each run against its
    previous comparable run are stored in `run_changes`.
    """

    mode: str
    model: str
    host: str
    prompt_id: str
    metric: str
    run_id: str
    baseline_run_ids: tuple[str, ...]
    n_a: int
    n_b: int
    median_a: float
    median_b: float
    change: float | None  # (B - A) / A; None when A's median is 0
    p_value: float | None  # two-sided Mann-Whitney U; None when no test ran
    verdict: str  # regression, improvement, within noise, too few repetitions, no difference
    notes: tuple[str, ...] = ()  # why the numbers may move: model digest or Ollama changed
