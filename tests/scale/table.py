"""The benchmark's table: each figure beside its target, printed and written as Markdown."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

MB = 1_000_000
OK, MISSED, NO_TARGET, FAILED = "ok", "MISSED", "-", "FAILED"


@dataclass
class Row:
    """One line of the table."""

    step: str
    figure: str
    target: str = ""
    verdict: str = NO_TARGET
    peak_rss_bytes: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def memory(self) -> str:
        return "" if self.peak_rss_bytes is None else f"{self.peak_rss_bytes / MB:,.0f} MB"


HEADER = ("step", "figure", "target", "verdict", "peak RSS")


def verdict(met: bool) -> str:
    return OK if met else MISSED


def cells(row: Row) -> tuple[str, ...]:
    return (row.step, row.figure, row.target, row.verdict, row.memory)


def plain(rows: list[Row]) -> str:
    """The table as aligned text, then each row's notes."""
    lines = [HEADER, *(cells(row) for row in rows)]
    widths = [max(len(line[n]) for line in lines) for n in range(len(HEADER))]
    text = []
    for number, line in enumerate(lines):
        text.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            text.append("  ".join("-" * width for width in widths))
    notes = [f"- {row.step}: {note}" for row in rows for note in row.notes]
    return "\n".join(text + ([""] + notes if notes else [])).rstrip() + "\n"


def markdown(rows: list[Row], heading: str, facts: list[str]) -> str:
    """The table as Markdown, under what was measured on which machine."""
    lines = [f"### {heading}", "", *(f"- {fact}" for fact in facts), ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "|".join("---" for _ in HEADER) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells(row)) + " |")
    notes = [f"- {row.step}: {note}" for row in rows for note in row.notes]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def machine() -> str:
    """CPU model and cores, RAM, Python and DuckDB versions of this machine."""
    cpu, cores = platform.processor() or "unknown CPU", os.cpu_count() or 0
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    for line in info.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f", {int(line.split()[1]) / 2**20:.0f} GiB RAM"
    except OSError:
        pass
    return (
        f"{cpu}, {cores} cores{ram}; Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, {platform.system()} {platform.release()}"
    )


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
