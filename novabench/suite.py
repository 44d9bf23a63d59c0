"""The suite file: its schema (pydantic) and loading, with one `FILE:LINE:COL: KEY.PATH: message`
line per problem."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from novabench.checks import schema_problem
from novabench.errors import SuiteError
from novabench.suite_errors import located_error as _located_error
from novabench.suite_errors import validate_yaml
from novabench.suite_load import LoadSpec

DEFAULT_HOST = "http://localhost:11434"
EMBEDDED_HOST = "embedded"  # the host of models run in-process by the llamacpp backend
DEFAULT_PORT = 11434
MAX_SUITE_BYTES = 1024 * 1024
# Suite-level caps, checked by validate: beyond them a typo (an extra zero or ten) would make a run
# that never ends and a history no page can show.
MAX_REPETITIONS = 10_000  # repetitions, min_repetitions and max_repetitions
MAX_WARMUP = 100
MAX_PLANNED_REQUESTS = 1_000_000  # measured requests of one run, every mode and model together

Mode = Literal["parallel", "sequential", "load"]
EngineName = Literal["ollama", "openai", "llamacpp"]

# Strict: YAML already types its scalars, so `true` must not pass as 1 and "3" not as 3.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]  # strict float still takes ints: `temperature: 0`
Bool = Annotated[bool, Strict()]

# Validators raise ValueError("is ...: what is allowed"); the loader puts the value in front, as
# the user wrote it: "keep_alive: '300' is a number in a string: use 300 (seconds) or '300s'".
_PROMPT_ID = re.compile(r"[A-Za-z0-9_.-]+")
_BARE_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)")
_GO_DURATION = re.compile(r"[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+")
_KEEP_ALIVE_HELP = (
    "use seconds (300), a duration ('5m', '1h30m'), 0 to unload at once or -1 for ever"
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty: it must have some text")
    return value


Text = Annotated[str, Strict()]
NonBlankText = Annotated[str, Strict(), AfterValidator(_not_blank)]


def normalize_host(raw: str) -> str:
    """Turn an OLLAMA_HOST-style value ('localhost:11434', '0.0.0.0', 'https://h/') into a URL."""
    try:
        return _normalize_host(raw)
    except ValueError as error:
        raise ValueError(f"{raw!r} {error}") from None


def _normalize_host(raw: str) -> str:
    text = raw.strip()
    bare = "://" not in text
    if bare and text.count(":") > 1 and not text.startswith("["):
        text = f"[{text}]"  # a bare IPv6 address such as ::1, as Ollama accepts it
    try:
        url = urlsplit(f"http://{text}" if bare else text)
        host = url.hostname
    except ValueError:  # brackets around something that is not an IPv6 address
        raise ValueError(f"is not an Ollama address: {_BRACKETS_HELP}") from None
    scheme = url.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(
            f"is not an Ollama address: the scheme must be http or https, not {scheme!r}"
        )
    if url.query or url.fragment:
        raise ValueError("is not an Ollama address: remove the '?' query or '#' fragment")
    if not host:
        raise ValueError(
            "is not an Ollama address: use e.g. 'localhost:11434' or 'http://host:11434'"
        )
    host = _check_host_name(host, bracketed="[" in url.netloc)
    try:
        port = url.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError("is not an Ollama address: the port must be a number 1-65535")
    # A server bound to all interfaces is reached on loopback; 0.0.0.0 fails as a target on Windows.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if port is None and bare:
        port = DEFAULT_PORT
    netloc = f"[{host}]" if ":" in host else host
    if url.username is not None:
        netloc = url.netloc.rpartition("@")[0] + "@" + netloc
    if port is not None:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{url.path.rstrip('/')}"


_BRACKETS_HELP = "only an IPv6 address goes in brackets, e.g. '[::1]:11434'"
# Underscores are not RFC 1123, but Docker service names have them and resolvers take them.
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
_MAX_HOST_NAME = 253


def _check_host_name(host: str, bracketed: bool) -> str:
    """The host as a URL carries it: an IPv6 literal (in brackets), four IPv4 numbers 0-255,
    or a DNS host name (RFC 1123 labels; a non-ASCII name in its IDNA form)."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"is not an Ollama address: {_BRACKETS_HELP}") from None
        return host
    labels = host.removesuffix(".").split(".")
    if all(label.isdigit() for label in labels):  # an IPv4 address, or meant as one
        _check_ipv4(labels)
        return host
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = host  # the label check below says what is wrong
    name = ascii_host.removesuffix(".")
    if len(name) > _MAX_HOST_NAME:
        raise ValueError(
            f"is not an Ollama address: the host name is {len(name)} characters long "
            f"(at most {_MAX_HOST_NAME})"
        )
    for label in name.split("."):
        if not label:
            raise ValueError("is not an Ollama address: the host name has an empty label ('..')")
        if not _LABEL.fullmatch(label):
            raise ValueError(
                f"is not an Ollama address: {label!r} is not a host name label (1-63 letters, "
                "digits, hyphens or underscores, not starting or ending with a hyphen)"
            )
    return ascii_host


