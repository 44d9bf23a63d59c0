"""Reading the rendered pages: tables, cells, figures and responses, as shown."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from novabench.analysis import statistics as stats

PLOTLY_BANNER = re.compile(r"\* plotly\.js v\d+\.\d+\.\d+")


def read_page(path: Path) -> str:
    """A rendered page's HTML."""
    return path.read_text(encoding="utf-8")


def table_html(page: str, table_id: str) -> str:
    """The HTML of the table with this id, up to its </table>."""
    table = page[page.index(f'<table id="{table_id}"') :]
    return table[: table.index("</table>")]


def cell_text(cell: str) -> str:
    """A cell's shown value: its `v` span when it has one (a CI or a flag may follow)."""
    value = re.search(r'<span class="v">(.*?)</span>', cell, re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", value.group(1) if value else cell).strip())


def row_cells(row: str) -> dict[str, str]:
    """A table row as {data-col: cell HTML}."""
    return dict(re.findall(r'data-col="([^"]+)">(.*?)</td>', row, re.S))


def summary_cells(page: str) -> dict[tuple[str, str], dict[str, str]]:
    """The summary table as {(mode, model): {column: shown value}}."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for row in re.finditer(
        r'<tr data-model="([^"]*)" data-host="[^"]*" data-mode="([^"]*)">(.*?)</tr>',
        table_html(page, "summary-table"),
        re.S,
    ):
        cells[(row.group(2), html.unescape(row.group(1)))] = {
            key: cell_text(value) for key, value in row_cells(row.group(3)).items()
        }
    return cells


def summary_row(page: str, mode: str, model: str) -> dict[str, str]:
    """One row of the summary table as {column: cell HTML}."""
    row = re.search(
        rf'<tr data-model="{re.escape(model)}" data-host="[^"]*" data-mode="{mode}">(.*?)</tr>',
        table_html(page, "summary-table"),
        re.S,
    )
    assert row is not None
    return row_cells(row.group(1))


def prompt_rows(page: str) -> dict[tuple[str, str, str], dict[str, str]]:
    """The per-prompt table as {(mode, model, prompt): {column: cell HTML}}."""
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for row in re.finditer(
        r'<tr data-prompt="([^"]*)" data-model="([^"]*)" data-host="[^"]*" '
        r'data-mode="([^"]*)">(.*?)</tr>',
        table_html(page, "prompt-table"),
        re.S,
    ):
        rows[(row.group(3), html.unescape(row.group(2)), row.group(1))] = row_cells(row.group(4))
    return rows


def ci_text(values_ms: list[float]) -> str:
    """How the page shows the 95% CI of the median of these values."""
    interval = stats.median_ci(values_ms)
    assert interval is not None
    return f"[{interval[0]:,.1f}–{interval[1]:,.1f}]"


def response_html(page: str, marker: str) -> str:
    """The <details> element of the one response whose HTML holds `marker`."""
    at = page.index(marker)
    start = page.rindex('<details class="response', 0, at)
    return page[start : page.index("</details>", at)]


# A page's chart JSON, and the arrays its charts share (kept once in the page since issue 13):
# what `.sub("", page)` removes to compare the rest of two pages.
CHART_JSON = re.compile(
    r'<script type="application/json" id="figure-[^"]+">.*?</script>'
    r'|<script type="application/json" id="shared-arrays">.*?</script><script>.*?</script>\n',
    re.S,
)


def page_figures(page: str) -> dict[str, dict[str, Any]]:
    """The Plotly figures embedded in a page, by figure id, with the arrays the page keeps once
    (`{"$shared": key}`) put back as its loader does."""
    blocks = re.findall(
        r'<script type="application/json" id="figure-([^"]+)">(.*?)</script>', page, re.S
    )
    return {figure_id: with_shared(page, json.loads(text)) for figure_id, text in blocks}


def with_shared(page: str, figure: dict[str, Any]) -> dict[str, Any]:
    """`figure` with its shared arrays (report/figures.py SharedArrays) in place."""
    found = re.search(
        r'<script type="application/json" id="shared-arrays">(.*?)</script>', page, re.S
    )
    shared = json.loads(found.group(1)) if found else {}
    for trace in figure.get("data", []):
        for field, value in trace.items():
            if isinstance(value, dict) and "$shared" in value:
                trace[field] = shared[value["$shared"]]
    return figure


def without_plotly_js(page: str) -> str:
    """The page without its copy of plotly.js: what the page itself weighs."""
    start = page.index("/**\n* plotly.js v")
    end = page.index("</script>", start)
    return page[:start] + page[end:]
