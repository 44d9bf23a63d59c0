"""Untrusted model output and hostile names: no raw escape reaches a terminal, no file lands
outside the output folder."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from novabench import Store, load_suite, run_suite
from novabench.cli import cli
from novabench.console.live import LiveObserver
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble
from tests.robustness.conftest import Figures

HOSTILE_REPLY = (
    "\x1b[31mred\x1b[0m \x1b]0;pwned-title\x07 \x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\ "
    "\u202eevil\u202c \x1b[2J\x1b[H cleared \x9b31m csi8 \x07 bell"
)


def hostile_double() -> OllamaDouble:
    return OllamaDouble(models=[FakeModel("llama3.2", reply=HOSTILE_REPLY, token_interval_s=0.002)])


def test_model_escapes_never_reach_the_terminal(tmp_path: Path, figures: Figures) -> None:
    figures.hostile_inputs += 1
    with hostile_double() as double:
        path = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models="[llama3.2]",
            modes="[sequential]",
            repetitions=1,
            warmup=0,
        )
        result = CliRunner().invoke(cli, ["run", str(path), "--no-report"])
        assert result.exit_code in (0, 1), result.output  # checks may fail; nothing crashes
        assert "\x1b" not in result.output and "\x9b" not in result.output
        assert "\u202e" not in result.output

        live = io.StringIO()
        console = Console(file=live, force_terminal=True, width=120)
        store = Store(tmp_path / "db.duckdb")
        with LiveObserver(console) as observer:
            outcome = run_suite(load_suite(path), store, observer=observer)
        rows = store.results(outcome.run_id)
        figures.rows_expected += 2
        figures.rows_found += len(rows)
        assert rows[0]["response_text"] == HOSTILE_REPLY  # stored as received
    shown = live.getvalue()
    # The display's own styling uses CSI ... m; none of the model's sequences may appear.
    for payload in (
        "\x1b]",
        "\x1b[2J",
        "\x1b[H",
        "\x1b\\",
        "\x1b[31mred",
        "\x9b",
        "\x07",
        "\u202e",
    ):
        assert payload not in shown, repr(payload)


def test_report_of_a_run_id_that_climbs_out_is_refused(tmp_path: Path, figures: Figures) -> None:
    figures.hostile_inputs += 1
    with hostile_double() as double:
        path = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models="[llama3.2]",
            modes="[sequential]",
            repetitions=1,
            warmup=0,
        )
        assert CliRunner().invoke(cli, ["run", str(path), "--no-report"]).exit_code in (0, 1)
    before = set(tmp_path.parent.iterdir())
    result = CliRunner().invoke(cli, ["report", "../../etc"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert set(tmp_path.parent.iterdir()) == before
    assert not (tmp_path / "etc").exists()


def test_suite_name_that_climbs_out_stays_inside_the_reports_folder(
    tmp_path: Path, figures: Figures
) -> None:
    figures.hostile_inputs += 2
    root = tmp_path / "work"
    root.mkdir()
    with hostile_double() as double:
        path = write_suite(
            root / "s.yaml",
            double.url,
            name="../../evil",
            models="[llama3.2]",
            modes="[sequential]",
            repetitions=1,
            warmup=0,
        )
        result = CliRunner().invoke(
            cli, ["run", str(path), "--db", str(root / "reports" / "novabench.duckdb")]
        )
    assert result.exit_code in (0, 1), result.output
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(str(p).startswith("work/") for p in written), written
    store = Store(root / "reports" / "novabench.duckdb")
    run_id = store.latest_run_id()
    pages = list((root / "reports" / "runs").glob("*.html"))
    assert [p.name for p in pages] == [f"{run_id}.html"]
    for p in written:
        assert (tmp_path / p).resolve().is_relative_to(root.resolve()), p
    # The per-suite lock file (reports/locks/) may carry a sanitised suite name; pages may not.
    assert not any("evil" in str(p) for p in written if "locks" not in p.parts), written

    db = str(root / "reports" / "novabench.duckdb")
    out = root / "out.csv"
    for suite_name, code in (("../x", 1), ("../../evil", 0)):
        result = CliRunner().invoke(
            cli,
            ["export", "--db", db, "--suite", suite_name, "--format", "csv", "--out", str(out)],
        )
        assert result.exit_code == code, result.output
    after = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert after - written == {Path("work/out.csv")}
