"""Names novabench did not write (models, prompts, suites, hosts, server answers, rows read back
from the database) reach the terminal with every control, bidi and separator character shown
as an escape, and never as rich markup, on every output path."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from novabench import Store, load_suite, run_suite
from novabench.cli import cli
from novabench.console.live import LiveObserver
from novabench.text import terminal_safe
from tests.conftest import write_suite
from tests.history import make_run, result
from tests.ollama_double import FakeModel, OllamaDouble
from tests.robustness.conftest import Figures

# Would be bold if read as rich markup (first, so that it shows in cells cut short), then sets
# the window title, clears the screen, a C1 CSI, reverses the text and breaks the line.
HOSTILE = "[bold]b[/bold]\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\u2028x"
SHOWN = terminal_safe(HOSTILE)  # [bold]b[/bold]\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\u2028x
GHOST = "ghost\x1b[31m"  # a model the server does not have: its rows fail
RAW = ("\x1b]", "\x1b[2J", "\x07", "\x9b", "\u202e", "\u2028", "\x1b[31m")


def assert_neutralised(text: str) -> None:
    for raw in RAW:
        assert raw not in text, (raw, text)


def yaml_list(*names: str) -> str:
    """A YAML flow list of `names` (JSON strings are YAML strings, escapes and all)."""
    return "[" + ", ".join(json.dumps(name) for name in names) + "]"


def hostile_double(**settings: object) -> OllamaDouble:
    return OllamaDouble(models=[FakeModel(HOSTILE, token_interval_s=0.001, **settings)])


def invoke(*args: str) -> Result:
    outcome = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in outcome.output and (
        outcome.exception is None or isinstance(outcome.exception, SystemExit)
    ), outcome.output
    return outcome


def count_rows(figures: Figures, db: Path, expected: int) -> None:
    store = Store(db)
    figures.rows_expected += expected
    figures.rows_found += sum(len(store.results(r["run_id"])) for r in store.list_runs())


@pytest.mark.parametrize("quiet", [False, True], ids=["log lines", "quiet"])
def test_run_output(tmp_path: Path, figures: Figures, quiet: bool) -> None:
    figures.hostile_inputs += 2
    with hostile_double() as double:
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            name=json.dumps(HOSTILE),
            models=yaml_list(HOSTILE, GHOST),
            modes="[sequential]",
            repetitions=1,
            warmup=0,
        )
        outcome = invoke("run", str(suite), "--db", "db.duckdb", *(["--quiet"] if quiet else []))
    assert outcome.exit_code == 1  # the ghost's requests failed
    assert_neutralised(outcome.output)
    # The failure lines (stdout, or stderr with --quiet) and the log lines name both, escaped.
    failures = outcome.stderr if quiet else outcome.stdout
    assert f"failed: {terminal_safe(GHOST)} p1: model {GHOST!r} not found" in failures
    if not quiet:
        assert f"sequential {SHOWN} p1 #1: ttft " in outcome.stderr  # LogObserver
        assert f"sequential {terminal_safe(GHOST)} p2 #1: FAILED: " in outcome.stderr
        assert SHOWN in outcome.stdout  # the summary table
    count_rows(figures, tmp_path / "db.duckdb", 4)


def test_load_sweep_output(tmp_path: Path, figures: Figures) -> None:
    figures.hostile_inputs += 1
    with hostile_double() as double:
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models=yaml_list(HOSTILE),
            modes="[load]",
            warmup=0,
            repetitions=None,
            load="{concurrency: [1, 2], requests_per_level: 2}",
        )
        outcome = invoke("run", str(suite), "--db", "db.duckdb", "--no-report")
    assert outcome.exit_code == 0, outcome.output
    assert_neutralised(outcome.output)
    assert f"load {SHOWN} @ 1 concurrent request: 2 requests" in outcome.stderr  # describe_level
    assert f"load: {SHOWN} on {double.url}" in outcome.stdout  # the sweep's table
    count_rows(figures, tmp_path / "db.duckdb", 4)


def test_live_display(tmp_path: Path, figures: Figures) -> None:
    figures.hostile_inputs += 1
    shown = io.StringIO()
    with hostile_double() as double:
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models=yaml_list(HOSTILE, GHOST),
            modes="[sequential, parallel]",
            repetitions=2,
            warmup=0,
        )
        console = Console(file=shown, force_terminal=True, width=200)
        with LiveObserver(console) as observer:
            outcome = run_suite(load_suite(suite), Store(tmp_path / "db.duckdb"), observer)
    text = shown.getvalue()
    # The display styles itself with CSI ... m: of the names' sequences none may appear.
    for raw in ("\x1b]", "\x1b[2J", "\x07", "\x9b", "\u202e", "\u2028", "\x1b[31mghost"):
        assert raw not in text, repr(raw)
    assert "[bold]b[/bold]" in text  # shown as typed, not read as markup
    assert len(outcome.failed) == 8
    count_rows(figures, tmp_path / "db.duckdb", 16)


def test_names_read_back_from_the_database(tmp_path: Path, figures: Figures) -> None:
    """A database written by anything (an older or hostile novabench, a hand edit): `runs`,
    `runs --show` and `compare` print its names neutralised."""
    figures.hostile_inputs += 3
    store = Store(tmp_path / "db.duckdb")
    run_id = make_run(
        store,
        run_id="r1" + HOSTILE,
        suite_name=HOSTILE,
        host=HOSTILE,
        ollama_version=HOSTILE,
        models=[{"model": HOSTILE, "host": HOSTILE, "found": True, "digest": HOSTILE}],
        prompts=[{"prompt_id": HOSTILE, "text": "Hi.", "system": None}],
    )
    rows = [
        result(model=HOSTILE, host=HOSTILE, prompt_id=HOSTILE, repetition=i, ttft_s=0.1, e2e_s=1.0)
        for i in range(3)
    ]
    store.add_results(run_id, list(enumerate(rows)))
    store.finish_run(run_id, "complete")
    for args in (["runs"], ["runs", "--show", run_id], ["compare", run_id, run_id, "--all"]):
        outcome = invoke(*args, "--db", "db.duckdb")
        assert outcome.exit_code == 0, outcome.output
        assert_neutralised(outcome.output)
        assert "[bold]b[/bold]" in outcome.output  # not read as rich markup
    count_rows(figures, tmp_path / "db.duckdb", 3)


def test_a_run_id_in_the_database_that_would_climb_out(tmp_path: Path, figures: Figures) -> None:
    figures.hostile_inputs += 1
    (tmp_path / "work").mkdir()
    store = Store(tmp_path / "work" / "db.duckdb")
    make_run(store, run_id="../../evil")
    before = sorted(tmp_path.rglob("*"))
    outcome = invoke("history", "--db", "work/db.duckdb")
    assert outcome.exit_code == 6
    assert outcome.stderr == (
        "Error: run id '../../evil' cannot name a report file: it must be non-empty and contain "
        "no '/', '\\' or '..' (novabench makes ids like '20261127T104500Z-3fa1')\n"
    )
    assert sorted(tmp_path.rglob("*")) == before


def test_names_a_server_gives(figures: Figures) -> None:
    figures.hostile_inputs += 1
    double = OllamaDouble(
        models=[
            FakeModel(HOSTILE, family=HOSTILE, parameter_size=HOSTILE, quantization_level=HOSTILE)
        ],
        version=HOSTILE,
    )
    with double:
        outcome = invoke("models", "--host", double.url)
    assert outcome.exit_code == 0, outcome.output
    assert_neutralised(outcome.output)
    assert f"(Ollama {SHOWN})" in outcome.output


def test_error_lines(figures: Figures) -> None:
    figures.hostile_inputs += 1
    outcome = invoke("runs", "--db", HOSTILE + ".duckdb")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"Error: {SHOWN}.duckdb: no such database: 'novabench run SUITE' creates it\n"
    )


def test_terminal_safe_writes_what_a_utf8_terminal_can_take() -> None:
    # A lone surrogate (JSON and YAML escapes can make one) cannot be encoded: shown as an escape.
    assert terminal_safe("a\ud800b\u2029c") == "a\\ud800b\\u2029c"
    assert terminal_safe(HOSTILE).encode("utf-8")
    assert terminal_safe("naïve 🙂 \u200d") == "naïve 🙂 \u200d"
