"""The history page's charts of each suite, kept between writes of the page.

A run changes its own suite only: when the history is written again, the charts of every other
suite are taken from here, so that updating the page after a run costs the drawing of one
suite's lines (bounded by the long-series rule), not of the whole history. A suite's charts are
used only while its state is the one they were drawn from: a hash of its runs' ids, statuses,
prune times and summary times (`Store.history_states()`) and of the code that draws them. They are
kept beside the database (`<database file>.history-cache/`): what they hold is the database's;
the folder can be deleted at any time, its suites are drawn again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from novabench.version import __version__

FOLDER_SUFFIX = ".history-cache"
# The code a suite's charts come from: a change to any of it draws every suite again.
_DRAWN_BY = (
    "report/history_page.py",
    "report/history_cache.py",
    "report/trends.py",
    "report/sweep_trends.py",
    "report/long_series.py",
    "report/figures.py",
    "report/charts.py",
    "storage/long_series.py",
    "storage/summary_reads.py",
    "analysis/sweeps.py",
    "analysis/compare.py",
    "analysis/significance.py",
    "records/stored.py",
)


@dataclass(frozen=True)
class SuiteCharts:
    """One suite's part of the history page: its figures as (slug, title, caption, Plotly JSON
    text), its number of runs charted, its models, and the arrays its charts share (the inside of
    a JSON object: '"key": [...], ...', keys unique to the suite)."""

    name: str
    figures: list[tuple[str, str, str, str]]
    runs: int
    models: list[str]
    shared: str


def state_key(state: str) -> str:
    """The key a suite's charts are kept under for its stored `state`, with the drawing code."""
    return hashlib.sha256(f"{_code_hash()}\n{state}".encode()).hexdigest()[:32]


def folder_of(db_path: Path) -> Path:
    """Where the charts drawn from the database at `db_path` are kept."""
    return db_path.with_name(db_path.name + FOLDER_SUFFIX)


def load(folder: Path, suite: str, key: str) -> SuiteCharts | None:
    """The suite's charts kept for `key`, or None (never kept, stale, or unreadable)."""
    try:
        kept = json.loads(_path(folder, suite).read_text(encoding="utf-8"))
        if kept.get("key") != key or kept["charts"]["name"] != suite:
            return None
        charts = kept["charts"]
        return SuiteCharts(
            name=charts["name"],
            figures=[(str(a), str(b), str(c), str(d)) for a, b, c, d in charts["figures"]],
            runs=int(charts["runs"]),
            models=[str(m) for m in charts["models"]],
            shared=str(charts["shared"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(folder: Path, key: str, charts: SuiteCharts) -> None:
    """Keep the suite's charts for `key`; a folder that cannot be written only costs a redraw."""
    path = _path(folder, charts.name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")  # two commands may write at once
        partial.write_text(json.dumps({"key": key, "charts": asdict(charts)}), encoding="utf-8")
        partial.replace(path)
    except OSError:
        pass


def forget_others(folder: Path, suites: list[str]) -> None:
    """Remove what is kept for suites no longer in the history."""
    keep = {_path(folder, suite).name for suite in suites}
    try:
        for path in folder.glob("*.json"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
    except OSError:
        pass


def suite_token(suite: str) -> str:
    """A short name of the suite for what must be unique to it in the page (its shared arrays'
    keys), whatever characters the suite's name holds."""
    return hashlib.sha256(suite.encode()).hexdigest()[:8]


def _path(folder: Path, suite: str) -> Path:
    return folder / f"{hashlib.sha256(suite.encode()).hexdigest()[:24]}.json"


@functools.cache
def _code_hash() -> str:
    root = Path(__file__).resolve().parent.parent
    import plotly

    digest = hashlib.sha256(f"{__version__} plotly {plotly.__version__}".encode())
    for name in _DRAWN_BY:
        try:
            digest.update((root / name).read_bytes())
        except OSError:
            digest.update(name.encode())
    return digest.hexdigest()
