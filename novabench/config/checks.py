"""A suite's quality checks as the suite declares them (see analysis/checks.py for evaluating
them), and the checks a JSON Schema in a suite must pass before a run."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from novabench.config.loader import located_error as _located_error
from novabench.config.types import Bool, Int, NonBlankText, Text

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

JsonPath = tuple[str | int, ...]


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
        default=None,
        alias="schema",
        description="a JSON Schema the parsed answer must match: Draft 2020-12 unless its "
        "`$schema` names another draft; `format` is an annotation only; a `$ref` must resolve "
        "inside the schema (nothing is fetched); checked for mistakes by `validate`",
    )

    @field_validator("json_schema")
    @classmethod
    def _check_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None and (problem := schema_problem(schema)):
            at, value, message = problem
            raise _located_error([{"at": at, "value": value, "message": message}])
        return schema


class Checks(BaseModel):
    """What an answer must satisfy (analysis/checks.py evaluates it); a check left as None is
    not made."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    expected: ClassVar[str] = "a mapping of checks, e.g. {contains: '4', max_sentences: 1}"

    contains: list[NonBlankText] | None = Field(
        default=None,
        min_length=1,
        description="a string or a list of strings that must all appear in the answer, as plain "
        'substrings ("5" is found in "15"; use `regex` with `\\b` for whole words)',
        json_schema_extra={"expected": "a string or a list of strings"},
    )
    not_contains: list[NonBlankText] | None = Field(
        default=None,
        min_length=1,
        description="a string or a list of strings none of which may appear in the answer",
        json_schema_extra={"expected": "a string or a list of strings"},
    )
    equals: Text | None = Field(
        default=None,
        description='the whole answer, both stripped of surrounding whitespace ("4." does not '
        'equal "4")',
    )
    regex: Annotated[NonBlankText, AfterValidator(_compiles)] | None = Field(
        default=None,
        description="a Python regular expression that `re.search` must find, exactly as written: "
        "`(?i)` ignores case, `(?m)` makes `^`/`$` match at line ends",
    )
    min_words: Int | None = Field(
        default=None,
        ge=0,
        description="the fewest words: whitespace-separated pieces holding a letter or digit "
        '("2+2=4" is one word; text without spaces, such as Chinese, is not split)',
    )
    max_words: Int | None = Field(
        default=None, ge=0, description="the most words; at least `min_words`"
    )
    max_sentences: Int | None = Field(
        default=None,
        ge=0,
        description="the most sentences, by the [sentence rule](#how-sentences-are-counted)",
    )
    # `json` would shadow a (deprecated) BaseModel method, hence the alias.
    json_: JsonCheck | None = Field(
        default=None,
        alias="json",
        description="`true`: the answer parses as strict JSON (no NaN or Infinity; an answer "
        "that is one fenced code block is unwrapped first); `{schema: {...}}`: and the value "
        "matches that JSON Schema",
    )
    case_sensitive: Bool = Field(
        default=False,
        description="whether `contains`, `not_contains` and `equals` mind case (both sides are "
        'NFC-normalised; without it compared case-folded: "Straße" contains "STRASSE")',
    )

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

    def descriptions(self) -> dict[str, str]:
        """Each declared check by its YAML key, with a short phrase: {'max_sentences': 'at most 1
        sentence'}, in `declared` order (the order analysis/checks.py's evaluate gives results)."""
        return dict(zip(self.declared, describe(self), strict=True))

    @property
    def declared(self) -> list[str]:
        """The checks made, by their YAML key, in schema order (`case_sensitive` is not one)."""
        return [
            field.alias or name
            for name, field in type(self).model_fields.items()
            if name != "case_sensitive" and getattr(self, name) is not None
        ]


def schema_validator_class(schema: dict[str, Any]) -> type[Validator] | None:
    """The validator for the draft `$schema` names (Draft 2020-12 without one); None if unknown."""
    import jsonschema
    import referencing.jsonschema

    dialect = schema.get("$schema")
    if dialect is None:
        return jsonschema.Draft202012Validator
    try:
        referencing.jsonschema.specification_with(dialect)
    except (referencing.jsonschema.UnknownDialect, TypeError):  # TypeError: an unhashable value
        return None
    return jsonschema.validators.validator_for(schema)


def draft_name(validator_class: type[Validator]) -> str:
    """'Draft 2020-12' for Draft202012Validator, 'Draft 7' for Draft7Validator."""
    digits = re.sub(r"\D", "", validator_class.__name__)
    return f"Draft {digits[:4]}-{digits[4:]}" if len(digits) == 6 else f"Draft {digits}"


