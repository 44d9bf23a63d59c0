"""The documentation: suites/README.md as the schema generates it, the README's size, and links
that lead somewhere."""

from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

from novabench.config import reference
from novabench.config.checks import Checks, JsonCheck
from novabench.config.options import OllamaOptions
from novabench.config.reading import parse_suite
from novabench.config.suite import (
    MAX_PLANNED_REQUESTS,
    MAX_REPETITIONS,
    MAX_WARMUP,
    ModelSpec,
    PromptSpec,
    Suite,
)
from novabench.config.workload import MAX_LEVELS, MAX_STREAMS, LoadSLO, LoadSpec
from novabench.errors import SuiteError
from novabench.storage.export import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SUITES_README = ROOT / "suites" / "README.md"
README = ROOT / "README.md"
TESTS_README = ROOT / "tests" / "README.md"
README_LIMIT_BYTES = 15_000
# In the reference's order: depth first through the fields.
SCHEMA = [Suite, ModelSpec, OllamaOptions, PromptSpec, Checks, JsonCheck, LoadSpec, LoadSLO]


def test_suites_readme_is_what_make_docs_writes() -> None:
    expected = reference.render_reference()
    found = SUITES_README.read_text(encoding="utf-8")
    if found != expected:
        diff = difflib.unified_diff(
            found.splitlines(), expected.splitlines(), "suites/README.md", "generated", lineterm=""
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(f"suites/README.md is stale: run `make docs` to regenerate it\n{shown}")


def test_readme_is_at_most_15000_bytes() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT_BYTES, (
        f"README.md is {size:,} bytes, over {README_LIMIT_BYTES:,}: move detail to "
        "suites/README.md (novabench/config/reference*.py) or tests/README.md"
    )


def test_the_reference_covers_every_model_of_the_schema() -> None:
    assert list(reference._models_in(Suite)) == SCHEMA
    assert set(reference.SECTIONS) == set(SCHEMA)


@pytest.mark.parametrize("model", SCHEMA, ids=lambda model: model.__name__)
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    undocumented = [name for name, field in model.model_fields.items() if not field.description]
    assert undocumented == []


@pytest.mark.parametrize("model", SCHEMA, ids=lambda model: model.__name__)
def test_every_key_has_a_row_in_its_section(model: type[BaseModel]) -> None:
    section = _section_of(model)
    keys = [field.alias or name for name, field in model.model_fields.items()]
    rows = re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)
    assert rows == keys


def test_rows_give_the_schemas_types_limits_and_defaults() -> None:
    assert _row(Suite, "warmup") == (
        "integer, ≥ 0, ≤ 100",
        "`1`",
        _description(Suite, "warmup"),
    )
    assert f"≤ {MAX_WARMUP}" in _row(Suite, "warmup")[0]
    assert _row(Suite, "models")[:2] == ("list of [`models`](#models), not empty", "required")
    assert _row(Suite, "modes")[:2] == (
        "list of `parallel`, `sequential` or `load`, not empty",
        "`[sequential]`",
    )
    assert _row(Suite, "host")[1] == "`$OLLAMA_HOST`, else `http://localhost:11434`"
    assert _row(Suite, "keep_alive")[0] == "string or number"
    assert _row(Suite, "target_cv")[:2] == ("number, > 0, ≤ 1", "`0.05`")
    assert _row(OllamaOptions, "temperature")[1] == "not sent"
    assert _row(Checks, "json")[0] == "[`checks.json`](#checksjson)"
    assert _row(LoadSpec, "concurrency")[0] == (
        f"list of integers, not empty, at most {MAX_LEVELS} entries"
    )
    assert _row(LoadSpec, "max_in_flight")[0] == f"integer, ≥ 1, ≤ {MAX_STREAMS:,}"
    assert _row(LoadSLO, "ttft_ms")[1] == "no limit"
    # Caps a validator checks, not a Field bound: the description must say them.
    assert f"1 to {MAX_REPETITIONS:,}" in _description(Suite, "repetitions")
    assert f"{MAX_PLANNED_REQUESTS:,} measured requests" in _description(Suite, "repetitions")


def test_the_example_suites_and_error_lines_are_real() -> None:
    text = SUITES_README.read_text(encoding="utf-8")
    parse_suite(reference.EXAMPLE_SUITE)
    with pytest.raises(SuiteError) as raised:
        parse_suite(reference.BAD_SUITE, "suites/chat.yaml")
    for problem in raised.value.problems:
        assert f"Error: {problem}\n" in text


