"""The YAML layer of reading a suite: PyYAML's node tree with positions, the checks pydantic
cannot make on it (unsafe tags, duplicate keys, alias bombs), and finding the node at a `loc`."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from novabench.errors import SuiteError

MAX_EXPANDED_NODES = 100_000
EXPECTED_TOP_LEVEL = "a mapping with name, models and prompts"


CORE = "tag:yaml.org,2002:"


SAFE_TAGS = {tag for tag in yaml.SafeLoader.yaml_constructors if tag} | {CORE + "merge"}


NULL_WORDS = {"null", "Null", "NULL", "~"}


Loc = tuple[int | str, ...]


Problem = tuple[int, int, str]  # line, column, the whole message line; sorted into document order


def in_order(problems: list[Problem]) -> list[str]:
    return [line for _, _, line in sorted(problems, key=lambda problem: problem[:2])]


def where(source: str, node: Node) -> str:
    return f"{source}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def problem(source: str, node: Node, message: str) -> Problem:
    mark = node.start_mark
    return (mark.line, mark.column, f"{where(source, node)}: {message}")


def key_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


def children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def compose(text: str, source: str) -> Node:
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # the reader rejects control characters right here
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        raise SuiteError([syntax_error(source, error)]) from None
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


def syntax_error(source: str, error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    message = error.problem or error.context or "not valid YAML"
    if error.problem and error.context:
        if not error.context.startswith("while"):  # "expected a single document", "but found ..."
            message = f"{error.context}, {error.problem}"
        elif error.context_mark:
            message += f" ({error.context} at line {error.context_mark.line + 1})"
    return f"{where}: invalid YAML: {message}"


def check_expansion(root: Node, source: str) -> None:
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
            size = 1 + sum(sizes[id(child)] for child in children(node))
            sizes[id(node)] = min(size, MAX_EXPANDED_NODES + 1)
            continue
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children(node):
            if id(child) in open_nodes:
                message = "recursive YAML alias: a node that contains itself is not allowed"
                raise SuiteError([f"{where(source, child)}: {message}"])
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


def check_tree(root: Node, source: str) -> tuple[list[Problem], list[Problem]]:
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
        if node.tag not in SAFE_TAGS:
            fatal.append(
                problem(source, node, f"tag {short_tag(node.tag)!r} is not allowed in a suite")
            )
        elif isinstance(node, SequenceNode):
            stack.extend((child, (*loc, index)) for index, child in enumerate(node.value))
        elif isinstance(node, MappingNode):
            first_keys: dict[tuple[str, str], Node] = {}
            for key, value in node.value:
                if key.tag == CORE + "merge":  # `<<: *base` merges base's keys into this mapping
                    stack.append((value, loc))
                    continue
                if not isinstance(key, ScalarNode):
                    fatal.append(
                        problem(source, key, f"{key_path(loc)}: {describe(key)} cannot be a key")
                    )
                    continue
                stack.extend([(key, loc), (value, (*loc, key.value))])
                if key.tag != CORE + "str":
                    reads_as = key.tag.removeprefix(CORE)
                    problems.append(
                        problem(
                            source,
                            key,
                            f"{key_path(loc)}: unknown key {key.value} "
                            f"(YAML reads it as {reads_as}, not as a name)",
                        )
                    )
                first = first_keys.setdefault((key.tag, key.value), key)
                if first is not key:
                    problems.append(
                        problem(
                            source,
                            key,
                            f"{key_path((*loc, key.value))}: duplicate key {key.value!r} "
                            f"(first at line {first.start_mark.line + 1})",
                        )
                    )
    return fatal, problems


def short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(CORE) if tag.startswith(CORE) else tag


def construct(root: Node, source: str) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        raise SuiteError([syntax_error(source, error)]) from None
    except (ValueError, TypeError) as error:  # e.g. `!!int abc`
        raise SuiteError([f"{source}: invalid YAML value: {error}"]) from None
    finally:
        loader.dispose()


def describe(node: Node) -> str:
    """What a node is, for 'found ...' messages."""
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    kind = node.tag.removeprefix(CORE)
    if kind == "null":
        return "null"
    return f"a string {clip(node.value)!r}" if kind == "str" else f"the {kind} {node.value}"


def show(node: Node) -> str:
    """A value as the user wrote it: strings quoted, other scalars verbatim."""
    if isinstance(node, SequenceNode):
        return "a list" if node.value else "[]"
    if isinstance(node, MappingNode):
        return "a mapping" if node.value else "{}"
    if node.tag == CORE + "str":
        return repr(clip(node.value))
    if node.tag == CORE + "null" and node.value not in NULL_WORDS:
        return "an empty value"
    return str(node.value)


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def find_node(root: Node, loc: Loc) -> tuple[Node, int, Node | None]:
    """The deepest node along `loc`, how many parts of `loc` it resolved, the last key node."""
    node, key_node = root, None
    for depth, part in enumerate(loc):
        if isinstance(part, int) and isinstance(node, SequenceNode) and 0 <= part < len(node.value):
            node, key_node = node.value[part], None
            continue
        if isinstance(part, str) and isinstance(node, MappingNode):
            # Last one wins, as when constructing; merged (`<<`) keys come before explicit ones.
            matches = [
                pair for pair in node.value if pair[0].tag == CORE + "str" and pair[0].value == part
            ]
            if matches:
                key_node, node = matches[-1]
                continue
        return node, depth, key_node
    return node, len(loc), key_node