def _check_ipv4(numbers: list[str]) -> None:
    allowed = "an IPv4 address is four numbers 0-255, e.g. 192.168.1.30"
    if len(numbers) != 4:
        raise ValueError(
            f"is not an Ollama address: {len(numbers)} numbers where an IPv4 address has four "
            "(0-255 each, e.g. 192.168.1.30)"
        )
    for number in numbers:
        if number != str(int(number)):  # inet_aton would read 010 as octal 8
            raise ValueError(f"is not an Ollama address: {number} has a leading zero ({allowed})")
        if int(number) > 255:
            raise ValueError(f"is not an Ollama address: {number} is not 0-255 ({allowed})")


def _host_from_env() -> str:
    return os.environ.get("OLLAMA_HOST") or DEFAULT_HOST


def _duplicates(values: list[Any]) -> list[tuple[int, int]]:
    """(index, index of first occurrence) for each value already seen earlier in the list."""
    first_at: dict[Any, int] = {}
    found = []
    for index, value in enumerate(values):
        if value in first_at:
            found.append((index, first_at[value]))
        else:
            first_at[value] = index
    return found


def _duplicate_error(
    what: str, found: list[tuple[int, int]], shown: list[str], sub_loc: tuple[str, ...] = ()
) -> PydanticCustomError:
    # One error for the whole list (a validator raises once); the loader makes one line of each.
    duplicates = [
        {"at": (index, *sub_loc), "first": (first, *sub_loc), "shown": shown[index]}
        for index, first in found
    ]
    listing = ", ".join(f"{d['shown']} at [{d['at'][0]}]" for d in duplicates)
    return PydanticCustomError(
        "duplicate", f"duplicate {what}: {listing}", {"what": what, "duplicates": duplicates}
    )


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as error:
        raise ValueError(f"is not a valid regular expression: {error}") from None
    return pattern


class JsonCheck(BaseModel):
    """`json: true`: the response parses as JSON; `json: {schema: ...}`: and matches the schema."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = "true, false or a {schema: ...} mapping"

    # `schema` would shadow a (deprecated) BaseModel method, hence the alias.
    json_schema: dict[str, Any] | None = Field(
        default=None, alias="schema", description="a JSON Schema the parsed response must match"
    )

    @field_validator("json_schema")
    @classmethod
    def _check_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None and (problem := schema_problem(schema)):
            at, value, message = problem
            raise _located_error([{"at": at, "value": value, "message": message}])
        return schema


class Checks(BaseModel):
    """What a response must satisfy (see novabench/checks.py); a check left as None is not made."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = "a mapping of checks, e.g. {contains: '4', max_sentences: 1}"

    contains: list[NonBlankText] | None = Field(
        default=None, min_length=1, description="a string or a list of strings"
    )
    not_contains: list[NonBlankText] | None = Field(
        default=None, min_length=1, description="a string or a list of strings"
    )
    equals: Text | None = None
    regex: Annotated[NonBlankText, AfterValidator(_compiles)] | None = None
    min_words: Int | None = Field(default=None, ge=0)
    max_words: Int | None = Field(default=None, ge=0)
    max_sentences: Int | None = Field(default=None, ge=0)
    # `json` would shadow a (deprecated) BaseModel method, hence the alias.
    json_: JsonCheck | None = Field(default=None, alias="json")
    case_sensitive: Bool = False

    @field_validator("contains", "not_contains", mode="before")
    @classmethod
    def _string_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("json_", mode="before")
    @classmethod
    def _json_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return JsonCheck() if value else None
        return value

    @field_validator("max_words")
    @classmethod
    def _at_least_min_words(cls, value: int | None, info: ValidationInfo) -> int | None:
        min_words = info.data.get("min_words")
        if value is not None and min_words is not None and value < min_words:
            raise ValueError(f"is not allowed: must be >= min_words ({min_words})")
        return value

    @property
    def declared(self) -> list[str]:
        """The checks made, by their YAML key, in schema order (`case_sensitive` is not one)."""
        return [
            field.alias or name
            for name, field in type(self).model_fields.items()
            if name != "case_sensitive" and getattr(self, name) is not None
        ]


