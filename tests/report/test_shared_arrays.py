"""Arrays several traces of a page repeat are kept once in the page (report/figures.py)."""

from __future__ import annotations

import json
from pathlib import Path

from novabench.report import render_history
from novabench.report.figures import SharedArrays
from novabench.storage.store import Store
from tests.fixtures import make_schema5_db
from tests.report.pages import page_figures


def test_a_repeated_array_is_kept_once_and_the_rest_left_alone() -> None:
    times, texts = ["2026-01-01 10:00:00", "2026-01-01 11:00:00"], ["run a", "run b"]
    first = {"data": [{"x": list(times), "y": [1, 2], "text": list(texts)}]}
    second = {"data": [{"x": list(times), "y": [3, 4], "text": ["only here", "and here"]}]}
    shared = SharedArrays()
    shared.share([first, None, second])
    assert first["data"][0]["x"] == second["data"][0]["x"] == {"$shared": "0"}
    assert shared.arrays == {"0": times}
    assert first["data"][0]["text"] == texts  # not repeated: stays in its trace
    assert second["data"][0]["y"] == [3, 4]  # only text and x are ever shared
    assert SharedArrays().inside() == ""
    prefixed = SharedArrays(prefix="s1.")
    prefixed.share([{"data": [{"x": [1, 2]}, {"x": [1, 2]}]}])
    assert json.loads("{" + prefixed.inside() + "}") == {"s1.0": [1, 2]}


def test_the_history_keeps_each_hover_text_once(tmp_path: Path) -> None:
    db = make_schema5_db.unpack(tmp_path / "novabench.duckdb")
    page = render_history(Store(db), tmp_path / "out").read_text()
    figures = page_figures(page)  # with the shared arrays put back, as the page's script does
    lines = [trace["text"] for f in figures.values() for trace in f["data"] if "text" in trace]
    hover = next(t for text in lines if len(text) > 1 for t in text if t.startswith("run "))
    texts = [t for text in lines for t in text]
    assert texts.count(hover) >= 4  # the same point in each metric's chart...
    assert page.count(hover.split("<br>")[0].replace("·", "\\u00b7")) == 1  # ...written once
