"""Hostile and broken suite files through `novabench validate`: an `Error:` line per problem and
exit 2, never a traceback; hypothesis feeds random documents and mutations of the shipped suites."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novabench.cli import cli
from tests.conftest import SUITES
from tests.robustness.conftest import Figures

SHIPPED = sorted(SUITES.glob("*.yaml"))
GOOD = (SUITES / "one_sentence.yaml").read_text()

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)

HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "only a comment": b"# nothing here\n",
    "a list": b"- a\n- b\n",
    "a scalar": b"42\n",
    "wrong types": GOOD.replace("repetitions: 3", "repetitions: three").encode(),
    "unknown key": GOOD.replace("warmup: 1", "warmup: 1\nwarmpu: 2").encode(),
    "duplicate prompt ids": GOOD.replace("id: hi", "id: how_are_you").encode(),
    "unknown mode": GOOD.replace("[parallel, sequential]", "[parallel, turbo]").encode(),
    "repetitions zero": GOOD.replace("repetitions: 3", "repetitions: 0").encode(),
    "repetitions negative": GOOD.replace("repetitions: 3", "repetitions: -4").encode(),
    "not utf-8": GOOD.encode().replace(b"Hi.", b"H\xff\xfe."),
    "50 MB": b"name: x\n" + b"# " + b"a" * (50 * 1024 * 1024) + b"\n",
    "alias bomb": ALIAS_BOMB.encode(),
    "python object tag": b"name: !!python/object:os.system [echo pwned]\n",
    "python apply tag": b"name: !!python/object/apply:os.system ['echo pwned']\n",
    "yaml syntax": b"name: [unclosed\n",
    "nul bytes": b"name: a\x00b\n",
}


def assert_clean(code: int, output: str) -> None:
    assert "Traceback" not in output, output
    assert code in (0, 2), (code, output)
    if code == 2:
        lines = output.strip().splitlines()
        assert lines and all(line.startswith("Error: ") for line in lines), output


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_suite_ends_with_a_clear_error_and_exit_2(
    case: str, tmp_path: Path, figures: Figures
) -> None:
    figures.hostile_inputs += 1
    path = tmp_path / "s.yaml"
    path.write_bytes(HOSTILE[case])
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines and all(line.startswith(f"Error: {path}") for line in lines), result.output
    assert "Traceback" not in result.output


def test_shipped_suites_validate(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", *map(str, SHIPPED)])
    assert result.exit_code == 0, result.output


def check(tmp_path: Path, data: bytes, figures: Figures) -> None:
    figures.hostile_inputs += 1
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    # Anything but SystemExit escaping the command is a crash (CliRunner catches it).
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert_clean(result.exit_code, result.output)


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
keys = st.sampled_from(
    [
        "name",
        "models",
        "prompts",
        "modes",
        "repetitions",
        "warmup",
        "timeout_s",
        "host",
        "options",
        "checks",
        "keep_alive",
        "id",
        "text",
        "regex",
        "max_sentences",
        "json",
    ]
) | st.text(max_size=8)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=25,
)


@FUZZ
@given(document=documents)
def test_random_yaml_documents(document: object, tmp_path: Path, figures: Figures) -> None:
    check(tmp_path, yaml.safe_dump(document, allow_unicode=True).encode(), figures)


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes_and_text(data: bytes, tmp_path: Path, figures: Figures) -> None:
    check(tmp_path, data, figures)


mutation = st.tuples(
    st.sampled_from(["delete", "duplicate", "replace", "value", "garbage"]),
    st.integers(min_value=0, max_value=10_000),
    st.text(max_size=30),
    st.binary(min_size=1, max_size=8),
)


@FUZZ
@given(suite=st.sampled_from(SHIPPED), mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_shipped_suites(
    suite: Path, mutations: list[tuple[str, int, str, bytes]], tmp_path: Path, figures: Figures
) -> None:
    lines = suite.read_bytes().split(b"\n")
    for kind, at, text, garbage in mutations:
        i = at % len(lines)
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "replace":
            lines[i] = text.encode()
        elif kind == "value":
            key, sep, _ = lines[i].partition(b":")
            lines[i] = key + b": " + text.encode() if sep else text.encode()
        else:
            cut = at % (len(lines[i]) + 1)
            lines[i] = lines[i][:cut] + garbage + lines[i][cut:]
        if not lines:
            lines = [b""]
    check(tmp_path, b"\n".join(lines), figures)