class OllamaOptions(BaseModel):
    """Ollama request `options` (ollama-api.md §1.2); a key left as None is not sent."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    expected: ClassVar[str] = "a mapping of Ollama options, e.g. {temperature: 0, seed: 42}"

    num_predict: Int | None = None
    temperature: Float | None = None
    seed: Int | None = None
    top_k: Int | None = None
    top_p: Float | None = None
    min_p: Float | None = None
    typical_p: Float | None = None
    repeat_last_n: Int | None = None
    repeat_penalty: Float | None = None
    presence_penalty: Float | None = None
    frequency_penalty: Float | None = None
    stop: list[Text] | None = Field(default=None, description="a string or a list of strings")
    num_keep: Int | None = None
    num_ctx: Int | None = None
    num_batch: Int | None = None
    num_gpu: Int | None = None
    main_gpu: Int | None = None
    use_mmap: Bool | None = None
    num_thread: Int | None = None
    draft_num_predict: Int | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_string_to_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def to_request(self) -> dict[str, Any]:
        """The options as sent to Ollama: only the keys that were set."""
        return self.model_dump(exclude_none=True)


class PromptSpec(BaseModel):
    """One prompt: an id for results and reports, the text, an optional system prompt, checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = "a prompt text or an {id, text, system, checks} mapping"

    id: Text = Field(
        description="the prompt's id (letters, digits, '_', '.' and '-'), used in results"
    )
    text: NonBlankText = Field(description="the prompt text sent to the model")
    system: Text | None = None
    checks: Checks | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _PROMPT_ID.fullmatch(value):
            raise ValueError("is not a valid prompt id: use only letters, digits, '_', '.' and '-'")
        return value


class ModelSpec(BaseModel):
    """One model to benchmark, with its own options and, optionally, its own Ollama server."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = (
        "a model name or a {name, model, backend, options, host, api_key_env} mapping"
    )

    name: NonBlankText = Field(description="the model name, e.g. 'llama3.2'")
    model: NonBlankText | None = Field(
        default=None,
        description="the engine's model id when it differs from `name`: an Ollama or OpenAI "
        "model name, or for llamacpp a GGUF path or a packaged alias such as 'smollm2'",
    )
    backend: EngineName | None = None
    options: OllamaOptions = OllamaOptions()
    host: Text | None = None
    api_key_env: NonBlankText | None = Field(
        default=None, description="environment variable holding the API key (openai backend)"
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        return None if value is None else _normalize_host(value)


class Suite(BaseModel):
    """A benchmark suite: which models answer which prompts, how often, and in which modes."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: NonBlankText = Field(description="the suite's name, used in results and reports")
    description: Text = ""
    host: Text = Field(default_factory=_host_from_env, validate_default=True)
    models: list[ModelSpec] = Field(
        min_length=1, description="a list of model names or {name, options, host} mappings"
    )
    prompts: list[PromptSpec] = Field(
        min_length=1, description="a list of prompt texts or {id, text, system, checks} mappings"
    )
    checks: Checks | None = None
    backend: EngineName = "ollama"
    api_key_env: NonBlankText | None = Field(
        default=None, description="environment variable holding the API key (openai backend)"
    )
    modes: list[Mode] = Field(
        default=["sequential"],
        min_length=1,
        description="a list of 'parallel', 'sequential' and/or 'load' (load needs a load section)",
    )
    load: LoadSpec | None = Field(
        default=None, description="the load sweep run by `modes: [load]` (concurrency or rate)"
    )
    repetitions: int | Literal["auto"] = Field(
        default=3,
        description="measured requests per model, prompt and mode: an integer or 'auto'",
    )
    min_repetitions: Int = Field(
        default=5, ge=2, le=MAX_REPETITIONS, description="with repetitions: auto"
    )
    max_repetitions: Int = Field(
        default=30, ge=1, le=MAX_REPETITIONS, description="with repetitions: auto"
    )
    target_cv: Float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="with repetitions: auto, the relative half-width of the median's 95% CI",
    )
    target_metric: Literal["e2e_ms", "ttft_ms", "eval_tokens_per_s", "itl_ms"] = "e2e_ms"
    cold_start: Bool = False
    sample_interval_s: Float = Field(
        default=0.25, ge=0, description="resource sampling interval in seconds; 0 turns it off"
    )
    warmup: Int = Field(
        default=1,
        ge=0,
        le=MAX_WARMUP,
        description="unmeasured runs before the measured ones, not in the statistics",
    )
    options: OllamaOptions = OllamaOptions()
    keep_alive: str | int | float | None = None
    timeout_s: Float = Field(
        default=300.0, gt=0, description="total timeout of one request, in seconds"
    )
    connect_timeout_s: Float = Field(
        default=10.0, gt=0, description="how long one request may take to connect, in seconds"
    )
    first_token_timeout_s: Float | None = Field(
        default=None,
        gt=0,
        description="how long one request may wait for its first token, in seconds "
        "(default: only timeout_s bounds it, as a cold model load can take minutes)",
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
        if found := _duplicates(keys):
            shown = [f"{name!r} on {host or 'the suite host'}" for name, host in keys]
            raise _duplicate_error("model", found, shown)
        return models

    @field_validator("prompts")
    @classmethod
    def _unique_prompt_ids(cls, prompts: list[PromptSpec]) -> list[PromptSpec]:
        if found := _duplicates([p.id for p in prompts]):
            raise _duplicate_error("prompt id", found, [repr(p.id) for p in prompts], ("id",))
        return prompts

    @field_validator("modes")
    @classmethod
    def _unique_modes(cls, modes: list[str]) -> list[str]:
        if found := _duplicates(modes):
            raise _duplicate_error("mode", found, [repr(m) for m in modes])
        return modes

    @field_validator("repetitions", mode="before")
    @classmethod
    def _check_repetitions(cls, value: Any) -> Any:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            hint = (
                " (did you mean 'auto'?)"
                if isinstance(value, str)
                and value.lower().strip() in ("auto", "automatic", "atuo", "aut")
                else ""
            )
            raise ValueError(f"is not an integer or 'auto'{hint}")
        if value < 1:
            raise ValueError("is not allowed: must be an integer >= 1 or 'auto'")
        if value > MAX_REPETITIONS:
            raise ValueError(f"is not allowed: must be an integer <= {MAX_REPETITIONS:,} or 'auto'")
        return value

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
        # Ollama: a number is seconds, a string is a Go duration; "300" gets a 400 (missing unit).
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"is not a finite number: {_KEEP_ALIVE_HELP}")
            return value
        if not isinstance(value, str):
            raise ValueError(f"is not a keep_alive value: {_KEEP_ALIVE_HELP}")
        if _BARE_NUMBER.fullmatch(value) and value.lstrip("+-") != "0":
            raise ValueError(f"is a number in a string: use {value} (seconds) or '{value}s'")
        if not (_GO_DURATION.fullmatch(value) or value.lstrip("+-") == "0"):
            raise ValueError(f"is not a duration: {_KEEP_ALIVE_HELP}")
        return value

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

    def load_prompts(self) -> list[PromptSpec]:
        """The prompts the load sweep draws from, in turn."""
        wanted = self.load.prompts if self.load and self.load.prompts else None
        return [p for p in self.prompts if wanted is None or p.id in wanted]


