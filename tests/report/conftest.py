"""The report tests' pages: the chat-latency history, stored and rendered once per session."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from novabench.report import render_all, render_comparison, render_run
from novabench.storage.store import Store
from tests.report.chat_latency import NEW_RUN, OLD_RUN, add_chat_run
from tests.report.pages import PLOTLY_BANNER, read_page, without_plotly_js


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Two runs of one suite: an older interrupted sequential-only one, a complete two-mode one."""
    db = Store(tmp_path_factory.mktemp("store") / "db.duckdb")
    add_chat_run(
        db,
        OLD_RUN,
        datetime(2026, 11, 26, 9, 0, 0),
        ["sequential"],
        "interrupted",
        {"sequential": 7.5},
    )
    add_chat_run(
        db,
        NEW_RUN,
        datetime(2026, 11, 27, 10, 45, 0),
        ["sequential", "parallel"],
        "complete",
        {"sequential": 6.0, "parallel": 3.2},
        measurement=True,
    )
    return db


@pytest.fixture(scope="session")
def reports(store: Store, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The pages of both runs, the history and the index, rendered once for every test to read."""
    out = tmp_path_factory.mktemp("out") / "reports"
    run_page, history, index = render_all(store, NEW_RUN, out)
    old_page = render_run(store, OLD_RUN, out)
    compare = render_comparison(store, OLD_RUN, NEW_RUN, out)
    pages = {
        "run": run_page,
        "old": old_page,
        "history": history,
        "index": index,
        "compare": compare,
    }
    for name, path in pages.items():
        page = read_page(path)
        own = len(without_plotly_js(page).encode()) if PLOTLY_BANNER.search(page) else None
        print(
            f"report size: {name:8} {path.stat().st_size / 1e6:6.2f} MB"
            + (f", {own / 1e3:6.1f} kB besides plotly.js" if own is not None else "")
            + f"  {path.name}"
        )
    return pages
