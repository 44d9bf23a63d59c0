"""Suite files for the config tests: written in the test's folder, and the problems they give."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from novabench.config.reading import load_suite
from novabench.errors import SuiteError

SHIPPED = Path(__file__).resolve().parents[2] / "suites" / "one_sentence.yaml"


def write(text: str, name: str = "suite.yaml") -> str:
    """Write a suite whose line 1 is the first line of `text` after dedenting."""
    Path(name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return name


def problems(text: str, name: str = "suite.yaml") -> list[str]:
    """The problems `load_suite` reports for this suite text (it must refuse it, exit code 2)."""
    with pytest.raises(SuiteError) as raised:
        load_suite(write(text, name))
    assert raised.value.exit_code == 2
    return raised.value.problems


def only_problem(text: str) -> str:
    """The one problem this suite text gives."""
    found = problems(text)
    assert len(found) == 1, found
    return found[0]
