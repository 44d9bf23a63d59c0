"""kill -9 at speed: a run killed outright loses at most the results of its last ~100 ms, at any
request rate (the journal, novabench/journal.py; the benchmark is tests/robustness/killbench.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.robustness.conftest import Figures
from tests.robustness.killbench import measure

# The journal is written every 20 ms; the rest is the time the client takes to read a done line
# the server wrote and hand the result over.
LOSS_WINDOW_MS = 100.0


@pytest.mark.timeout(180)
@pytest.mark.parametrize("rate", [100.0, 200.0])
def test_kill_9_loses_at_most_the_last_100_ms(
    tmp_path: Path, figures: Figures, rate: float
) -> None:
    found = measure(rate, seconds=2.0, folder=tmp_path)
    figures.faults_injected += 1
    # Results finished more than the window before the kill are all stored.
    figures.rows_expected += found.finished
    figures.rows_found += found.finished if found.window_ms <= LOSS_WINDOW_MS else found.stored
    assert found.finished >= rate  # it ran at speed for a while before the kill
    assert found.window_ms <= LOSS_WINDOW_MS, found
