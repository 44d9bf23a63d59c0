"""The history page after a run draws only that run's suite again (report/history_cache.py): the
page is the same as one drawn whole, whatever happened to the stored runs in between."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from novabench.analysis.pruning import prune_runs
from novabench.report import history_cache, history_page, render_history
from novabench.storage.prune import PruneRule, plan_prune
from novabench.storage.store import Store
from tests.fixtures.make_schema5_db import normalise
from tests.scale.history import HistoryShape, build_history

SHAPE = HistoryShape(
    runs=80,
    requests_per_run=6,
    models_per_run=1,
    prompts=1,
    interval=timedelta(hours=5),
    load_every=8,
)


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, list[str]]:
    """A history of 80 runs over several suites, its page written once; and the list of the
    suites whose charts are drawn from then on."""
    store = build_history(tmp_path / "db.duckdb", SHAPE)
    render_history(store, tmp_path / "out")
    drawn: list[str] = []
    draw = history_page._Drawing.draw

    def counted(self: Any) -> Any:
        drawn.extend(self.suites)
        return draw(self)

    monkeypatch.setattr(history_page._Drawing, "draw", counted)
    return store, drawn


def _drawn_whole(store: Store, out: Path) -> str:
    """The page as it is drawn with nothing kept."""
    shutil.rmtree(history_cache.folder_of(store.path), ignore_errors=True)
    return normalise(render_history(store, out).read_text(encoding="utf-8"))


def _page(store: Store, out: Path) -> str:
    return normalise(render_history(store, out).read_text(encoding="utf-8"))


def test_after_a_run_only_its_suite_is_drawn_and_the_page_is_the_same(
    history: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, drawn = history
    assert _page(store, tmp_path / "out") and drawn == []  # nothing changed: nothing drawn
    suites = {run["suite_name"] for run in store.list_runs()}
    build_history(store.path, dataclasses.replace(SHAPE, runs=1), first=SHAPE.runs)
    newest = store.list_runs()[0]
    page = _page(store, tmp_path / "out")
    assert drawn == [newest["suite_name"]] and len(suites) > 2
    assert newest["run_id"] in page
    assert page == _drawn_whole(store, tmp_path / "whole")


def test_a_pruned_suite_is_drawn_again(history: tuple[Store, list[str]], tmp_path: Path) -> None:
    store, drawn = history
    suite = store.list_runs()[-1]["suite_name"]
    plan = plan_prune(store, PruneRule(keep_last=3, suite=suite))
    assert plan.runs
    prune_runs(store, plan)
    drawn.clear()
    page = _page(store, tmp_path / "out")
    assert drawn == [suite]
    assert page == _drawn_whole(store, tmp_path / "whole")


def test_kept_charts_that_are_damaged_or_of_another_state_are_drawn_again(
    history: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, drawn = history
    folder = history_cache.folder_of(store.path)
    kept = sorted(folder.glob("*.json"))
    assert len(kept) == len({run["suite_name"] for run in store.list_runs()})
    kept[0].write_text("{not json", encoding="utf-8")
    kept[1].write_text('{"key": "another state", "charts": {}}', encoding="utf-8")
    page = _page(store, tmp_path / "out")
    assert len(drawn) == 2
    assert page == _drawn_whole(store, tmp_path / "whole")
    assert sorted(folder.glob("*.json")) == kept  # kept again


def test_charts_of_a_suite_no_longer_stored_are_forgotten(
    history: tuple[Store, list[str]], tmp_path: Path
) -> None:
    store, _ = history
    folder = history_cache.folder_of(store.path)
    before = len(list(folder.glob("*.json")))
    with store.connect() as con:  # as if every run of one suite had gone
        suite = con.execute("SELECT min(suite_name) FROM runs").fetchone()[0]
        con.execute("DELETE FROM runs WHERE suite_name = ?", [suite])
    page = _page(store, tmp_path / "out")
    assert len(list(folder.glob("*.json"))) == before - 1
    assert f'data-suite="{suite}"' not in page
