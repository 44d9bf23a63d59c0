"""The index of a long history: the newest runs and a table of months by suite; each month's
page lists its runs by suite; after a run only the index and that run's month are written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from novabench.report import index_page, render_all, render_index
from novabench.storage.store import Store
from tests.history import FAST, add_run
from tests.report.pages import read_page

DAY = 24 * 60
# (run id, minutes after tests.history.T0 = 2026-11-27 10:00, suite, month)
RUNS = [
    ("20261127T100000Z-0001", 0, "chat", "2026-11"),
    ("20261128T100000Z-0002", DAY, "code", "2026-11"),
    ("20261203T100000Z-0003", 6 * DAY, "chat", "2026-12"),
    ("20261210T100000Z-0004", 13 * DAY, "chat", "2026-12"),
    ("20261215T100000Z-0005", 18 * DAY, "code", "2026-12"),
    ("20270106T100000Z-0006", 40 * DAY, "code", "2027-01"),
    ("20270107T100000Z-0007", 41 * DAY, "chat", "2027-01"),
]
MONTHS = {"2026-11": 2, "2026-12": 3, "2027-01": 2}


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Store:
    made = Store(tmp_path_factory.mktemp("index") / "db.duckdb")
    for run_id, minute, suite, _ in RUNS:
        add_run(made, run_id, minute, FAST, suite=suite)
    return made


@pytest.fixture
def store(stored: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.setattr(index_page, "RECENT_RUNS", 3)  # seven runs: three on the index
    return stored


def _listed(page: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([^"]+)">', page)


def test_the_index_lists_the_newest_runs_and_every_month(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    page = read_page(render_index(store, out))
    assert _listed(page) == [run[0] for run in reversed(RUNS)][:3]
    assert "The newest 3 of 7 runs" in page
    months = dict(re.findall(r'<tr data-month="([^"]+)">(.*?)</tr>', page, re.S))
    assert list(months) == sorted(MONTHS, reverse=True)
    for month, row in months.items():
        assert f'href="index/{month}.html"' in row
        counts = re.findall(r'<td class="num">(?:<a [^>]*>)?(\d+|—)', row)
        chat = sum(1 for _, _, s, m in RUNS if (s, m) == ("chat", month))
        code = sum(1 for _, _, s, m in RUNS if (s, m) == ("code", month))
        assert counts == [str(chat or "—"), str(code or "—"), str(MONTHS[month])]


def test_each_month_page_lists_its_runs_by_suite(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_index(store, out)
    seen = []
    for month, count in MONTHS.items():
        page = read_page(out / "index" / f"{month}.html")
        sections = re.findall(r'data-suite="([^"]+)">(.*?)</section>', page, re.S)
        assert [suite for suite, _ in sections] == sorted({s for _, _, s, m in RUNS if m == month})
        for suite, section in sections:
            listed = _listed(section)
            expected = [r for r, _, s, m in reversed(RUNS) if (s, m) == (suite, month)]
            assert listed == expected  # newest first
            assert all(f'href="../runs/{run_id}.html"' in section for run_id in listed)
            seen += listed
        assert f"The {count} runs started in {month}" in page
        assert 'href="../index.html"' in page
    assert sorted(seen) == sorted(run[0] for run in RUNS)


def test_after_a_run_only_its_month_and_missing_months_are_written(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    render_index(store, out)
    november, december = out / "index" / "2026-11.html", out / "index" / "2026-12.html"
    november.write_text("kept as it was")
    december.unlink()
    newest = RUNS[-1][0]
    pages = render_all(store, newest, out)
    assert november.read_text() == "kept as it was"  # not this run's month: not rewritten
    assert december.is_file()  # missing: written, so the index links nowhere broken
    assert newest in read_page(out / "index" / "2027-01.html")
    assert pages[-1] == out / "index.html"


def test_listing_the_newest_counts_as_listing_all(store: Store) -> None:
    every = store.list_runs()
    assert store.list_runs(newest=3) == every[:3]
    assert store.list_runs(month="2026-12") == [r for r in every if r.run_id[:6] == "202612"]
    # measured requests (the failed one too); never the warm-up and the cold start
    assert [(r.requests, r.errors) for r in every] == [(len(FAST) + 1, 1)] * len(RUNS)
    assert store.run_months()[0] == ("2027-01", "chat", 1)