@pytest.mark.parametrize("document", [README, SUITES_README], ids=lambda p: str(p))
def test_suites_shown_in_the_documentation_are_valid(document: Path) -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```", document.read_text("utf-8"), re.M | re.S)
    suites = [block for block in blocks if "\nmodels:" in block]
    assert suites
    for block in suites:
        if block != reference.BAD_SUITE:
            parse_suite(block, f"a suite in {document.name}")


def test_error_lines_say_what_a_list_takes_not_its_documentation() -> None:
    # The descriptions document; `json_schema_extra={"expected": ...}` is what errors say.
    base = "name: s\nmodels: [m]\nprompts: [p]\nmodes: [load]\n"
    cases = {
        "load: {concurrency: 4}": "load.concurrency: 4 is not a list of concurrency levels, "
        "e.g. [1, 2, 4, 8, 16]",
        "load: {rate: 2}": "load.rate: 2 is not a list of request rates (requests/s), "
        "e.g. [0.5, 1, 2]",
        "load: {concurrency: [1], prompts: p1}": "load.prompts: 'p1' is not a list of prompt ids",
    }
    for line, message in cases.items():
        with pytest.raises(SuiteError) as raised:
            parse_suite(base + line + "\n", "s.yaml")
        assert [problem.split(": ", 1)[1] for problem in raised.value.problems] == [message]


def test_make_docs_command_writes_the_reference(tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text("old\n", encoding="utf-8")
    command = [sys.executable, "-m", "novabench.config.reference"]
    written = subprocess.run(
        [*command, "--write", str(target)], capture_output=True, text=True, check=False
    )
    assert (written.returncode, written.stderr) == (0, "")
    assert written.stdout == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == reference.render_reference()
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    printed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert printed.returncode == 0
    assert printed.stdout == reference.render_reference()


@pytest.mark.parametrize("document", [README, SUITES_README, TESTS_README], ids=lambda p: str(p))
def test_relative_links_lead_to_a_file_and_heading(document: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _outside_code(document.read_text("utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.is_file():
            broken.append(f"{target}: no file {linked}")
        elif anchor and anchor not in _anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert broken == []


def test_readme_lists_every_export_column_in_order() -> None:
    section = README.read_text(encoding="utf-8").split("## Exports", 1)[1].split("\n## ", 1)[0]
    listing = re.split(r"The columns,\s+in\s+order", section, maxsplit=1)[1]
    names = [name for name, _, _ in COLUMNS]
    listed = dict.fromkeys(n for n in re.findall(r"`([a-z_0-9]+)`", listing) if n in names)
    assert list(listed) == names


def test_moved_measurements_are_in_tests_readme() -> None:
    text = TESTS_README.read_text(encoding="utf-8")
    anchors = _anchors(text)
    for heading in ("robustness-testsrobustness", "kill--9-at-any-rate"):
        assert heading in anchors
    assert "measurement-accuracy-make-perf" in anchors
    assert "faults injected: 19, hostile inputs tried: 483, rows expected: 113" in text
    assert "| 1000 | 828 / 926 | 3043 / 3015 | 2936 / 2915 |" in text
    assert "| 1 | 51.3 → 51.5 ms | 0.15 ms (0.29%) |" in text


def _section_of(model: type[BaseModel]) -> str:
    key = reference.SECTIONS[model].key
    heading = f"### `{key}`" if key else "### Top level"
    text = SUITES_README.read_text(encoding="utf-8")
    return text.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]


def _row(model: type[BaseModel], key: str) -> tuple[str, ...]:
    for line in _section_of(model).splitlines():
        if line.startswith(f"| `{key}` |"):
            return tuple(cell.strip() for cell in line.strip("|").split(" | ")[1:])
    raise AssertionError(f"no row for {key} in {model.__name__}'s section")


def _description(model: type[BaseModel], key: str) -> str:
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    return fields[key].description or ""


def _outside_code(markdown: str) -> str:
    """The text without fenced code blocks, where a `](` or `#` means nothing."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)


def _anchors(markdown: str) -> set[str]:
    """The heading anchors GitHub makes: lower case, punctuation dropped, spaces as hyphens."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _outside_code(markdown), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, count = slug, 1
        while anchor in anchors:
            anchor, count = f"{slug}-{count}", count + 1
        anchors.add(anchor)
    return anchors
