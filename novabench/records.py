"""The typed records that cross layers, and the few facts every layer shares.

A request result is filled in by its engine while the request streams; once the run hands it to
the store it is not changed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

# The host of models run in-process by the embedded (llamacpp) engine.
EMBEDDED_HOST = "embedded"


def utcnow() -> datetime:
    """Current UTC time as a naive datetime (the database stores UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class RequestResult:
    """One request's raw facts: client clock readings, server fields, the text, or the error.

    Client times are seconds on `time.perf_counter`, relative to the moment the request was sent.
    `token_offsets_s` holds the arrival time of every chunk that carried content or thinking.
    """

    mode: str
    model: str
    host: str
    prompt_id: str
    repetition: int
    is_warmup: bool
    started_at: datetime
    start_offset_s: float = 0.0  # request sent, seconds after the run started
    ttft_s: float | None = None
    e2e_s: float | None = None
    chunk_count: int = 0
    response_bytes: int = 0
    token_offsets_s: list[float] = field(default_factory=list)
    prompt_eval_count: int | None = None
    prompt_eval_duration_ns: int | None = None
    eval_count: int | None = None
    eval_duration_ns: int | None = None
    load_duration_ns: int | None = None
    total_duration_ns: int | None = None
    done_reason: str | None = None
    response_text: str = ""
    thinking_text: str = ""
    error: str | None = None
    http_status: int | None = None
    is_cold: bool = False  # the first request after unloading the model
    backend: str = "ollama"  # the engine that served it
    checks: dict[str, bool] | None = None  # quality check name -> passed
    load_level: int | None = None  # load mode: the index of the level it was sent at

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ResourceSample:
    """What the machine was doing at one moment of a run."""

    offset_s: float  # seconds since the sampler's t0 (time.perf_counter clock)
    taken_at: datetime  # UTC, naive
    cpu_percent: float  # whole machine, 0-100
    per_core_percent: list[float]
    ram_used_bytes: int
    ram_percent: float
    swap_used_bytes: int
    server_cpu_percent: (
        float | None
    )  # server and its runners, % of one core (like top): 0-100×cores
    server_rss_bytes: int | None
    gpu_util_percent: float | None  # mean over GPUs
    gpu_mem_used_bytes: int | None  # sum over GPUs
    gpu_power_w: float | None  # sum over GPUs
