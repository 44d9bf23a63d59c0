"""YAML text to a validated suite; every problem is one `FILE:LINE:COL: KEY.PATH: message` line.

PyYAML composes a node tree with positions. The checks pydantic cannot make (unsafe tags, duplicate
keys, alias bombs) run on that tree, and pydantic's errors are mapped back onto it by their `loc`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from yaml.nodes import MappingNode, Node, ScalarNode

from novabench.config.yaml_tree import (
    CORE,
    EXPECTED_TOP_LEVEL,
    Loc,
    Problem,
    check_expansion,
    check_tree,
    clip,
    compose,
    construct,
    describe,
    find_node,
    in_order,
    key_path,
    problem,
    show,
    where,
)
from novabench.errors import SuiteError

_TYPE_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}

ModelT = TypeVar("ModelT", bound=BaseModel)


def located_error(problems: list[dict[str, Any]]) -> PydanticCustomError:
    """One error for problems at places inside the validated value: {at, value, message} each."""
    # The loader makes one line of each, `KEY.PATH.AT: VALUE MESSAGE`, with VALUE as in the YAML.
    listing = "; ".join(f"{p['at']}: {p['value']!r} {p['message']}" for p in problems)
    return PydanticCustomError("located", listing, {"problems": problems})


def validate_yaml(
    text: str, source: str, model: type[ModelT], defaults_from: dict[Loc, str] | None = None
) -> ModelT:
    """Parse `text` like yaml.safe_load and validate it as `model`; SuiteError lists every problem.

    `defaults_from` says where a default that can fail comes from: {("host",): "$OLLAMA_HOST"}.
    """
    root = compose(text, source)
    check_expansion(root, source)
    fatal, problems = check_tree(root, source)
    if fatal:
        raise SuiteError(in_order(fatal + problems))
    if not isinstance(root, MappingNode):
        found = describe(root)
        raise SuiteError(
            [f"{where(source, root)}: (top level): expected {EXPECTED_TOP_LEVEL}, found {found}"]
        )
    data = construct(root, source)
    try:
        result = model.model_validate(data)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            problems += _translate(dict(detail), root, source, model, defaults_from or {})
        raise SuiteError(in_order(problems)) from None
    if problems:
        raise SuiteError(in_order(problems))
    return result


# --- pydantic errors ------------------------------------------------------------------------


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        if found := _model_in(argument):
            return found
    return None


def _schema_at(model: type[BaseModel], loc: Loc) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """The model class that owns the last key of `loc`, and that key's field (None if unknown)."""
    owner: type[BaseModel] | None = model
    current: type[BaseModel] | None = model
    field = None
    for part in loc:
        if isinstance(part, int):
            continue
        if current is None:
            return None, None
        owner, field = current, _fields_by_key(current).get(part)
        current = _model_in(field.annotation) if field else None
    return owner, field


def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by the key written in YAML: the alias where there is one."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


def expected_text(field: FieldInfo | None) -> str | None:
    """What a field takes, as error lines say it (`Field(json_schema_extra={"expected": ...})`);
    the field's description is documentation, for the suite reference."""
    extra = field.json_schema_extra if field else None
    expected = extra.get("expected") if isinstance(extra, dict) else None
    return expected if isinstance(expected, str) else None


def _is_integer_field(field: FieldInfo | None) -> bool:
    def types(annotation: Any) -> set[Any]:
        return {annotation}.union(*(types(argument) for argument in get_args(annotation)))

    found = types(field.annotation) if field else set()
    return int in found and float not in found


