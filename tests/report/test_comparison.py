"""The comparison page of two runs, and `compare --html`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from novabench.analysis import statistics as stats
from novabench.cli import cli
from novabench.errors import RunNotFoundError
from novabench.report import render_comparison, render_run
from novabench.storage.store import Store
from tests.history import FAST, RUN_A, RUN_B, SLOW, add_run, two_runs
from tests.report.pages import page_figures, read_page, table_html

# ---- comparison page ----------------------------------------------------------------------

HOSTILE_MODEL = "m<b>x</b>"


def test_comparison_page(tmp_path: Path) -> None:
    db = two_runs(tmp_path, model=HOSTILE_MODEL)
    out = tmp_path / "reports"
    render_run(db, RUN_A, out)  # only A has a page to link to
    path = render_comparison(db, RUN_A, RUN_B, out)
    assert path == out / "compare" / f"{RUN_A}__{RUN_B}.html"
    page = read_page(path)
    print(f"report size: compare with changes {path.stat().st_size / 1e6:6.2f} MB")
    assert f'<a class="mono" href="../runs/{RUN_A}.html">{RUN_A}</a>' in page
    assert f'href="../runs/{RUN_B}.html"' not in page  # no page: no broken link
    assert "1 significant regression, 4 improvements" in page
    sides = table_html(page, "sides-table")
    assert "2026-11-27 10:00:00 UTC" in sides and "2026-11-27 10:01:00 UTC" in sides
    assert 'data-fact="ollama"' in sides and 'class="differs"' not in sides.split("Started")[0]
    table = table_html(page, "findings-table")
    rows = re.findall(r'<tr class="finding ([^"]*)" data-metric="([^"]+)"', table)
    assert rows == [
        ("regression", "ttft_ms"),
        ("improvement", "e2e_ms"),
        ("improvement", "itl_ms"),
        ("improvement", "eval_tokens_per_s"),
        ("improvement", "client_tokens_per_s"),
    ]
    assert 'class="findings tint"' in table
    assert "m&lt;b&gt;x&lt;/b&gt;" in table and HOSTILE_MODEL not in page
    chart = page_figures(page)["changes"]
    assert [a["text"] for a in chart["layout"]["annotations"]] == [
        "TTFT (ms)",
        "end-to-end (ms)",
        "ITL (ms)",
        "gen rate, server (tok/s)",
        "gen rate, client (tok/s)",
    ]
    ttft = chart["data"][0]
    assert ttft["y"] == ["m&lt;b&gt;x&lt;/b&gt; · p1"]  # Plotly shows the tag, not bold
    change = 100 * (stats.median(SLOW) / stats.median(FAST) - 1)  # type: ignore[operator]
    assert ttft["x"] == [pytest.approx(change, abs=0.01)]
    assert ttft["marker"]["color"] == ["#dc2626"]


def test_comparison_page_notes_what_changed(tmp_path: Path) -> None:
    db = Store(tmp_path / "db.duckdb")
    add_run(db, RUN_A, 0, FAST)
    add_run(db, RUN_B, 1, FAST, version="0.13.0", digest="e" * 64)
    page = read_page(render_comparison(db, RUN_A, RUN_B, tmp_path / "reports"))
    notes = page[page.index('<ul class="compare-notes" id="notes">') :]
    notes = notes[: notes.index("</ul>")]
    assert "m: model changed (digest dddddddddddd → eeeeeeeeeeee)" in notes
    assert "Ollama 0.12.6 → 0.13.0" in notes
    models = table_html(page, "models-table")
    assert '<tr class="differs" data-model="m">' in models
    assert re.search(r'<tr class="differs" data-fact="ollama">', page)
    assert "No significant change" in page


def test_comparison_refuses_bad_and_unknown_run_ids(tmp_path: Path) -> None:
    db = two_runs(tmp_path)
    for bad in ("", "../x", "a/b"):
        with pytest.raises(ValueError):
            render_comparison(db, bad, RUN_B, tmp_path / "reports")
        with pytest.raises(ValueError):
            render_comparison(db, RUN_A, bad, tmp_path / "reports")
    with pytest.raises(RunNotFoundError):
        render_comparison(db, RUN_A, "20261127T000000Z-none", tmp_path / "reports")
    assert not (tmp_path / "reports").exists()


def test_compare_html_option_writes_the_page(tmp_path: Path) -> None:
    db = two_runs(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["compare", RUN_A, RUN_B, "--db", str(tmp_path / "db.duckdb")])
    assert result.exit_code == 0 and "comparison:" not in result.output
    assert not (tmp_path / "compare").exists()
    result = runner.invoke(
        cli, ["compare", RUN_A, RUN_B, "--db", str(tmp_path / "db.duckdb"), "--html"]
    )
    assert result.exit_code == 0, result.output
    written = tmp_path / "compare" / f"{RUN_A}__{RUN_B}.html"
    assert result.output.splitlines()[-1] == f"comparison: {written}"
    assert "1 significant regression" in read_page(written)
    out = tmp_path / "elsewhere"
    result = runner.invoke(
        cli,
        ["compare", RUN_A, RUN_B, "--db", str(db.path), "--html", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"comparison: {out / 'compare' / written.name}"
    result = runner.invoke(cli, ["compare", RUN_A, "nope", "--db", str(db.path), "--html"])
    assert result.exit_code != 0 and result.output.startswith("Error: no run 'nope'")
