"""Problems with the suite file or its YAML: missing, not UTF-8, syntax, tags, aliases, size."""

from __future__ import annotations

from pathlib import Path

import pytest

from novabench.config.reading import load_suite
from novabench.errors import SuiteError
from tests.config.suite_files import only_problem

pytestmark = pytest.mark.usefixtures("suite_folder")


# --- problems with the file or its YAML -----------------------------------------------------------


def test_missing_file() -> None:
    with pytest.raises(SuiteError) as raised:
        load_suite("suites/nope.yaml")
    assert raised.value.problems == ["suites/nope.yaml: no such file"]


def test_directory_instead_of_a_file() -> None:
    Path("suites").mkdir()
    with pytest.raises(SuiteError) as raised:
        load_suite("suites")
    assert raised.value.problems == ["suites: is a directory, not a suite file"]


def test_file_that_is_not_utf8() -> None:
    Path("latin1.yaml").write_bytes(b"name: caf\xe9 \xff\n")
    with pytest.raises(SuiteError) as raised:
        load_suite("latin1.yaml")
    assert raised.value.problems == ["latin1.yaml: not UTF-8 text (invalid byte 0xe9 at offset 9)"]


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n# and another\n"])
def test_empty_file_or_only_comments(text: str) -> None:
    assert only_problem(text) == (
        "suite.yaml: empty suite: expected a mapping with name, models and prompts"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("- llama3.2\n- qwen3\n", "a list"),
        ("just some words\n", "a string 'just some words'"),
        ("42\n", "the int 42"),
        ("null\n", "null"),
    ],
)
def test_top_level_that_is_not_a_mapping(text: str, found: str) -> None:
    assert only_problem(text) == (
        "suite.yaml:1:1: (top level): expected a mapping with name, models and prompts, "
        f"found {found}"
    )


def test_yaml_syntax_error_with_its_position() -> None:
    assert only_problem(
        """
        name: s
        models: [m
        prompts: [p]
        """
    ) == (
        "suite.yaml:3:8: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 2)"
    )


def test_bad_indentation() -> None:
    assert only_problem("name: s\n  models: [m]\n") == (
        "suite.yaml:2:9: invalid YAML: mapping values are not allowed here"
    )


def test_two_documents_in_one_file() -> None:
    assert only_problem("name: a\n---\nname: b\n") == (
        "suite.yaml:2:1: invalid YAML: expected a single document in the stream, "
        "but found another document"
    )


def test_control_character() -> None:
    assert only_problem("name: s\x07\n") == (
        "suite.yaml:1:8: invalid YAML: character #x0007 is not allowed"
    )


def test_unsafe_python_tag_is_refused() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [m]
        prompts:
          - !!python/object/apply:os.system ["echo pwned"]
        """
        )
        == "suite.yaml:4:5: tag '!!python/object/apply:os.system' is not allowed in a suite"
    )


def test_unknown_local_tag_is_refused() -> None:
    assert only_problem("name: !secret s\nmodels: [m]\nprompts: [p]\n") == (
        "suite.yaml:1:7: tag '!secret' is not allowed in a suite"
    )


def test_file_over_one_mib_is_refused_before_parsing() -> None:
    Path("huge.yaml").write_bytes(b"#" * (1024 * 1024 + 1))
    with pytest.raises(SuiteError) as raised:
        load_suite("huge.yaml")
    assert raised.value.problems == [
        "huge.yaml: 1,048,577 bytes is too large for a suite (limit 1,048,576 bytes, 1 MiB)"
    ]


def test_alias_bomb_is_refused() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for previous, name in zip("abcde", "bcdef", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    assert only_problem("\n".join(levels) + "\n") == (
        "suite.yaml: the document expands through YAML aliases to more than 100,000 nodes "
        "(limit 100,000): refusing a possible alias bomb ('billion laughs')"
    )


def test_recursive_alias_is_refused() -> None:
    assert only_problem("name: s\nmodels: &loop [m, *loop]\nprompts: [p]\n") == (
        "suite.yaml:2:9: recursive YAML alias: a node that contains itself is not allowed"
    )


def test_deep_nesting_is_refused_without_a_traceback() -> None:
    assert only_problem("name: " + "[" * 5000 + "]" * 5000 + "\n") == (
        "suite.yaml: invalid YAML: nested too deeply for a suite"
    )


def test_duplicate_top_level_key() -> None:
    assert (
        only_problem(
            """
        name: s
        models: [a]
        prompts: [p]
        models: [b]
        """
        )
        == "suite.yaml:4:1: models: duplicate key 'models' (first at line 2)"
    )


def test_duplicate_key_in_a_nested_mapping() -> None:
    assert (
        only_problem(
            """
        name: s
        models:
          - name: m
            options:
              seed: 1
              seed: 2
        prompts: [p]
        """
        )
        == "suite.yaml:6:7: models[0].options.seed: duplicate key 'seed' (first at line 5)"
    )


def test_key_that_yaml_reads_as_a_boolean() -> None:
    assert only_problem("name: s\nmodels: [m]\nprompts: [p]\nyes: 1\n") == (
        "suite.yaml:4:1: (top level): unknown key yes (YAML reads it as bool, not as a name)"
    )
