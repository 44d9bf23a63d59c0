"""The robustness group: counts what was thrown at novabench and prints it at the end of the run."""

from __future__ import annotations

import dataclasses

import pytest


@dataclasses.dataclass
class Figures:
    """What the robustness tests did: faults injected, hostile inputs tried, result rows kept."""

    faults_injected: int = 0
    hostile_inputs: int = 0
    rows_expected: int = 0
    rows_found: int = 0

    @property
    def rows_lost(self) -> int:
        return self.rows_expected - self.rows_found


FIGURES = Figures()


@pytest.fixture
def figures() -> Figures:
    """The session's counters (one object for the whole run)."""
    return FIGURES


def add(figures: dict[str, int]) -> None:
    """Add a worker's counts (pytest-xdist) to this process's."""
    for name, value in figures.items():
        setattr(FIGURES, name, getattr(FIGURES, name) + int(value))


def summary_line() -> str | None:
    """The line printed at the end of the run; None when no robustness test ran."""
    f = FIGURES
    if not (f.faults_injected or f.hostile_inputs or f.rows_expected):
        return None
    return (
        f"faults injected: {f.faults_injected}, hostile inputs tried: {f.hostile_inputs}, "
        f"rows expected: {f.rows_expected}, rows found: {f.rows_found}, "
        f"rows lost: {f.rows_lost}"
    )