def _did_you_mean(word: Any, choices: list[str]) -> str:
    close = difflib.get_close_matches(str(word), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _translate(
    error: dict[str, Any],
    root: Node,
    source: str,
    model: type[BaseModel],
    defaults_from: dict[Loc, str],
) -> list[Problem]:
    kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
    owner, field = _schema_at(model, loc)
    node, resolved, key_node = find_node(root, loc)

    if kind == "invalid_key":  # a non-string key: already reported from the YAML tree
        return []
    if kind == "duplicate":  # raised by the models' own validators, one error for the whole list
        lines = []
        for duplicate in ctx["duplicates"]:
            at, _, _ = find_node(root, loc + tuple(duplicate["at"]))
            first, _, _ = find_node(root, loc + tuple(duplicate["first"]))
            first_line = first.start_mark.line + 1
            message = f"duplicate {ctx['what']} {duplicate['shown']} (first at line {first_line})"
            lines.append(
                problem(source, at, f"{key_path(loc + tuple(duplicate['at']))}: {message}")
            )
        return lines
    if kind == "located":  # raised by the models' own validators: lines at places inside `loc`
        lines = []
        for located in ctx["problems"]:
            place = loc + tuple(located["at"])
            found, depth, _ = find_node(root, place)
            shown = show(found) if depth == len(place) else repr(located["value"])
            lines.append(problem(source, found, f"{key_path(place)}: {shown} {located['message']}"))
        return lines
    if kind == "missing":
        described = f": {expected}" if (expected := expected_text(field)) else ""
        return [problem(source, node, f"{key_path(loc[:-1])}: missing key {loc[-1]!r}{described}")]
    if kind == "extra_forbidden":
        allowed = list(_fields_by_key(owner)) if owner else []
        hint = _did_you_mean(loc[-1], allowed) or f": allowed keys are {', '.join(allowed)}"
        return [
            problem(
                source, key_node or node, f"{key_path(loc[:-1])}: unknown key {loc[-1]!r}{hint}"
            )
        ]

    if resolved == len(loc):
        shown = show(node)
    elif loc in defaults_from:  # not in the file: the value came from a default
        shown = f"{defaults_from[loc]}={clip(str(error['input']))!r}"
    else:  # generated from a shorthand, e.g. a bare-string prompt's id
        shown = repr(error["input"])
    resolved_node = node if resolved == len(loc) else None
    message = _message(kind, ctx, shown, error["input"], loc, field, resolved_node)
    return [problem(source, node, f"{key_path(loc)}: {message}")]


def _message(
    kind: str,
    ctx: dict[str, Any],
    shown: str,
    value: Any,
    loc: Loc,
    field: FieldInfo | None,
    node: Node | None,
) -> str:
    """The text after `KEY.PATH: ` for one pydantic error; `node` is the value's, if in the file."""
    number = "an integer" if _is_integer_field(field) else "a number"
    if kind == "value_error":
        return f"{shown} {ctx['error']}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound, operator = {
            "greater_than_equal": ("ge", ">="),
            "greater_than": ("gt", ">"),
            "less_than_equal": ("le", "<="),
            "less_than": ("lt", "<"),
        }[kind]
        limit = ctx[bound]
        if isinstance(limit, float) and limit.is_integer():
            limit = int(limit)  # "> 0", not "> 0.0"
        return f"{shown} is not allowed: must be {number} {operator} {limit}"
    if kind == "literal_error":
        noun = next(
            (part for part in reversed(loc) if isinstance(part, str)), "value"
        ).removesuffix("s")
        choices = re.findall(r"'([^']*)'", ctx["expected"])  # "'parallel' or 'sequential'"
        return f"{shown} is not a {noun}: use {ctx['expected']}" + _did_you_mean(value, choices)
    if kind == "too_short":
        return f"{shown} is empty: at least one is required"
    if kind == "too_long":
        limit = ctx.get("max_length")
        return f"{shown} is not allowed: at most {limit} entries"
    if kind == "list_type" and (expected := expected_text(field)):
        return f"{shown} is not {expected}"
    if kind in ("model_type", "dict_type"):
        # A model says what input it takes in `expected`: "a model name or a {...} mapping".
        expected = getattr(_model_in(field.annotation) if field else None, "expected", None)
        return f"{shown} is not {expected or _TYPE_EXPECTED[kind]}"
    if kind == "string_type":
        quote_hint = (
            f': quote it, as in "{node.value}"'
            if isinstance(node, ScalarNode) and node.tag != CORE + "null"
            else ""
        )
        return f"{shown} is not a string{quote_hint}"
    if kind in _TYPE_EXPECTED:
        return f"{shown} is not {_TYPE_EXPECTED[kind]}"
    return f"{shown} is not valid: {ctx.get('error') or kind.replace('_', ' ')}"
