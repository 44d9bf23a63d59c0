"""Exports through DuckDB's COPY: formats, filters, columns, agreement with figures.derive."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from novabench import Store, load_suite, run_suite
from novabench.analysis.figures import derive
from novabench.errors import RunNotFoundError
from novabench.storage.export import COLUMNS, EXPORT_FORMAT_VERSION, export_results
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble


@pytest.fixture
def two_runs(ollama: OllamaDouble, tmp_path: Path) -> tuple[Store, list[str]]:
    store = Store(tmp_path / "db.duckdb")
    first = run_suite(
        load_suite(
            write_suite(tmp_path / "a.yaml", ollama.url, name="alpha", modes="[sequential]")
        ),
        store,
    )
    second = run_suite(
        load_suite(
            write_suite(
                tmp_path / "b.yaml", ollama.url, name="beta", modes="[parallel]", repetitions=1
            )
        ),
        store,
    )
    return store, [first.run_id, second.run_id]


def test_csv_has_the_documented_columns_and_every_row(
    two_runs: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, _ = two_runs
    out = tmp_path / "out" / "all.csv"
    count = export_results(store, out, "csv")
    with out.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == [name for name, _, _ in COLUMNS]
    assert count == len(rows) == 10 + 6  # alpha: 8 + 2 warm-ups; beta: 4 + 2 warm-ups
    assert {r["format_version"] for r in rows} == {str(EXPORT_FORMAT_VERSION)}
    assert not out.with_name("all.csv.partial").exists()


def test_filters_by_run_and_by_suite(two_runs: tuple[Store, list[str]], tmp_path: Path) -> None:
    store, (alpha, beta) = two_runs
    assert export_results(store, tmp_path / "a.json", "json", run_id=alpha) == 10
    lines = (tmp_path / "a.json").read_text().splitlines()
    assert len(lines) == 10 and {json.loads(line)["run_id"] for line in lines} == {alpha}
    assert export_results(store, tmp_path / "b.parquet", "parquet", suite="beta") == 6
    with duckdb.connect() as con:
        runs = con.execute(
            f"SELECT DISTINCT run_id FROM read_parquet('{tmp_path / 'b.parquet'}')"
        ).fetchall()
    assert runs == [(beta,)]


def test_unknown_run_or_suite(two_runs: tuple[Store, list[str]], tmp_path: Path) -> None:
    store, _ = two_runs
    with pytest.raises(RunNotFoundError):
        export_results(store, tmp_path / "x.csv", "csv", run_id="nope")
    with pytest.raises(RunNotFoundError, match="no runs of suite 'gamma'"):
        export_results(store, tmp_path / "x.csv", "csv", suite="gamma")
    assert not (tmp_path / "x.csv").exists()


def test_sql_figures_agree_with_metrics_derive(
    two_runs: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, (alpha, _) = two_runs
    export_results(store, tmp_path / "a.parquet", "parquet", run_id=alpha)
    with duckdb.connect() as con:
        cursor = con.execute(f"SELECT * FROM read_parquet('{tmp_path / 'a.parquet'}') ORDER BY seq")
        names = [d[0] for d in cursor.description]
        exported = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    stored = store.results(alpha)
    figures = (
        "ttft_ms",
        "e2e_ms",
        "itl_ms",
        "tpot_ms",
        "eval_tokens_per_s",
        "client_tokens_per_s",
        "prompt_tokens_per_s",
        "load_ms",
        "queue_ms",
        "output_tokens",
    )
    for row, raw in zip(exported, stored, strict=True):
        expected = derive(raw)
        for figure in figures:
            # None when undefined (all tokens in one chunk: no stream time); approx(None) raises
            want = expected[figure]
            assert row[figure] == (None if want is None else pytest.approx(want, rel=1e-9)), figure


def test_export_command(two_runs: tuple[Store, list[str]], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from novabench.cli import cli

    store, (alpha, _) = two_runs
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(
        cli,
        ["export", "--db", str(store.path), "--run", alpha, "--format", "csv", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"10 rows written to {out}\n"
    result = CliRunner().invoke(
        cli, ["export", "--db", str(store.path), "--format", "xml", "--out", str(out)]
    )
    assert result.exit_code == 2 and "'xml' is not one of 'csv', 'json', 'parquet'" in result.stderr


def test_load_requests_carry_their_level(tmp_path: Path) -> None:
    model = FakeModel("llama3.2", reply="one two three", token_interval_s=0.002)
    with OllamaDouble(models=[model], num_parallel=2) as double:
        path = write_suite(
            tmp_path / "load.yaml",
            double.url,
            models="[llama3.2]",
            prompts='["Hi."]',
            modes="[load, sequential]",
            repetitions=1,
            load="{concurrency: [1, 2], requests_per_level: 3, early_stop: false}",
        )
        store = Store(tmp_path / "db.duckdb")
        run_id = run_suite(load_suite(path), store).run_id
    out = tmp_path / "load.csv"
    export_results(store, out, "csv", run_id=run_id)
    rows = list(csv.DictReader(out.open()))
    measured = [r for r in rows if r["is_warmup"] == "false"]
    levels = sorted((r["load_kind"], r["load_level"]) for r in measured if r["mode"] == "load")
    assert levels == [("concurrency", "1.0")] * 3 + [("concurrency", "2.0")] * 3
    assert [(r["load_kind"], r["load_level"]) for r in measured if r["mode"] != "load"] == [
        ("", "")
    ]
