"""What servers answer around the chat (version, model lists, show, ps), checked before use.

Each answer is validated by a pydantic schema: lenient about keys a newer server adds (they are
dropped), strict about the types of the fields novabench uses. Counts are whole numbers that fit
the database's signed 64-bit columns; text is storable (no NUL, no lone
surrogates, which DuckDB cannot store). A failure is one ServerAnswerError line naming the URL,
the field and the bad value.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from novabench.errors import ServerAnswerError
from novabench.text import terminal_safe

MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1  # the models table's context_length column
SHOWN_VALUE_CHARS = 60
# What a database column cannot keep: NUL, and half of a UTF-16 pair (a JSON string may carry
# either as an escape). Other control characters are kept as sent and neutralised wherever they
# are shown (terminal_safe, HTML escaping): a hostile model name must not cost the host.
_NOT_PLAIN = re.compile(r"[\x00\ud800-\udfff]")


def _plain(value: str) -> str:
    found = _NOT_PLAIN.search(value)
    if found:
        raise ValueError(f"holds {found.group()!r}: not storable text (a NUL or a lone surrogate)")
    return value


PlainText = Annotated[str, Strict(), AfterValidator(_plain)]
Count = Annotated[int, Strict(), Field(ge=0, le=MAX_INT64)]
ContextLength = Annotated[int, Strict(), Field(ge=0, le=MAX_INT32)]


class _Answer(BaseModel):
    """Keys a newer server adds are dropped; the fields below must have their types."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class VersionAnswer(_Answer):
    """GET /api/version."""

    version: PlainText


class ModelDetails(_Answer):
    """The `details` of /api/tags, /api/ps and /api/show entries."""

    parent_model: PlainText | None = None
    format: PlainText | None = None
    family: PlainText | None = None
    families: list[PlainText] | None = None
    parameter_size: PlainText | None = None
    quantization_level: PlainText | None = None
    context_length: Count | None = None
    embedding_length: Count | None = None


class _NamedEntry(_Answer):
    """A model entry named by `name` or `model` (Ollama sends both, the same)."""

    name: PlainText | None = None
    model: PlainText | None = None

    @model_validator(mode="after")
    def _has_a_name(self) -> _NamedEntry:
        if not (self.name or self.model):
            raise ValueError("has neither a name nor a model")
        return self

    @property
    def installed_name(self) -> str:
        return self.name or self.model or ""


class TagsEntry(_NamedEntry):
    """One installed model of /api/tags."""

    size: Count | None = None
    digest: PlainText | None = None
    details: ModelDetails | None = None


class TagsAnswer(_Answer):
    """GET /api/tags."""

    models: list[TagsEntry] | None


class PsEntry(_NamedEntry):
    """One loaded model of /api/ps: `size` in memory, `size_vram` of it in GPU memory."""

    size: Count | None = None
    size_vram: Count | None = None


class PsAnswer(_Answer):
    """GET /api/ps."""

    models: list[PsEntry] | None


class ModelInfoFacts(_Answer):
    """The parts of /api/show's `model_info` novabench keeps (its keys are GGUF names)."""

    architecture: PlainText | None = Field(None, validation_alias="general.architecture")
    parameter_count: Count | None = Field(None, validation_alias="general.parameter_count")


class ShowAnswer(_Answer):
    """POST /api/show."""

    details: ModelDetails | None = None
    parameters: PlainText | None = None
    capabilities: list[PlainText] | None = None
    model_info: dict[str, Any] | None = None


class OpenAIModel(_Answer):
    """One model of /v1/models: only its id is used."""

    id: PlainText


class OpenAIModels(_Answer):
    """GET /v1/models (`data` is null on Ollama's /v1 with no models)."""

    data: list[OpenAIModel] | None


Schema = TypeVar("Schema", bound=BaseModel)
_CONTEXT_LENGTH = TypeAdapter(ContextLength)


def parse_answer(schema: type[Schema], body: bytes, url: str, server: str) -> Schema:
    """The answer `body` from `url` as `schema`, or ServerAnswerError saying what is wrong."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise ServerAnswerError(_not_as(url, server, "the body is JSON nested too deep")) from None
    except ValueError as exc:  # also invalid UTF-8
        shown = _shorten(repr(body[:SHOWN_VALUE_CHARS].decode("utf-8", "replace")))
        raise ServerAnswerError(_not_as(url, server, f"the body is not JSON: {shown}")) from exc
    return validated(schema, value, url, server)


def validated(
    schema: type[Schema], value: Any, url: str, server: str, at: tuple[str | int, ...] = ()
) -> Schema:
    """`value` (part of the answer from `url`, found at `at`) as `schema`."""
    try:
        return schema.model_validate(value)
    except ValidationError as exc:
        raise ServerAnswerError(_not_as(url, server, _problem(exc.errors()[0], at))) from None


def context_length(
    model_info: dict[str, Any], architecture: str | None, url: str, server: str
) -> int | None:
    """The context length in /api/show's model_info: `<architecture>.context_length`."""
    preferred = f"{architecture}.context_length"
    key = (
        preferred
        if preferred in model_info
        else next((k for k in model_info if k.endswith(".context_length")), None)
    )
    if key is None:
        return None
    try:
        return _CONTEXT_LENGTH.validate_python(model_info[key])
    except ValidationError as exc:
        problem = _problem(exc.errors()[0], ("model_info", key))
        raise ServerAnswerError(_not_as(url, server, problem)) from None


def _not_as(url: str, server: str, problem: str) -> str:
    return f"{url} answered something that is not what {server} answers: {problem}"


def _problem(error: ErrorDetails, at: tuple[str | int, ...]) -> str:
    """'models[0].size: 'big' is not a whole number' from one pydantic error."""
    where = _path((*at, *error["loc"]))
    kind = error["type"]
    if kind == "missing":
        return f"{where}: missing"
    shown = _shorten(repr(error["input"]))
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        reason = str(ctx.get("error", error["msg"]))
    elif kind in ("greater_than_equal", "greater_than"):
        reason = "is negative"
    elif kind == "less_than_equal":
        limit = ctx.get("le")
        bits = 32 if limit == MAX_INT32 else 64
        reason = f"does not fit a signed {bits}-bit integer"
    else:
        reason = _TYPE_WORDS.get(kind, error["msg"].lower())
    return f"{where}: {shown} {reason}"


_TYPE_WORDS = {
    "int_type": "is not a whole number",
    "string_type": "is not a string",
    "list_type": "is not a list",
    "dict_type": "is not a JSON object",
    "model_type": "is not a JSON object",
    "model_attributes_type": "is not a JSON object",
}


def _path(loc: tuple[str | int, ...]) -> str:
    """('models', 0, 'size') as 'models[0].size'; () as 'the body'."""
    text = ""
    for part in loc:
        key = terminal_safe(str(part))  # a key of model_info is the server's text
        text += f"[{part}]" if isinstance(part, int) else (f".{key}" if text else key)
    return text or "the body"


def _shorten(text: str) -> str:
    return text if len(text) <= SHOWN_VALUE_CHARS else text[: SHOWN_VALUE_CHARS - 1] + "…"
