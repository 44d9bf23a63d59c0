"""A suite's own regex or JSON Schema pattern that backtracks for ever: it fails at the time limit
(novabench/checks.py, "Limits"), the run goes on, and Ctrl-C meanwhile loses nothing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import novabench.analysis.checks
from novabench import Store, load_suite, run_suite
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble
from tests.robustness.conftest import Figures

# Against forty a's and a "!", the first branch tries 2**40 ways to split the a's before the
# second finds the "!": a check that would pass, if anyone could wait for it.
EXPLODING_REGEX = "^(a+)+b|!"
EXPLODING_TEXT = "a" * 40 + "!"
ANSWERS = {
    "explodes": EXPLODING_TEXT,
    "matches": "aaaa",
    "json explodes": f'"{EXPLODING_TEXT}"',
    "json matches": '"aaaa"',
}
PROMPTS = """
  - {id: explodes, text: explodes, checks: {regex: '^(a+)+b|!', max_words: 5}}
  - {id: matches, text: matches, checks: {regex: '^(a+)+b|a', max_words: 5}}
  - {id: json_explodes, text: json explodes, checks: {json: {schema: {pattern: '^(a|a)+b|!'}}}}
  - {id: json_matches, text: json matches, checks: {json: {schema: {pattern: '^(a|a)+b|a'}}}}"""


def test_an_exploding_pattern_fails_at_the_time_limit_and_the_run_goes_on(
    tmp_path: Path, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures.hostile_inputs += 2
    monkeypatch.setattr(novabench.analysis.checks, "PATTERN_TIME_LIMIT_S", 1.0)
    model = FakeModel("m", reply=lambda prompt: ANSWERS[prompt], token_interval_s=0.001)
    with OllamaDouble(models=[model]) as double:
        path = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models="[m]",
            prompts=PROMPTS,
            modes="[sequential]",
            repetitions=1,
            warmup=0,
            sample_interval_s=0,
        )
        started = time.perf_counter()
        outcome = run_suite(load_suite(path), Store(tmp_path / "db.duckdb"))
        run_s = time.perf_counter() - started
    rows = {row["prompt_id"]: row for row in Store(tmp_path / "db.duckdb").results(outcome.run_id)}
    figures.rows_expected += 4
    figures.rows_found += len(rows)
    assert run_s < 20  # two limits of 1 s, two fresh children, four short answers
    # The check that ran out of time fails, the others of the answer are still made, and a new
    # child takes the next answer.
    assert rows["explodes"]["checks"] == {"regex": False, "max_words": True}
    assert rows["matches"]["checks"] == {"regex": True, "max_words": True}
    assert rows["json_explodes"]["checks"] == {"json": False}
    assert rows["json_matches"]["checks"] == {"json": True}


def _pattern_children(pid: int) -> list[psutil.Process]:
    return [
        child
        for child in psutil.Process(pid).children()
        if "novabench.run.checker" in " ".join(child.cmdline())
    ]


@pytest.mark.timeout(120)
def test_ctrl_c_while_a_pattern_runs_keeps_the_answer_and_the_child_goes(
    tmp_path: Path, figures: Figures
) -> None:
    figures.hostile_inputs += 1
    figures.faults_injected += 1
    model = FakeModel("m", reply=EXPLODING_TEXT, token_interval_s=0.001)
    with OllamaDouble(models=[model]) as double:
        suite = write_suite(
            tmp_path / "s.yaml",
            double.url,
            models="[m]",
            prompts="[explodes]",
            modes="[sequential]",
            repetitions=1,
            warmup=0,
            checks=f"{{regex: '{EXPLODING_REGEX}'}}",
            sample_interval_s=0,
        )
        run = subprocess.Popen(
            [sys.executable, "-m", "novabench", "run", str(suite), "--db", "db.duckdb"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not (children := _pattern_children(run.pid)):
            assert run.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # the child is deep in the regex: the limit (10 s) is far off
        interrupted = time.monotonic()
        run.send_signal(signal.SIGINT)
        _, stderr = run.communicate(timeout=60)
        stopped_s = time.monotonic() - interrupted
    assert run.returncode == 130, stderr.decode()
    assert stopped_s < 5  # not held up by the pattern
    assert "Traceback" not in stderr.decode()
    assert not psutil.pid_exists(children[0].pid)
    store = Store(tmp_path / "db.duckdb")
    (row,) = store.results(store.latest_run_id())
    figures.rows_expected += 1
    figures.rows_found += 1
    assert row["response_text"] == EXPLODING_TEXT and row["error"] is None
    assert row["checks"] is None  # interrupted before its check could end