def load_suite(path: str | os.PathLike[str]) -> Suite:
    """Read and validate a suite file; raise SuiteError listing every problem found."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            data = b"" if size > MAX_SUITE_BYTES else file.read(MAX_SUITE_BYTES + 1)
    except FileNotFoundError:
        raise SuiteError([f"{source}: no such file"]) from None
    except IsADirectoryError:
        raise SuiteError([f"{source}: is a directory, not a suite file"]) from None
    except OSError as error:
        raise SuiteError([f"{source}: cannot read: {error.strerror or error}"]) from None
    if size > MAX_SUITE_BYTES or len(data) > MAX_SUITE_BYTES:
        raise SuiteError([_too_large(source, max(size, len(data)))])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise SuiteError(
            [f"{source}: not UTF-8 text (invalid byte 0x{byte:02x} at offset {error.start})"]
        ) from None
    return _parse(text, data, source, Path(source))


def parse_suite(text: str, source: str = "<string>") -> Suite:
    """Validate a suite given as text; `source` names it in messages."""
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_SUITE_BYTES:
        raise SuiteError([_too_large(source, len(data))])
    return _parse(text, data, source, None)


def _too_large(source: str, size: int) -> str:
    limit = f"{MAX_SUITE_BYTES:,} bytes, 1 MiB"
    return f"{source}: {size:,} bytes is too large for a suite (limit {limit})"


def _parse(text: str, data: bytes, source: str, path: Path | None) -> Suite:
    suite = validate_yaml(text, source, Suite, defaults_from={("host",): "$OLLAMA_HOST"})
    suite._path = path
    suite._text = text
    suite._sha256 = hashlib.sha256(data).hexdigest()
    return suite


__all__ = [
    "DEFAULT_HOST",
    "Checks",
    "JsonCheck",
    "Mode",
    "ModelSpec",
    "OllamaOptions",
    "PromptSpec",
    "Suite",
    "load_suite",
    "normalize_host",
    "parse_suite",
]
