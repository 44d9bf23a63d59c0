"""The suite's `load` section: a sweep of concurrency levels or Poisson arrival rates, with SLOs."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from novabench.config.loader import located_error

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict()]

# More streams than this at once is beyond what novabench is measured to keep accurate (make perf).
MAX_STREAMS = 2048
# Defaults when neither requests_per_level nor duration_s is given.
REQUESTS_PER_STREAM = 4  # a concurrency level sends this many requests per stream (at least 8)
DEFAULT_RATE_WINDOW_S = 10.0  # a rate level sends the arrivals of this many seconds (at least 8)
MIN_REQUESTS_PER_LEVEL = 8
# Caps checked by validate (a day of one level; a million requests; a long but finite sweep).
MAX_REQUESTS_PER_LEVEL = 1_000_000
MAX_LEVEL_DURATION_S = 86_400.0
MAX_LEVELS = 64


class LoadSLO(BaseModel):
    """What a request must meet to count towards goodput; a limit left out is not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    expected: ClassVar[str] = "a mapping of limits, e.g. {ttft_ms: 500, itl_ms: 100}"

    ttft_ms: Float | None = Field(default=None, gt=0, description="time to first token, in ms")
    itl_ms: Float | None = Field(default=None, gt=0, description="inter-token latency, in ms")
    e2e_ms: Float | None = Field(default=None, gt=0, description="whole request, in ms")

    def limits(self) -> dict[str, float]:
        """The limits given, by figure name (ttft_ms, itl_ms, e2e_ms)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class LoadSpec(BaseModel):
    """`modes: [load]`: how the sweep steps up, how long a level lasts, what is good enough."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    expected: ClassVar[str] = (
        "a mapping such as {concurrency: [1, 2, 4, 8], requests_per_level: 32}"
    )

    concurrency: list[Int] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LEVELS,
        description="concurrent requests per level (closed loop: each stream sends its next "
        "request when the last one ends), e.g. [1, 2, 4, 8, 16]",
    )
    rate: list[Float] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LEVELS,
        description="requests per second per level, arriving as a Poisson process (open loop)",
    )
    requests_per_level: Int | None = Field(
        default=None, ge=1, le=MAX_REQUESTS_PER_LEVEL, description="requests sent at each level"
    )
    duration_s: Float | None = Field(
        default=None,
        gt=0,
        le=MAX_LEVEL_DURATION_S,
        description="seconds each level keeps sending requests",
    )
    prompts: list[Text] | None = Field(
        default=None,
        min_length=1,
        description="ids of the suite's prompts to draw from, in turn (default: all of them)",
    )
    slo: LoadSLO | None = None
    early_stop: Bool = Field(
        default=True,
        description="stop the sweep once throughput stops growing while latency climbs",
    )
    max_in_flight: Int = Field(
        default=512,
        ge=1,
        le=MAX_STREAMS,
        description="with rate: the most requests in flight at once (arrivals beyond it wait)",
    )
    seed: Int = Field(default=0, description="seed of the Poisson arrival times")

    @field_validator("concurrency")
    @classmethod
    def _check_concurrency(cls, levels: list[int] | None) -> list[int] | None:
        if levels is None:  # `concurrency: null`, as a stored manifest has it beside `rate`
            return None
        problems = [
            {"at": (i,), "value": v, "message": f"is not allowed: must be 1..{MAX_STREAMS}"}
            for i, v in enumerate(levels)
            if not 1 <= v <= MAX_STREAMS
        ]
        if problems:
            raise located_error(problems)
        return _increasing(levels)

    @field_validator("rate")
    @classmethod
    def _check_rate(cls, levels: list[float] | None) -> list[float] | None:
        if levels is None:
            return None
        problems = [
            {"at": (i,), "value": v, "message": "is not allowed: must be a rate above 0 requests/s"}
            for i, v in enumerate(levels)
            if not (math.isfinite(v) and v > 0)
        ]
        if problems:
            raise located_error(problems)
        return _increasing(levels)

    @model_validator(mode="after")
    def _one_of_each(self) -> LoadSpec:
        if self.concurrency is None and self.rate is None:
            raise ValueError("needs levels: give concurrency: [1, 2, 4, ...] or rate: [...]")
        if self.concurrency is not None and self.rate is not None:
            raise located_error(
                [
                    {
                        "at": ("rate",),
                        "value": self.rate,
                        "message": "is not allowed beside concurrency: a sweep steps one of them",
                    }
                ]
            )
        if self.requests_per_level is not None and self.duration_s is not None:
            raise located_error(
                [
                    {
                        "at": ("duration_s",),
                        "value": self.duration_s,
                        "message": "is not allowed beside requests_per_level: give one of them",
                    }
                ]
            )
        return self

    @property
    def kind(self) -> Literal["concurrency", "rate"]:
        return "concurrency" if self.concurrency is not None else "rate"

    @property
    def levels(self) -> list[float]:
        """The level values in sweep order: stream counts or requests/s."""
        return list(self.concurrency or self.rate or [])

    def requests_at(self, level: float) -> int | None:
        """How many requests a level sends; None when duration_s bounds it instead."""
        if self.duration_s is not None:
            return None
        if self.requests_per_level is not None:
            return self.requests_per_level
        if self.kind == "concurrency":
            return max(MIN_REQUESTS_PER_LEVEL, REQUESTS_PER_STREAM * int(level))
        return max(MIN_REQUESTS_PER_LEVEL, math.ceil(DEFAULT_RATE_WINDOW_S * level))

    def level_size(self) -> str:
        """How long a level lasts, in words."""
        if self.duration_s is not None:
            return f"{self.duration_s:g} s per level"
        if self.requests_per_level is not None:
            return f"{self.requests_per_level} requests per level"
        if self.kind == "concurrency":
            return f"{REQUESTS_PER_STREAM} requests per stream per level (at least 8)"
        return f"{DEFAULT_RATE_WINDOW_S:g} s of arrivals per level (at least 8 requests)"

    def slo_limits(self) -> dict[str, float]:
        return self.slo.limits() if self.slo else {}

    def facts(self) -> dict[str, Any]:
        """What a run's report says of its sweep, stored with the run (`runs.facts`)."""
        return {
            "kind": self.kind,
            "levels": self.levels,
            "level_size": self.level_size(),
            "slo": self.slo_limits(),
            "early_stop": self.early_stop,
            "max_in_flight": self.max_in_flight,
        }


def stored_load_spec(data: dict[str, Any] | None) -> LoadSpec | None:
    """The load section as a run's manifest keeps it (`model_dump`), or None without one."""
    if not data:
        return None
    try:
        return LoadSpec.model_validate(data)
    except ValidationError:
        return None  # written by a novabench whose load section differed


def _increasing(levels: list[Any]) -> list[Any]:
    problems = [
        {
            "at": (i,),
            "value": levels[i],
            "message": f"is not allowed: levels must increase (after {levels[i - 1]!r})",
        }
        for i in range(1, len(levels))
        if levels[i] <= levels[i - 1]
    ]
    if problems:
        raise located_error(problems)
    return levels
