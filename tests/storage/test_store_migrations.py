"""Upgrading a database written by an earlier novabench: backup first, migrate in place, once."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from novabench.report import history_cache, render_all
from novabench.storage.schema import MIGRATIONS, SCHEMA_VERSION
from novabench.storage.store import Store
from tests.fixtures.make_schema1_db import RUN_ID, unpack
from tests.report.pages import CHART_JSON


def schema_version(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        row = con.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert row is not None
    return int(row[0])


def test_a_schema_1_database_is_backed_up_then_migrated_once(tmp_path: Path) -> None:
    db = unpack(tmp_path / "reports" / "novabench.duckdb")
    assert schema_version(db) == 1
    before = db.read_bytes()

    store = Store(db)
    assert store.schema_version() == SCHEMA_VERSION

    backup = store.last_backup
    assert backup is not None and backup.parent == db.parent
    assert backup.name.startswith("novabench.v1-backup-") and backup.suffix == ".duckdb"
    assert backup.read_bytes() == before
    assert schema_version(backup) == 1
    assert sorted(p.name for p in db.parent.iterdir()) == sorted([db.name, backup.name])

    with duckdb.connect(str(db), read_only=True) as con:
        names = [
            r[0]
            for r in con.execute("SELECT name FROM schema_migrations ORDER BY version").fetchall()
        ]
    assert names == [name for _, name, _ in MIGRATIONS]

    [listed] = store.list_runs()
    assert (listed["run_id"], listed["status"], listed["requests"], listed["errors"]) == (
        RUN_ID,
        "complete",
        8,
        1,
    )
    results = store.results(RUN_ID)
    assert len(results) == 12
    assert {r["backend"] for r in results} == {"ollama"}  # m004's default for old rows
    assert [r["is_cold"] for r in results] == [False] * 12  # m002's default
    assert results[1]["token_offsets_s"][0] == results[1]["ttft_s"]
    assert [m["model"] for m in store.models(RUN_ID)] == ["llama3.2", "nemotron-mini"]
    assert store.get_run(RUN_ID)["host_versions"] == {"http://127.0.0.1:11434": "0.5.7"}
    assert len(store.history()) == 7  # measured, successful requests

    pages = render_all(store, RUN_ID, tmp_path / "out")
    assert all(page.exists() for page in pages)
    assert RUN_ID in pages[0].read_text()

    again = Store(db)
    assert again.schema_version() == SCHEMA_VERSION
    assert again.last_backup is None
    kept_charts = history_cache.folder_of(db).name  # the history's, beside the database
    assert sorted(p.name for p in db.parent.iterdir()) == sorted(
        [db.name, backup.name, kept_charts]
    )


def test_a_new_database_is_not_backed_up(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.duckdb")
    assert store.schema_version() == SCHEMA_VERSION
    assert store.last_backup is None
    assert [p.name for p in tmp_path.iterdir()] == ["db.duckdb"]


def test_a_database_of_schema_5_reads_and_reports_as_it_did(tmp_path: Path) -> None:
    """A history written before issue 12 (commit 21d33d8) opens, migrates, and every page renders
    as that novabench rendered it (plotly.js and the time of rendering aside)."""
    from novabench.report import render_history, render_index, render_run
    from tests.fixtures import make_schema5_db as fixture

    db = fixture.unpack(tmp_path / "reports" / "novabench.duckdb")
    assert schema_version(db) == 5
    store = Store(db)
    assert store.schema_version() == SCHEMA_VERSION
    golden = fixture.golden_pages()
    out = tmp_path / "out"
    pages = {}
    for listed in store.list_runs():
        path = render_run(store, listed["run_id"], out)
        pages[f"runs/{listed['run_id']}.html"] = fixture.normalise(path.read_text())
    pages["history.html"] = fixture.normalise(render_history(store, out).read_text())
    pages["index.html"] = fixture.normalise(render_index(store, out).read_text())
    assert sorted(pages) == sorted(golden)
    for name, page in pages.items():
        if name == "history.html":
            # changed on purpose in issue 13: its charts' time axes and hover texts (their points
            # are held equal by test_the_schema_5_history_keeps_its_points_and_marks) and a
            # paragraph stating the long-series rule; the rest as before
            page = re.sub(r'\n  <p class="lede" id="series-rule">[^<]*</p>', "", page)
            assert CHART_JSON.sub("", page) == CHART_JSON.sub("", golden[name])
            continue
        assert page == golden[name], f"{name} differs from what novabench rendered before"


def test_older_runs_get_their_facts_from_the_suite_text_or_say_they_were_not_recorded(
    tmp_path: Path,
) -> None:
    """m006: the facts a report needs come from the suite text once, at the migration; a text
    today's schema no longer reads is never guessed at."""
    from novabench.report import render_run
    from tests.fixtures import make_schema5_db as fixture

    db = fixture.unpack(tmp_path / "novabench.duckdb")
    with duckdb.connect(str(db)) as con:
        run_ids = [
            r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()
        ]
        names = dict(con.execute("SELECT run_id, suite_name FROM runs").fetchall())
        auto = next(r for r in run_ids if names[r] == "auto")
        con.execute(
            "UPDATE runs SET suite_text = 'name: auto\nmodels: [m]\nprompts: [p]\nsamples: 3\n' "
            "WHERE run_id = ?",
            [auto],
        )
    store = Store(db)
    checks = store.get_run(run_ids[0])["facts"]
    assert checks["recorded"] == "from the suite text"
    assert checks["checks"]["hi"] == {"max_sentences": "at most 1 sentence"}
    assert checks["description"] == "Two prompts with checks, one model missing on the host."
    load = next(store.get_run(r)["facts"] for r in run_ids if names[r] == "load")
    assert load["load"]["levels"] == [1, 2, 4] and load["load"]["slo"]["ttft_ms"] == 500.0
    unreadable = store.get_run(auto)["facts"]
    assert unreadable["recorded"] == "not recorded" and unreadable["target_metric"] is None
    page = render_run(store, auto, tmp_path / "out").read_text()
    assert "the suite&#39;s target figure was not recorded" in page
    openai = next(r for r in run_ids if names[r] == "openai")
    unsent = {m["model"]: m["unsent_options"] for m in store.models(openai)}
    assert unsent == {"llama3.2": None, "llama3.2-v1": ["top_k"]}


def test_a_run_records_its_facts_as_it_starts(tmp_path: Path) -> None:
    from novabench import load_suite, run_suite
    from tests.conftest import write_suite
    from tests.ollama_double import FakeModel, OllamaDouble

    with OllamaDouble(models=[FakeModel("llama3.2")]) as double:
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models="[{name: llama3.2, backend: openai, options: {num_ctx: 512, seed: 1}}]",
            prompts="[{id: p, text: Hi, checks: {max_words: 3}}]",
            modes="[sequential]",
            repetitions=1,
            warmup=0,
            description="'  Short.  '",
        )
        store = Store(tmp_path / "db.duckdb")
        outcome = run_suite(load_suite(suite), store)
    facts = store.get_run(outcome.run_id)["facts"]
    assert facts == {
        "description": "Short.",
        "target_metric": "e2e_ms",
        "target_cv": None,
        "checks": {"p": {"max_words": "at most 3 words"}},
        "load": None,
        "recorded": "at run",
    }
    assert [m["unsent_options"] for m in store.models(outcome.run_id)] == [["num_ctx"]]
