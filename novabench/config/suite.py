"""The suite: which models answer which prompts, how often and in which modes (the pydantic schema
that `novabench validate` and suites/README.md are made from), and the rules across its keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from novabench.config.checks import Checks
from novabench.config.hosts import _host_from_env, _normalize_host
from novabench.config.loader import located_error as _located_error
from novabench.config.options import OllamaOptions
from novabench.config.specs import (
    EngineName,
    ModelSpec,
    PromptSpec,
    check_keep_alive,
    check_repetitions,
    duplicate_error,
    duplicates,
)
from novabench.config.types import Bool, Float, Int, NonBlankText, Text
from novabench.config.workload import LoadSpec
from novabench.names import EMBEDDED_HOST

# Suite-level caps, checked by validate: beyond them a typo (an extra zero or ten) would make a run
# that never ends and a history no page can show.
MAX_REPETITIONS = 10_000  # repetitions, min_repetitions and max_repetitions
MAX_WARMUP = 100
MAX_PLANNED_REQUESTS = 1_000_000  # measured requests of one run, every mode and model together

Mode = Literal["parallel", "sequential", "load"]


class Suite(BaseModel):
    """A benchmark suite: which models answer which prompts, how often, and in which modes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: NonBlankText = Field(
        description="the suite's name, used in results and reports (and for its lock file)",
        json_schema_extra={"expected": "the suite's name, used in results and reports"},
    )
    description: Text = Field(default="", description="what the suite is for, shown in reports")
    host: Text = Field(
        default_factory=_host_from_env,
        validate_default=True,
        description="the server's URL, as `OLLAMA_HOST` takes it: `localhost:11434`, "
        "`http://box:11434`, `https://host/path`, `[::1]:11434` (port 11434 when a bare host "
        "gives none); for `openai` with or without the trailing `/v1`",
        json_schema_extra={"default_text": "`$OLLAMA_HOST`, else `http://localhost:11434`"},
    )
    models: list[ModelSpec] = Field(
        min_length=1,
        description="the models to benchmark: names, or mappings with a model's own engine, "
        "options and host",
        json_schema_extra={"expected": "a list of model names or {name, options, host} mappings"},
    )
    prompts: list[PromptSpec] = Field(
        min_length=1,
        description="the prompts: texts (their ids are then `p1`, `p2`, ... by position), or "
        "mappings with an id, a system prompt and checks",
        json_schema_extra={
            "expected": "a list of prompt texts or {id, text, system, checks} mappings"
        },
    )
    checks: Checks | None = Field(
        default=None,
        description="quality checks on every answer; a prompt's own `checks` override them key "
        "by key",
    )
    backend: EngineName = Field(
        default="ollama",
        description="the engine that serves the models: `ollama` (the native API), `openai` "
        "(any OpenAI-compatible server) or `llamacpp` (embedded, no server); a model entry's "
        "own `backend` overrides it",
    )
    api_key_env: NonBlankText | None = Field(
        default=None,
        description="the *name* of an environment variable holding an API key (openai "
        "backend): read at run time, sent only as `Authorization: Bearer ...`, never stored; "
        "when it is not set, that model's rows fail with 'environment variable X (api_key_env) "
        "is not set'",
    )
    modes: list[Mode] = Field(
        default=["sequential"],
        min_length=1,
        description="what to run: `sequential` (one request at a time: model by model, prompt "
        "by prompt, repetition by repetition), `parallel` (every model's request for a prompt "
        "at once), `load` (the sweep in `load`). With both of the first two the report compares "
        "their wall times: speedup = sequential / parallel, efficiency = speedup / models",
        json_schema_extra={
            "expected": "a list of 'parallel', 'sequential' and/or 'load' "
            "(load needs a load section)"
        },
    )
    load: LoadSpec | None = Field(
        default=None,
        description="the load sweep that `modes: [load]` runs (and needs)",
    )
    repetitions: int | Literal["auto"] = Field(
        default=3,
        description=f"measured requests per model × prompt × mode, 1 to {MAX_REPETITIONS:,}, or "
        "`auto`: repeat until the 95% confidence interval of the median of `target_metric` is "
        "within ±`target_cv` of the median for every model of the group. A run plans at most "
        f"{MAX_PLANNED_REQUESTS:,} measured requests in all (with `auto`, counting "
        "`max_repetitions`)",
    )
    min_repetitions: Int = Field(
        default=5,
        ge=2,
        le=MAX_REPETITIONS,
        description="with `repetitions: auto`: the fewest measured requests per group",
    )
    max_repetitions: Int = Field(
        default=30,
        ge=1,
        le=MAX_REPETITIONS,
        description="with `repetitions: auto`: the most measured requests per group; at least "
        "`min_repetitions`",
    )
    target_cv: Float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="with `repetitions: auto`: the half-width of the median's 95% confidence "
        "interval, as a fraction of the median, that stops repeating (0.05: ±5%)",
    )
    target_metric: Literal["e2e_ms", "ttft_ms", "eval_tokens_per_s", "itl_ms"] = Field(
        default="e2e_ms",
        description="with `repetitions: auto`: the figure whose median must be known that well",
    )
    cold_start: Bool = Field(
        default=False,
        description="unload each model first and time the request that loads it again (stored "
        "flagged `is_cold`, kept out of the warm statistics); `novabench run --cold` does the "
        "same",
    )
    sample_interval_s: Float = Field(
        default=0.25,
        ge=0,
        description="seconds between resource samples (CPU, RAM, the server process, GPUs) "
        "during a run; 0 turns sampling off",
    )
    warmup: Int = Field(
        default=1,
        ge=0,
        le=MAX_WARMUP,
        description="unmeasured requests per model (with the first prompt) before each mode's "
        "measured ones, to load the model; stored flagged `is_warmup`, left out of every "
        "statistic",
    )
    options: OllamaOptions = Field(
        default=OllamaOptions(),
        description="model options sent with every request; a model entry's own `options` "
        "override them key by key",
    )
    keep_alive: str | int | float | None = Field(
        default=None,
        description="how long the server keeps a model loaded after a request (Ollama "
        "`keep_alive`): seconds (`300`), a duration (`'5m'`, `'1h30m'`), 0 to unload at once, "
        "-1 for ever",
        json_schema_extra={"default_text": "the server's"},
    )
    timeout_s: Float = Field(
        default=300.0,
        gt=0,
        description="bound on each request, from sending it to its last byte, in seconds (the "
        "only bound the embedded `llamacpp` engine honours)",
    )
    connect_timeout_s: Float = Field(
        default=10.0,
        gt=0,
        description="bound on connecting, per request, in seconds (the row's error: `cannot "
        "connect within connect_timeout_s=10`)",
    )
    first_token_timeout_s: Float | None = Field(
        default=None,
        gt=0,
        description="bound on the wait for a request's first token, in seconds (`no first token "
        "within first_token_timeout_s=5`); unset, only `timeout_s` bounds it, since loading a "
        "model can take minutes",
    )

    _path: Path | None = PrivateAttr(default=None)
    _text: str = PrivateAttr(default="")
    _sha256: str = PrivateAttr(default="")

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        return _normalize_host(value)

    @field_validator("prompts", mode="before")
    @classmethod
    def _bare_prompts(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [
            {"id": f"p{index + 1}", "text": item} if isinstance(item, str) else item
            for index, item in enumerate(value)
        ]

    @field_validator("models")
    @classmethod
    def _unique_models(cls, models: list[ModelSpec], info: ValidationInfo) -> list[ModelSpec]:
        # The suite host is validated first (field order); if it failed, None stands in for it.
        # Results are keyed by name and host: the same model on two engines of one host (Ollama's
        # native API and its /v1) needs two names, e.g. {name: llama3.2-v1, model: llama3.2}.
        keys = [
            (m.name, EMBEDDED_HOST if m.backend == "llamacpp" else m.host or info.data.get("host"))
            for m in models
        ]
        if found := duplicates(keys):
            shown = [f"{name!r} on {host or 'the suite host'}" for name, host in keys]
            raise duplicate_error("model", found, shown)
        return models

    @field_validator("prompts")
    @classmethod
    def _unique_prompt_ids(cls, prompts: list[PromptSpec]) -> list[PromptSpec]:
        if found := duplicates([p.id for p in prompts]):
            raise duplicate_error("prompt id", found, [repr(p.id) for p in prompts], ("id",))
        return prompts

    @field_validator("modes")
    @classmethod
    def _unique_modes(cls, modes: list[str]) -> list[str]:
        if found := duplicates(modes):
            raise duplicate_error("mode", found, [repr(m) for m in modes])
        return modes

    @field_validator("repetitions", mode="before")
    @classmethod
    def _check_repetitions(cls, value: Any) -> Any:
        return check_repetitions(value, MAX_REPETITIONS)

    @model_validator(mode="after")
    def _planned_requests_bounded(self) -> Suite:
        planned = self.planned_requests()
        if planned is not None and planned > MAX_PLANNED_REQUESTS:
            at = "load" if "load" in self.modes and self.load is not None else "repetitions"
            value = self.repetitions if at == "repetitions" else "load"
            raise _located_error(
                [
                    {
                        "at": (at,),
                        "value": value,
                        "message": f"is not allowed: this suite would send {planned:,} requests, "
                        f"more than {MAX_PLANNED_REQUESTS:,} in one run: split it",
                    }
                ]
            )
        return self

    def planned_requests(self) -> int | None:
        """Measured requests a run sends at most (None when a load level lasts a duration)."""
        repetitions = (
            self.repetitions if isinstance(self.repetitions, int) else self.max_repetitions
        )
        modes = [m for m in self.modes if m != "load"]
        total = len(modes) * len(self.models) * len(self.prompts) * repetitions
        if "load" in self.modes and self.load is not None:
            counts = [self.load.requests_at(level) for level in self.load.levels]
            if None in counts:
                return None
            total += len(self.models) * sum(c or 0 for c in counts)
        return total

    @model_validator(mode="after")
    def _repetition_bounds_agree(self) -> Suite:
        if self.repetitions == "auto" and self.min_repetitions > self.max_repetitions:
            raise _located_error(
                [
                    {
                        "at": ("max_repetitions",)
                        if "max_repetitions" in self.model_fields_set
                        else ("min_repetitions",),
                        "value": self.max_repetitions
                        if "max_repetitions" in self.model_fields_set
                        else self.min_repetitions,
                        "message": "is not allowed: max_repetitions must be >= min_repetitions "
                        f"({self.min_repetitions} > {self.max_repetitions})",
                    }
                ]
            )
        return self

    @model_validator(mode="after")
    def _load_section_agrees(self) -> Suite:
        if "load" in self.modes and self.load is None:
            index = self.modes.index("load")
            raise _located_error(
                [
                    {
                        "at": ("modes", index),
                        "value": "load",
                        "message": "needs a load section, e.g. load: {concurrency: [1, 2, 4, 8]}",
                    }
                ]
            )
        if self.load is not None and "load" not in self.modes:
            raise _located_error(
                [
                    {
                        "at": ("load",),
                        "value": "load",
                        "message": "is not run: add 'load' to modes",
                    }
                ]
            )
        known = [p.id for p in self.prompts]
        wanted = self.load.prompts if self.load and self.load.prompts else []
        problems = [
            {
                "at": ("load", "prompts", i),
                "value": prompt_id,
                "message": f"is not a prompt id of this suite: choose from {', '.join(known)}",
            }
            for i, prompt_id in enumerate(wanted)
            if prompt_id not in known
        ]
        if problems:
            raise _located_error(problems)
        return self

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _check_keep_alive(cls, value: Any) -> Any:
        return check_keep_alive(value)

    @model_validator(mode="after")
    def _word_limits_agree_once_merged(self) -> Suite:
        # Limits within one mapping are checked by Checks; these are a prompt's against the suite's.
        problems = []
        for index, prompt in enumerate(self.prompts):
            merged = self.checks_for(prompt)
            low, high = (merged.min_words, merged.max_words) if merged else (None, None)
            if prompt.checks is None or low is None or high is None or low <= high:
                continue
            if "max_words" in prompt.checks.model_fields_set:
                at, value, rule = (
                    "max_words",
                    high,
                    f">= min_words ({low}, from the suite's checks)",
                )
            else:
                at, value, rule = (
                    "min_words",
                    low,
                    f"<= max_words ({high}, from the suite's checks)",
                )
            problems.append(
                {
                    "at": ("prompts", index, "checks", at),
                    "value": value,
                    "message": f"is not allowed: must be {rule}",
                }
            )
        if problems:
            raise _located_error(problems)
        return self

    @property
    def path(self) -> Path | None:
        """The file the suite was loaded from, or None for parse_suite."""
        return self._path

    @property
    def text(self) -> str:
        """The suite's exact source text."""
        return self._text

    @property
    def sha256(self) -> str:
        """Hex sha256 of the source text's bytes (UTF-8), for provenance."""
        return self._sha256

    def host_for(self, model: ModelSpec) -> str:
        """The server URL this model is benchmarked on ('embedded' for the in-process engine)."""
        if self.backend_for(model) == "llamacpp":
            return EMBEDDED_HOST
        return model.host or self.host

    def backend_for(self, model: ModelSpec) -> str:
        """The engine that serves this model: its own `backend`, else the suite's."""
        return model.backend or self.backend

    def engine_model(self, model: ModelSpec) -> str:
        """The model id sent to the engine: `model` if given, else `name`."""
        return model.model or model.name

    def api_key_env_for(self, model: ModelSpec) -> str | None:
        return model.api_key_env or self.api_key_env

    def options_for(self, model: ModelSpec) -> dict[str, Any]:
        """Suite options overridden key by key by the model's own; only the keys that were set."""
        return {**self.options.to_request(), **model.options.to_request()}

    def checks_for(self, prompt: PromptSpec) -> Checks | None:
        """The suite's checks overridden key by key by the prompt's own; None if none is made."""
        merged = self.checks
        if prompt.checks is not None:
            own = prompt.checks
            overrides = {name: getattr(own, name) for name in own.model_fields_set}
            merged = merged.model_copy(update=overrides) if merged else own
        return merged if merged and merged.declared else None

    def facts(self) -> dict[str, Any]:
        """What a run's report needs of its suite, stored with the run (`runs.facts`): the report
        never reads the suite text again, so a later schema cannot change what an old run says."""
        checks = {}
        for prompt in self.prompts:
            merged = self.checks_for(prompt)
            if merged is not None:
                checks[prompt.id] = merged.descriptions()
        auto = self.repetitions == "auto"
        return {
            "description": self.description.strip() or None,
            "target_metric": self.target_metric,
            "target_cv": self.target_cv if auto else None,
            "checks": checks,
            "load": self.load.facts() if self.load is not None and "load" in self.modes else None,
        }

    def load_prompts(self) -> list[PromptSpec]:
        """The prompts the load sweep draws from, in turn."""
        wanted = self.load.prompts if self.load and self.load.prompts else None
        return [p for p in self.prompts if wanted is None or p.id in wanted]


__all__ = [
    "Checks",
    "Mode",
    "ModelSpec",
    "OllamaOptions",
    "PromptSpec",
    "Suite",
]
