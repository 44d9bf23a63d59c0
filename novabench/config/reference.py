"""The suite reference, suites/README.md, written from the schema: every key with its type, limits,
default and description (pydantic `Field(description=...)`), plus the prose no schema holds.

`make docs` rewrites the file (`python -m novabench.config.reference --write suites/README.md`);
tests/config/test_suite_reference.py fails while the file differs from `render_reference()`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from novabench.config.checks import Checks, JsonCheck
from novabench.config.loader import EXPECTED_TOP_LEVEL
from novabench.config.options import OllamaOptions
from novabench.config.reading import MAX_SUITE_BYTES, parse_suite
from novabench.config.reference_prose import (
    AFTER_KEYS,
    BAD_SUITE,
    EXAMPLE_SUITE,
    INTRO,
    markdown_table,
)
from novabench.config.reference_running import RUNNING
from novabench.config.suite import ModelSpec, PromptSpec, Suite
from novabench.config.workload import LoadSLO, LoadSpec
from novabench.config.yaml_tree import MAX_EXPANDED_NODES
from novabench.errors import SuiteError


@dataclass(frozen=True)
class Section:
    """How one model of the schema is presented: its heading, and what an unset key means."""

    key: str  # the YAML key it sits under, as the heading shows it ("" for the top level)
    note: str  # what the section is, before the table
    unset: str = "none"  # the default column for a key whose default is None


SECTIONS: dict[type[BaseModel], Section] = {
    Suite: Section("", "The keys at the top of a suite file."),
    ModelSpec: Section(
        "models",
        "Each entry of `models` is one model to benchmark: a bare string is its `name`, a "
        "mapping can give it its own engine, options and server.",
    ),
    OllamaOptions: Section(
        "options",
        "Model options, sent with each request: the suite's `options`, overridden key by key by "
        "a model entry's own. A key left out is not sent, so the server's default applies "
        "(Ollama's is given in parentheses). A *load option* is fixed when a model is loaded: "
        "Ollama reloads a model asked for with other values (waiting for the requests in "
        "flight, so `load_duration` grows), the embedded engine loads it again separately. "
        "Other engines take only some keys: see [Options on each engine](#options-on-each-engine).",
        unset="not sent",
    ),
    PromptSpec: Section(
        "prompts",
        "Each entry of `prompts` is one prompt: a bare string is its `text`, with the id `p1`, "
        "`p2`, ... by its position.",
    ),
    Checks: Section(
        "checks",
        "What an answer must satisfy: at the top of the suite (every answer) or in a prompt "
        "entry (that prompt's answers, overriding the suite's key by key; `null` drops one). "
        "Each declared check passes or fails on its own: see [Quality checks](#quality-checks).",
        unset="not checked",
    ),
    JsonCheck: Section("checks.json", "The mapping form of the `json` check."),
    LoadSpec: Section(
        "load",
        "The sweep that `modes: [load]` runs: give `concurrency` or `rate`, and at most one of "
        "`requests_per_level` and `duration_s`. See [Load mode](#load-mode).",
    ),
    LoadSLO: Section(
        "load.slo",
        "What a request must meet to count towards goodput; a limit left out is not checked.",
        unset="no limit",
    ),
}

_SCALARS = {int: "integer", float: "number", bool: "`true` or `false`", str: "string"}
_PLURALS = {"integer": "integers", "number": "numbers", "string": "strings"}


def render_reference() -> str:
    """suites/README.md as the schema and the prose below make it."""
    parse_suite(EXAMPLE_SUITE, "suites/example.yaml")  # an example that fails would mislead
    parts = [
        INTRO,
        "## An example\n\n```yaml\n" + EXAMPLE_SUITE + "```\n",
        _errors_section(),
        "## Keys\n\n"
        + _wrap(
            "Generated from the schema (`novabench/config/`): key, type and limits, default, "
            "meaning. Durations are in seconds (`_s`) or milliseconds (`_ms`)."
        ),
    ]
    parts += [_section(model) for model in _models_in(Suite)]
    parts += [AFTER_KEYS, RUNNING]
    return "\n".join(part.rstrip("\n") + "\n" for part in parts)


def _errors_section() -> str:
    try:
        parse_suite(BAD_SUITE, "suites/chat.yaml")
    except SuiteError as error:
        lines = "\n".join(f"Error: {problem}" for problem in error.problems)
    else:
        raise AssertionError("the bad example suite passed validation")
    before = _wrap(
        "A bad suite gets one line per problem, with file, line, column, key path, the bad value "
        "and what is allowed, and exit code 2; nothing is run. This suite:"
    )
    after = _wrap(
        "Unknown keys are errors (with a *did you mean* when a key is close), and YAML's own "
        'types count: `true` is not 1 and `"3"` is not 3. A suite file is at most '
        f"{MAX_SUITE_BYTES / 2**20:g} MiB of UTF-8; YAML tags such as `!!python/object`, "
        f"duplicate keys and alias bombs (over {MAX_EXPANDED_NODES:,} nodes once expanded) are "
        "refused."
    )
    return (
        f"## How errors look\n\n{before}\n\n```yaml\n{BAD_SUITE}```\n\ngets\n\n"
        f"```\n$ novabench validate suites/chat.yaml\n{lines}\n```\n\n{after}\n"
    )


def _wrap(paragraph: str) -> str:
    """A paragraph in lines of at most 99 characters, like the hand-written parts."""
    return textwrap.fill(paragraph, width=99, break_long_words=False, break_on_hyphens=False)


def _models_in(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> Iterator[Any]:
    """`model` and every model its fields hold, depth first in field order, each once."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for nested in _nested_models(field.annotation):
            yield from _models_in(nested, seen)


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [found for argument in get_args(annotation) for found in _nested_models(argument)]


