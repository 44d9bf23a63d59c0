"""YAML text to a validated suite; every problem is one `FILE:LINE:COL: KEY.PATH: message` line.

PyYAML composes a node tree with positions. The checks pydantic cannot make (unsafe tags, duplicate
keys, alias bombs) run on that tree, and pydantic's errors are mapped back onto it by their `loc`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from novabench.errors import SuiteError

MAX_EXPANDED_NODES = 100_000
EXPECTED_TOP_LEVEL = "a mapping with name, models and prompts"

_CORE = "tag:yaml.org,2002:"
_SAFE_TAGS = {tag for tag in yaml.SafeLoader.yaml_constructors if tag} | {_CORE + "merge"}
_NULL_WORDS = {"null", "Null", "NULL", "~"}
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
Loc = tuple[int | str, ...]
Problem = tuple[int, int, str]  # line, column, the whole message line; sorted into document order


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
    root = _compose(text, source)
    _check_expansion(root, source)
    fatal, problems = _check_tree(root, source)
    if fatal:
        raise SuiteError(_in_order(fatal + problems))
    if not isinstance(root, MappingNode):
        found = _describe(root)
        raise SuiteError(
            [f"{_where(source, root)}: (top level): expected {EXPECTED_TOP_LEVEL}, found {found}"]
        )
    data = _construct(root, source)
    try:
        result = model.model_validate(data)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            problems += _translate(dict(detail), root, source, model, defaults_from or {})
        raise SuiteError(_in_order(problems)) from None
    if problems:
        raise SuiteError(_in_order(problems))
    return result


def _in_order(problems: list[Problem]) -> list[str]:
    return [line for _, _, line in sorted(problems, key=lambda problem: problem[:2])]


def _where(source: str, node: Node) -> str:
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _problem(source: str, node: Node, message: str) -> Problem:
    mark = node.start_mark
    return (mark.line, mark.column, f"{_where(source, node)}: {message}")


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


# --- the YAML layer -------------------------------------------------------------------------


def _compose(text: str, source: str) -> Node:
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader rejects control characters right here
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        raise SuiteError([_syntax_error(source, error)]) from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
        message = f"invalid YAML: character #x{error.character:04x} is not allowed"
        raise SuiteError([f"{source}:{line}:{column}: {message}"]) from None
    except RecursionError:
        raise SuiteError([f"{source}: invalid YAML: nested too deeply for a suite"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise SuiteError([f"{source}: empty suite: expected {EXPECTED_TOP_LEVEL}"])
    return root


def _syntax_error(source: str, error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    message = error.problem or error.context or "not valid YAML"
    if error.problem and error.context:
        if not error.context.startswith("while"):  # "expected a single document", "but found ..."
            message = f"{error.context}, {error.problem}"
        elif error.context_mark:
            message += f" ({error.context} at line {error.context_mark.line + 1})"
    return f"{where}: invalid YAML: {message}"


def _check_expansion(root: Node, source: str) -> None:
    """Refuse recursive aliases, and documents over MAX_EXPANDED_NODES once aliases are expanded."""
    # Sizes are memoised per node (aliases share nodes), so this is linear in the composed graph
    # even when the expanded one ("billion laughs") is exponential. Capped to keep the ints small.
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            open_nodes.discard(id(node))
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            sizes[id(node)] = min(size, MAX_EXPANDED_NODES + 1)
            continue
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_nodes:
                message = "recursive YAML alias: a node that contains itself is not allowed"
                raise SuiteError([f"{_where(source, child)}: {message}"])
            if id(child) not in sizes:
                stack.append((child, False))
    if sizes[id(root)] > MAX_EXPANDED_NODES:
        what = (
            "has more than"
            if len(sizes) > MAX_EXPANDED_NODES
            else "expands through YAML aliases to more than"
        )
        limit = f"{MAX_EXPANDED_NODES:,}"
        raise SuiteError(
            [
                f"{source}: the document {what} {limit} nodes (limit {limit}): "
                "refusing a possible alias bomb ('billion laughs')"
            ]
        )


def _check_tree(root: Node, source: str) -> tuple[list[Problem], list[Problem]]:
    """(fatal, other) problems: unsafe tags and non-scalar keys stop loading, duplicate keys not."""
    fatal: list[Problem] = []
    problems: list[Problem] = []
    seen: set[int] = set()
    stack: list[tuple[Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in _SAFE_TAGS:
            fatal.append(
                _problem(source, node, f"tag {_short_tag(node.tag)!r} is not allowed in a suite")
            )
        elif isinstance(node, SequenceNode):
            stack.extend((child, (*loc, index)) for index, child in enumerate(node.value))
        elif isinstance(node, MappingNode):
            first_keys: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                if key.tag == _CORE + "merge":  # `<<: *base` merges base's keys into this mapping
                    stack.append((value, loc))
                    continue
                if not isinstance(key, ScalarNode):
                    fatal.append(
                        _problem(source, key, f"{_path(loc)}: {_describe(key)} cannot be a key")
                    )
                    continue
                stack.extend([(key, loc), (value, (*loc, key.value))])
                if key.tag != _CORE + "str":
                    reads_as = key.tag.removeprefix(_CORE)
                    problems.append(
                        _problem(
                            source,
                            key,
                            f"{_path(loc)}: unknown key {key.value} "
                            f"(YAML reads it as {reads_as}, not as a name)",
                        )
                    )
                first = first_keys.setdefault((key.tag, key.value), key)
                if first is not key:
                    problems.append(
                        _problem(
                            source,
                            key,
                            f"{_path((*loc, key.value))}: duplicate key {key.value!r} "
                            f"(first at line {first.start_mark.line + 1})",
                        )
                    )
    return fatal, problems


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def _construct(root: Node, source: str) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        raise SuiteError([_syntax_error(source, error)]) from None
    except (ValueError, TypeError) as error:  # e.g. `!!int abc`
        raise SuiteError([f"{source}: invalid YAML value: {error}"]) from None
    finally:
        loader.dispose()


def _describe(node: Node) -> str:
    """What a node is, for 'found ...' messages."""
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    kind = node.tag.removeprefix(_CORE)
    if kind == "null":
        return "null"
    return f"a string {_clip(node.value)!r}" if kind == "str" else f"the {kind} {node.value}"


def _show(node: Node) -> str:
    """A value as the user wrote it: strings quoted, other scalars verbatim."""
    if isinstance(node, SequenceNode):
        return "a list" if node.value else "[]"
    if isinstance(node, MappingNode):
        return "a mapping" if node.value else "{}"
    if node.tag == _CORE + "str":
        return repr(_clip(node.value))
    if node.tag == _CORE + "null" and node.value not in _NULL_WORDS:
        return "an empty value"
    return str(node.value)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- pydantic errors ------------------------------------------------------------------------


def _find(root: Node, loc: Loc) -> tuple[Node, int, Node | None]:
    """The deepest node along `loc`, how many parts of `loc` it resolved, the last key node."""
    node, key_node = root, None
    for depth, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, SequenceNode) and 0 <= part < len(node.value):
            node, key_node = node.value[part], None
            continue
        if isinstance(part, str) and isinstance(node, MappingNode):
            # Last one wins, as when constructing; merged (`<<`) keys come before explicit ones.
            matches = [
                pair
                for pair in node.value
                if pair[0].tag == _CORE + "str" and pair[0].value == part
            ]
            if matches:
                key_node, node = matches[-1]
                continue
        return node, depth, key_node
    return node, len(loc), key_node


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
    node, resolved, key_node = _find(root, loc)

    if kind == "invalid_key":  # a non-string key: already reported from the YAML tree
        return []
    if kind == "duplicate":  # raised by the models' own validators, one error for the whole list
        lines = []
        for duplicate in ctx["duplicates"]:
            at, _, _ = _find(root, loc + tuple(duplicate["at"]))
            first, _, _ = _find(root, loc + tuple(duplicate["first"]))
            first_line = first.start_mark.line + 1
            message = f"duplicate {ctx['what']} {duplicate['shown']} (first at line {first_line})"
            lines.append(_problem(source, at, f"{_path(loc + tuple(duplicate['at']))}: {message}"))
        return lines
    if kind == "located":  # raised by the models' own validators: lines at places inside `loc`
        lines = []
        for problem in ctx["problems"]:
            place = loc + tuple(problem["at"])
            found, depth, _ = _find(root, place)
            shown = _show(found) if depth == len(place) else repr(problem["value"])
            lines.append(_problem(source, found, f"{_path(place)}: {shown} {problem['message']}"))
        return lines
    if kind == "missing":
        described = f": {expected}" if (expected := expected_text(field)) else ""
        return [_problem(source, node, f"{_path(loc[:-1])}: missing key {loc[-1]!r}{described}")]
    if kind == "extra_forbidden":
        allowed = list(_fields_by_key(owner)) if owner else []
        hint = _did_you_mean(loc[-1], allowed) or f": allowed keys are {', '.join(allowed)}"
        return [
            _problem(source, key_node or node, f"{_path(loc[:-1])}: unknown key {loc[-1]!r}{hint}")
        ]

    if resolved == len(loc):
        shown = _show(node)
    elif loc in defaults_from:  # not in the file: the value came from a default
        shown = f"{defaults_from[loc]}={_clip(str(error['input']))!r}"
    else:  # generated from a shorthand, e.g. a bare-string prompt's id
        shown = repr(error["input"])
    resolved_node = node if resolved == len(loc) else None
    message = _message(kind, ctx, shown, error["input"], loc, field, resolved_node)
    return [_problem(source, node, f"{_path(loc)}: {message}")]


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
            if isinstance(node, ScalarNode) and node.tag != _CORE + "null"
            else ""
        )
        return f"{shown} is not a string{quote_hint}"
    if kind in _TYPE_EXPECTED:
        return f"{shown} is not {_TYPE_EXPECTED[kind]}"
    return f"{shown} is not valid: {ctx.get('error') or kind.replace('_', ' ')}"