def schema_problem(schema: dict[str, Any]) -> tuple[JsonPath, Any, str] | None:
    """The first problem that makes `schema` unusable: where in it, the value there, and what is
    wrong, a message to follow the value ("'objekt' " + "is not valid in a JSON Schema ...")."""
    from jsonschema.exceptions import best_match

    for path, value in _walk_json(schema):
        if not isinstance(value, dict | list | str | int | float | bool | type(None)):
            kind = type(value).__name__
            return path, value, f"is not a JSON value (YAML reads it as {kind}): quote it"
    validator_class = schema_validator_class(schema)
    if validator_class is None:
        return (
            ("$schema",),
            schema["$schema"],
            (
                "is not a known JSON Schema dialect: leave $schema out for Draft 2020-12, or use "
                "e.g. 'https://json-schema.org/draft/2020-12/schema' or "
                "'http://json-schema.org/draft-07/schema#'"
            ),
        )
    errors = validator_class(validator_class.META_SCHEMA).iter_errors(schema)
    if error := best_match(errors):
        while error.context:  # "not valid under any of the given schemas": say which part failed
            error = best_match(error.context)
        hint = ""
        if error.validator == "enum" and isinstance(error.instance, str):
            hint = _did_you_mean(error.instance, [str(choice) for choice in error.validator_value])
        message = f"is not valid in a JSON Schema ({draft_name(validator_class)}): {error.message}"
        return tuple(error.absolute_path), error.instance, message + hint
    if unresolved := _unresolved_ref(schema, validator_class):
        path, ref = unresolved
        return (
            path,
            ref,
            (
                "cannot be resolved: a $ref must point inside the schema, e.g. to '#/$defs/NAME' "
                "(novabench fetches no schemas)"
            ),
        )
    return None


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _walk_json(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_json(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_json(item, (*path, index))


def _unresolved_ref(
    schema: dict[str, Any], validator_class: type[Validator]
) -> tuple[JsonPath, str] | None:
    """The first `$ref` that resolves neither within the schema nor to a draft's meta-schema:
    where it is and what it says."""
    import referencing
    import referencing.exceptions
    import referencing.jsonschema
    from jsonschema_specifications import REGISTRY as META_SCHEMAS

    paths = {id(value): path for path, value in _walk_json(schema)}
    specification = referencing.jsonschema.specification_with(
        validator_class.META_SCHEMA["$schema"]
    )
    root = specification.create_resource(schema)
    registry = META_SCHEMAS.combine(referencing.Registry())  # which fetches nothing
    pending = [(root, registry.resolver_with_root(root))]
    while pending:
        resource, resolver = pending.pop()
        resolver = resolver.in_subresource(resource)
        contents = resource.contents
        if isinstance(contents, dict) and isinstance(ref := contents.get("$ref"), str):
            try:
                resolver.lookup(ref)
            except referencing.exceptions.Unresolvable:
                return (*paths.get(id(contents), ()), "$ref"), ref
        pending.extend((sub, resolver) for sub in resource.subresources())
    return None


def describe(checks: Checks) -> list[str]:
    """A short phrase per declared check, in `evaluate`'s order: 'at most 1 sentence'."""
    case = " (case-sensitive)" if checks.case_sensitive else ""
    phrases = []
    if checks.contains is not None:
        phrases.append(f"contains {_listing(checks.contains, 'and')}{case}")
    if checks.not_contains is not None:
        phrases.append(f"does not contain {_listing(checks.not_contains, 'or')}{case}")
    if checks.equals is not None:
        phrases.append(f"equals {checks.equals!r}{case}")
    if checks.regex is not None:
        phrases.append(f"matches /{checks.regex}/")
    if checks.min_words is not None:
        phrases.append(f"at least {_count(checks.min_words, 'word')}")
    if checks.max_words is not None:
        phrases.append(f"at most {_count(checks.max_words, 'word')}")
    if checks.max_sentences is not None:
        phrases.append(f"at most {_count(checks.max_sentences, 'sentence')}")
    if checks.json_ is not None:
        schema = checks.json_.json_schema
        phrases.append("is JSON" if schema is None else "is JSON matching the schema")
    return phrases


def _listing(parts: list[str], conjunction: str) -> str:
    quoted = [repr(part) for part in parts]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {conjunction} {quoted[-1]}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"
