"""Every page: written where it belongs, self-contained, its figures embedded once, its weight."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.report.chat_latency import HOST, NEW_RUN
from tests.report.pages import PLOTLY_BANNER, page_figures, read_page, without_plotly_js

# ---- every page ---------------------------------------------------------------------------


def test_render_all_writes_the_three_pages_run_page_first(reports: dict[str, Path]) -> None:
    out = reports["index"].parent
    assert reports["run"] == out / "runs" / f"{NEW_RUN}.html"
    assert reports["history"] == out / "history.html"
    assert reports["index"] == out / "index.html"
    leftovers = [
        p.name for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")
    ]
    assert leftovers == []


@pytest.mark.parametrize("name", ["run", "old", "history", "index", "compare"])
def test_pages_are_self_contained(reports: dict[str, Path], name: str) -> None:
    page = read_page(reports[name])
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for remote in (
        "<script src",
        "<link href",
        "<link rel",
        '<img src="http',
        'src="http',
        "@import",
        "url(http",
    ):
        assert remote not in lowered, remote
    copies = len(PLOTLY_BANNER.findall(page))
    assert copies == (0 if name == "index" else 1)
    if copies:
        outside = without_plotly_js(page).lower()
        assert "http://" not in outside.replace(HOST, "") and "https://" not in outside
        assert '{"displaylogo": false, "responsive": true}' in page
    assert "novabench 0.1.0" in page  # footer


def test_figures_are_embedded_once_and_cannot_break_out_of_their_script(
    reports: dict[str, Path],
) -> None:
    page = read_page(reports["run"])
    figures = page_figures(page)
    assert set(figures) == {
        "ttft",
        "generation",
        "e2e",
        "gaps",
        "length",
        "walls",
        "timeline",
        "resources",
    }
    for figure_id in figures:
        assert page.count(f'id="figure-{figure_id}"') == 1
        assert page.count(f'data-figure="figure-{figure_id}"') == 1
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S):
        assert "<" not in block and ">" not in block and "&" not in block


# ---- weight -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["run", "old", "history", "compare"])
def test_pages_carry_one_plotly_and_little_else(reports: dict[str, Path], name: str) -> None:
    page = read_page(reports[name])
    assert len(PLOTLY_BANNER.findall(page)) == 1
    own_kb = len(without_plotly_js(page).encode()) / 1e3
    print(f"{name}: {own_kb:.1f} kB besides plotly.js")
    assert own_kb < 400