def _section(model: type[BaseModel]) -> str:
    if model not in SECTIONS:
        raise ValueError(f"{model.__name__} has no entry in reference.SECTIONS: add one")
    section = SECTIONS[model]
    title = f"`{section.key}`" if section.key else "Top level"
    written = getattr(model, "expected", None) or EXPECTED_TOP_LEVEL
    rows = []
    for name, field in model.model_fields.items():
        if not field.description:
            raise ValueError(f"{model.__name__}.{name} has no description: give its Field one")
        rows.append(
            (
                f"`{field.alias or name}`",
                _type_text(field.annotation) + _limits(field),
                _default_text(field, section),
                field.description,
            )
        )
    intro = _wrap(f"{section.note} Written as {_backticks(written)}.")
    table = markdown_table(("key", "type", "default", "meaning"), rows)
    return f"### {title}\n\n{intro}\n\n{table}\n"


def _backticks(text: str) -> str:
    """`{...}` mappings in an `expected` phrase as code: a {name, ...} mapping."""
    out, depth = "", 0
    for char in text:
        if char == "{":
            out += "`{" if depth == 0 else "{"
            depth += 1
        elif char == "}":
            depth -= 1
            out += "}`" if depth == 0 else "}"
        else:
            out += char
    return out


def _type_text(annotation: Any) -> str:
    origin, arguments = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_text(arguments[0])
    if origin in (Union, types.UnionType):
        kinds = [a for a in arguments if a is not type(None)]
        if float in kinds and int in kinds:
            kinds.remove(int)  # a number: ints are numbers too
        return " or ".join(dict.fromkeys(_type_text(kind) for kind in kinds))
    if origin is Literal:
        choices = [f"`{choice}`" for choice in arguments]
        return choices[0] if len(choices) == 1 else ", ".join(choices[:-1]) + " or " + choices[-1]
    if origin is list:
        item = _type_text(arguments[0])
        return f"list of {_PLURALS.get(item, item)}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        key = SECTIONS[annotation].key
        return f"[`{key}`](#{key.replace('.', '')})"
    return _SCALARS[annotation]


def _limits(field: FieldInfo) -> str:
    limits = []
    for item in field.metadata:
        for kind, operator in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if isinstance(item, getattr(annotated_types, kind.capitalize())):
                limits.append(f"{operator} {_number(getattr(item, kind))}")
        if isinstance(item, annotated_types.MinLen) and item.min_length == 1:
            limits.append("not empty")
        if isinstance(item, annotated_types.MaxLen):
            limits.append(f"at most {item.max_length} entries")
    return ", " + ", ".join(limits) if limits else ""


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _default_text(field: FieldInfo, section: Section) -> str:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if isinstance(shown := extra.get("default_text"), str):
        return shown
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return section.unset
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value or '""'
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    if isinstance(value, BaseModel):
        return "{}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m novabench.config.reference",
        description="Print the suite reference (suites/README.md), or write it with --write.",
    )
    parser.add_argument("--write", metavar="PATH", help="write it to PATH (replaced as a whole)")
    arguments = parser.parse_args(argv)
    text = render_reference()
    if arguments.write is None:
        sys.stdout.write(text)
        return 0
    target = Path(arguments.write)
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    # A temporary file renamed over the target: a failed run leaves the old file, never half one.
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
