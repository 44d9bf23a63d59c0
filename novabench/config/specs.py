"""A suite's prompts and models: one entry of `prompts:` or `models:` each, and the rules every
list entry and `keep_alive` value follows."""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from novabench.config.checks import Checks
from novabench.config.hosts import _normalize_host
from novabench.config.options import OllamaOptions
from novabench.config.types import NonBlankText, Text

EngineName = Literal["ollama", "openai", "llamacpp"]


# Validators raise ValueError("is ...: what is allowed"); the loader puts the value in front, as
# the user wrote it: "keep_alive: '300' is a number in a string: use 300 (seconds) or '300s'".
_PROMPT_ID = re.compile(r"[A-Za-z0-9_.-]+")


_BARE_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)")


_GO_DURATION = re.compile(r"[-+]?((\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h))+")


_KEEP_ALIVE_HELP = (
    "use seconds (300), a duration ('5m', '1h30m'), 0 to unload at once or -1 for ever"
)


def duplicates(values: list[Any]) -> list[tuple[int, int]]:
    """(index, index of first occurrence) for each value already seen earlier in the list."""
    first_at: dict[Any, int] = {}
    found = []
    for index, value in enumerate(values):
        if value in first_at:
            found.append((index, first_at[value]))
        else:
            first_at[value] = index
    return found


def duplicate_error(
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


class PromptSpec(BaseModel):
    """One prompt: an id for results and reports, the text, an optional system prompt, checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = "a prompt text or an {id, text, system, checks} mapping"

    id: Text = Field(
        description="the prompt's id in results and reports: letters, digits, `_`, `.` and `-`; "
        "a bare-string prompt gets `p1`, `p2`, ... by its position",
        json_schema_extra={
            "expected": "the prompt's id (letters, digits, '_', '.' and '-'), used in results"
        },
    )
    text: NonBlankText = Field(
        description="the prompt text, sent as the user message",
        json_schema_extra={"expected": "the prompt text sent to the model"},
    )
    system: Text | None = Field(
        default=None, description="a system prompt, sent as a system message before the text"
    )
    checks: Checks | None = Field(
        default=None,
        description="quality checks for this prompt's answers, overriding the suite's `checks` "
        "key by key",
    )

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _PROMPT_ID.fullmatch(value):
            raise ValueError("is not a valid prompt id: use only letters, digits, '_', '.' and '-'")
        return value


class ModelSpec(BaseModel):
    """One model to benchmark, with its own engine, options and server where it needs them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = (
        "a model name or a {name, model, backend, options, host, api_key_env} mapping"
    )

    name: NonBlankText = Field(
        description="what results and reports call the model; also the id the engine is asked "
        "for unless `model` is given. Results are keyed by name and host, so the same model "
        "twice on one host (say on Ollama's native API and its `/v1`) needs two names",
        json_schema_extra={"expected": "the model name, e.g. 'llama3.2'"},
    )
    model: NonBlankText | None = Field(
        default=None,
        description="the engine's model id when it differs from `name`: an Ollama or OpenAI "
        "model name, or for `llamacpp` a GGUF path (relative to the current folder) or a "
        "packaged alias such as `smollm2`",
        json_schema_extra={"default_text": "the `name`"},
    )
    backend: EngineName | None = Field(
        default=None,
        description="the engine that serves this model, overriding the suite's `backend`",
        json_schema_extra={"default_text": "the suite's"},
    )
    options: OllamaOptions = Field(
        default=OllamaOptions(),
        description="this model's options, overriding the suite's key by key",
    )
    host: Text | None = Field(
        default=None,
        description="this model's server URL, overriding the suite's `host`; models on "
        "different hosts are swept at once in load mode",
        json_schema_extra={"default_text": "the suite's"},
    )
    api_key_env: NonBlankText | None = Field(
        default=None,
        description="the environment variable holding this model's API key, overriding the "
        "suite's `api_key_env`",
        json_schema_extra={"default_text": "the suite's"},
    )

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        return None if value is None else _normalize_host(value)


def check_keep_alive(value: Any) -> Any:
    """A keep_alive value as Ollama takes it: a number is seconds, a string a Go duration ("300"
    gets a 400 from Ollama: a duration needs its unit)."""
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


def check_repetitions(value: Any, most: int) -> Any:
    """An integer from 1 to `most`, or 'auto'."""
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
    if value > most:
        raise ValueError(f"is not allowed: must be an integer <= {most:,} or 'auto'")
    return value
