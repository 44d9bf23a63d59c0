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

    ttft_ms: Float | None = Field(
        default=None, gt=0, description="the longest time to first token, in ms"
    )
    itl_ms: Float | None = Field(
        default=None,
        gt=0,
        description="the longest inter-token latency (a request's mean gap), in ms; a request "
        "with too few tokens to have one is not failed by it",
    )
    e2e_ms: Float | None = Field(
        default=None, gt=0, description="the longest end-to-end latency, in ms"
    )

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
        description="closed loop: the levels, in concurrent streams, each sending its next "
        f"request as soon as its last one ends; increasing, 1 to {MAX_STREAMS:,} each "
        "(e.g. [1, 2, 4, 8, 16]); give this or `rate`",
        json_schema_extra={"expected": "a list of concurrency levels, e.g. [1, 2, 4, 8, 16]"},
    )
    rate: list[Float] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LEVELS,
        description="open loop: the levels, in requests/s arriving as a Poisson process "
        "(exponential gaps, seeded) whatever the server does; increasing, above 0; give this or "
        "`concurrency`",
        json_schema_extra={"expected": "a list of request rates (requests/s), e.g. [0.5, 1, 2]"},
    )
    requests_per_level: Int | None = Field(
        default=None,
        ge=1,
        le=MAX_REQUESTS_PER_LEVEL,
        description="how long a level lasts, in requests sent; give this or `duration_s`",
        json_schema_extra={
            "default_text": f"{REQUESTS_PER_STREAM} per stream (at least "
            f"{MIN_REQUESTS_PER_LEVEL}); for rates, {DEFAULT_RATE_WINDOW_S:g} s of arrivals (at "
            f"least {MIN_REQUESTS_PER_LEVEL})"
        },
    )
    duration_s: Float | None = Field(
        default=None,
        gt=0,
        le=MAX_LEVEL_DURATION_S,
        description="how long a level lasts, in seconds of sending (requests then in flight "
        "finish and count)",
    )
    prompts: list[Text] | None = Field(
        default=None,
        min_length=1,
        description="ids of the suite's prompts the sweep draws from, in turn",
        json_schema_extra={"expected": "a list of prompt ids", "default_text": "all of them"},
    )
    slo: LoadSLO | None = Field(
        default=None, description="the limits a request must meet to count towards goodput"
    )
    early_stop: Bool = Field(
        default=True,
        description="stop the sweep one level past the knee, once the server saturates "
        "(throughput stops growing while latency climbs); a level where half the requests or "
        "more failed stops it either way",
    )
    max_in_flight: Int = Field(
        default=512,
        ge=1,
        le=MAX_STREAMS,
        description="with `rate`: the most requests in flight at once; later arrivals wait "
        "and are counted as delayed (the level is then no longer Poisson, and the report says "
        "how many waited)",
    )
    seed: Int = Field(default=0, description="seed of the Poisson arrival times (`rate`)")

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
