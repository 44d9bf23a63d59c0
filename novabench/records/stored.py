"""The records of what was measured and stored, and the few facts every layer shares.

- `RequestResult`: what an engine records while a request streams (mutable until the run hands
  it to the store);
- the stored rows, as the store reads them back: `StoredResult`, `RunRecord`, `RunListing`,
  `ModelRecord`, `PromptRecord`, `PhaseRecord`, `LevelRecord`, `RepetitionStop`, and
  `ResourceSample` (also what the sampler makes);
- what analysis derives from them: `Request` (a stored result with its figures),
  `FigureStats` and `GroupSummary` (statistics of a group of requests), `LevelSummary` (one level
  of a load sweep).

Records are frozen dataclasses: a misspelt field is an AttributeError (and a type error for
mypy), never a silent None. `record["name"]` and `record.get("name")` also read a field, for
scripts written when rows were dicts; an unknown name raises KeyError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from novabench.names import EMBEDDED_HOST as EMBEDDED_HOST
from novabench.names import LOAD_MODE as LOAD_MODE


def utcnow() -> datetime:
    """Current UTC time as a naive datetime (the database stores UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


class FieldAccess:
    """Mapping-style reads of a dataclass record's fields (strict: unknown names raise KeyError)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __getitem__(self, name: str) -> Any:
        if name not in _field_names(type(self)):
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        value = self[name]
        return default if value is None else value

    def keys(self) -> tuple[str, ...]:
        return _field_names(type(self))

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (shallow)."""
        return {name: getattr(self, name) for name in _field_names(type(self))}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_FIELD_SETS: dict[type, frozenset[str]] = {}
R = TypeVar("R")


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def from_mapping(cls: type[Any], row: Mapping[str, Any]) -> Any:
    """A record of `cls` from a row with (at least) its field names; extra keys are ignored."""
    names = _field_names(cls)
    return cls(**{name: row[name] for name in names if name in row})


def from_fields(cls: type[R], fields: dict[str, Any]) -> R:
    """A frozen record from a dict of exactly its fields, made without calling its __init__.

    A frozen dataclass's __init__ sets each field through object.__setattr__: about 10 µs for a
    Request of 48 fields, and a run page of 100,000 requests makes 200,000 records. Only for
    records without __post_init__ (a test holds that).
    """
    names = _FIELD_SETS.get(cls)
    if names is None:
        names = _FIELD_SETS[cls] = frozenset(_field_names(cls))
    if fields.keys() != names:
        raise TypeError(f"{cls.__name__} fields differ: {sorted(fields.keys() ^ names)}")
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


# ---- what an engine records ------------------------------------------------------------------


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


@dataclass(frozen=True)
class ResourceSample(FieldAccess):
    """What the machine was doing at one moment of a run."""

    offset_s: float  # seconds since the run started (time.perf_counter clock)
    taken_at: datetime  # UTC, naive
    cpu_percent: float | None  # whole machine, 0-100
    per_core_percent: list[float] | None
    ram_used_bytes: int | None
    ram_percent: float | None
    swap_used_bytes: int | None
    server_cpu_percent: float | None  # server and its runners, % of one core: 0-100×cores
    server_rss_bytes: int | None
    gpu_util_percent: float | None  # mean over GPUs
    gpu_mem_used_bytes: int | None  # sum over GPUs
    gpu_power_w: float | None  # sum over GPUs


# ---- stored rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredResult(FieldAccess):
    """One row of `results`: a request's raw facts as stored, numbered in finishing order."""

    run_id: str
    seq: int
    mode: str
    model: str
    host: str
    prompt_id: str
    repetition: int
    is_warmup: bool
    started_at: datetime
    start_offset_s: float
    ttft_s: float | None
    e2e_s: float | None
    chunk_count: int
    response_bytes: int
    token_offsets_s: Sequence[float]  # a list; array('d') from Reads.results_for_figures
    prompt_eval_count: int | None
    prompt_eval_duration_ns: int | None
    eval_count: int | None
    eval_duration_ns: int | None
    load_duration_ns: int | None
    total_duration_ns: int | None
    done_reason: str | None
    response_text: str
    thinking_text: str
    error: str | None
    http_status: int | None
    is_cold: bool = False
    backend: str = "ollama"
    checks: dict[str, bool] | None = None
    load_level: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def measured(self) -> bool:
        """A warm, counted request: neither a warm-up nor a cold start (it may have failed)."""
        return not self.is_warmup and not self.is_cold


@dataclass(frozen=True)
class RunRecord(FieldAccess):
    """One row of `runs`: a run's provenance, settings and state. JSON columns come as dicts."""

    run_id: str
    started_at: datetime
    ended_at: datetime | None
    status: str  # running / complete / interrupted / aborted
    suite_name: str
    suite_path: str | None
    suite_text: str
    suite_sha256: str
    host: str
    ollama_version: str | None
    host_versions: dict[str, str | None] | None
    novabench_version: str
    modes: list[str]
    repetitions: int
    warmup: int
    options: dict[str, Any] | None
    system: dict[str, Any] | None
    hostname: str | None
    pid: int | None
    manifest: dict[str, Any] | None = None
    baseline: str | None = None
    fail_on_regression_pct: float | None = None
    facts: dict[str, Any] | None = None  # Suite.facts(), stored with the run (m006)
    pruned_at: datetime | None = None  # UTC: raw rows removed by `prune --keep-summaries` (m008)

    @property
    def duration_s(self) -> float | None:
        """From start to end in seconds; None while the run has not ended."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunListing(FieldAccess):
    """A run as `novabench runs` and the index list it, with its counts of measured requests."""

    run_id: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    suite_name: str
    host: str
    ollama_version: str | None
    novabench_version: str
    modes: list[str]
    requests: int
    errors: int
    pruned_at: datetime | None = None  # UTC: raw rows removed, summaries kept


@dataclass(frozen=True)
class ModelRecord(FieldAccess):
    """One row of `models`: a model of a run, as its host described it."""

    run_id: str
    model: str
    host: str
    found: bool
    digest: str | None
    size_bytes: int | None
    family: str | None
    parameter_size: str | None
    quantization: str | None
    options: dict[str, Any] | None
    context_length: int | None = None
    show_info: dict[str, Any] | None = None
    loaded_size_bytes: int | None = None
    loaded_vram_bytes: int | None = None
    backend: str | None = "ollama"
    engine_model: str | None = None
    unsent_options: list[str] | None = None  # options its engine does not send (m006)


@dataclass(frozen=True)
class PromptRecord(FieldAccess):
    run_id: str
    prompt_id: str
    position: int
    text: str
    system: str | None


@dataclass(frozen=True)
class PhaseRecord(FieldAccess):
    """One mode's measured phase: its wall time (warm-ups excluded) and its requests."""

    run_id: str
    mode: str
    started_at: datetime
    wall_s: float
    requests: int


@dataclass(frozen=True)
class LevelRecord(FieldAccess):
    """One row of `load_levels`: a finished (or rebuilt) level of a load sweep."""

    model: str
    host: str
    level_index: int
    kind: str  # concurrency / rate
    level: float  # concurrent streams, or requests/s offered
    started_offset_s: float  # first request sent, seconds after the run started
    wall_s: float  # first request sent to last request ended
    requests: int
    delayed_arrivals: int
    stop_reason: str | None  # saturated / failing / interrupted / aborted (rebuilt)
    started_at: datetime | None = None  # UTC; None for a level rebuilt from its requests


@dataclass(frozen=True)
class RepetitionStop(FieldAccess):
    """Why the repetitions of one mode, model, host and prompt stopped."""

    mode: str
    model: str
    host: str
    prompt_id: str
    repetitions: int
    reason: str  # target_reached / max_repetitions / fixed
    ci_half_width_ratio: float | None


@dataclass(frozen=True)
class HistoryRow(FieldAccess):
    """A measured, successful request with its run's context, as the history reads it."""

    run_id: str
    run_started_at: datetime
    suite_name: str
    status: str
    novabench_version: str
    ollama_version: str | None
    host_version: str | None  # the Ollama version of the request's own host
    mode: str
    model: str
    host: str
    prompt_id: str
    digest: str | None
    ttft_s: float | None
    e2e_s: float | None
    token_offsets_s: list[float]
    eval_count: int | None
    eval_duration_ns: int | None
    prompt_eval_count: int | None
    prompt_eval_duration_ns: int | None
    load_duration_ns: int | None
    total_duration_ns: int | None


@dataclass(frozen=True)
class RunSummary(FieldAccess):
    """One row of `run_summaries` with its run's context: the measured requests of one (run,
    mode, model, host, prompt) group, or of every prompt of the mode when `prompt_id` is None.

    Figures are analysis/figures.py's, medians (`_p50`) and 95th percentiles (`_p95`) by its
    quantile; `host_version` is the Ollama version of the group's own host.
    """

    run_id: str
    run_started_at: datetime
    suite_name: str
    status: str
    novabench_version: str
    host_version: str | None
    digest: str | None
    mode: str
    model: str
    host: str
    prompt_id: str | None
    n: int  # successful measured requests
    errors: int  # failed measured requests
    prompt_cached: int  # successful ones whose prompt was read from the KV cache
    output_tokens: int  # generated by the successful ones
    ttft_ms_p50: float | None
    ttft_ms_p95: float | None
    e2e_ms_p50: float | None
    e2e_ms_p95: float | None
    itl_ms_p50: float | None
    itl_ms_p95: float | None
    tpot_ms_p50: float | None
    eval_tokens_per_s_p50: float | None
    prompt_tokens_per_s_p50: float | None  # uncached prompts only, as the run page counts it
    client_tokens_per_s_p50: float | None
    output_tokens_p50: float | None


@dataclass(frozen=True)
class RunCounts(FieldAccess):
    """A run's place in the history: its row's small facts and its measured request counts,
    read from the summaries (never the results)."""

    run_id: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    suite_name: str
    host: str
    ollama_version: str | None
    novabench_version: str
    modes: list[str]
    host_versions: dict[str, str | None] | None
    requests: int  # measured, failed ones included
    errors: int
    models: list[str]  # that answered at least once
    hosts: list[str]


@dataclass(frozen=True)
class HistoryOverview(FieldAccess):
    """What the history page says of every stored run, counted in DuckDB: how many there are,
    the suites, models (that answered) and hosts they name, and the runs with significant
    changes, newest first."""

    runs: int
    suites: tuple[str, ...]
    models: tuple[str, ...]
    hosts: tuple[str, ...]
    changed_run_ids: tuple[str, ...]
