"""`make perf` end to end at a tiny size: every client streams, and every figure is computed.

No timing assertions: the benchmark itself is `python -m tests.perf`, not a test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.perf.__main__ import main
from tests.perf.clients import CLIENT_NAMES
from tests.perf.server import DoubleProcess, reply_text

TOKENS = 20
REQUESTS = 4
LEVELS = (1, 4)


def test_reply_splits_into_the_asked_number_of_tokens() -> None:
    assert len(reply_text(TOKENS).split()) == TOKENS


def test_double_process_is_reaped() -> None:
    with DoubleProcess(TOKENS, ttft_ms=5, interval_ms=1, num_parallel=2) as double:
        process = double.process
        assert process is not None and process.poll() is None
    assert process.poll() is not None


def test_harness_runs_every_client_at_each_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "perf.json"
    argv = [
        *("--levels", ",".join(map(str, LEVELS)), "--tokens", str(TOKENS)),
        *("--requests-per-level", str(REQUESTS), "--rounds", "1", "--no-pin"),
        *("--ttft-ms", "10", "--json", str(out)),
    ]
    assert main(argv) == 0

    printed = capsys.readouterr().out
    assert "novabench, live display on" in printed and "Targets" in printed
    document = json.loads(out.read_text())
    results = document["results"]
    assert [(r["client"], r["concurrency"]) for r in results] == [
        (name, level) for level in LEVELS for name in CLIENT_NAMES
    ]
    for run in results:
        assert (run["requests"], run["failed"], run["mismatched"]) == (REQUESTS, 0, 0)
        assert run["tokens"] == REQUESTS * TOKENS
        for key in (
            "ttft_true_ms",
            "ttft_measured_ms",
            "ttft_error_ms",
            "ttft_error_pct",
            "itl_error_pct",
            "tps_error_pct",
            "lag_p50_ms",
            "lag_p95_ms",
        ):
            assert math.isfinite(run[key]), (run["client"], key)
        # Sanity only: the double's truth and the client's clock are the same clock.
        assert 0 < run["ttft_true_ms"] < 10_000 and run["ttft_measured_ms"] > 0
        assert abs(run["ttft_error_ms"]) < 1_000 and run["cpu_us_per_token"] > 0
    targets = {v["target"]: v["met"] for v in document["verdicts"]}
    assert len(targets) == 4
    assert targets["TTFT error < 5% at 256 streams"] is None  # no 256 level in this run


def test_unknown_client_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--clients", "curl"])
    assert "unknown client 'curl'" in capsys.readouterr().err
