"""Shared fixtures: every test runs in its own folder, against an Ollama double on loopback."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ollama_double import FakeModel, OllamaDouble
from tests.robustness import conftest as robustness

REPO = Path(__file__).resolve().parent.parent
SUITES = REPO / "suites"


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path so reports/ and the database land there; never reach a real Ollama."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{free_port()}")
    return tmp_path


FAST_MODELS = [
    FakeModel("llama3.2", reply="I am doing well, thank you for asking.", token_interval_s=0.004),
    FakeModel("nemotron-mini", reply="Two plus two equals four.", token_interval_s=0.004),
    FakeModel("wizardlm2", reply="Hello there, how can I help?", token_interval_s=0.004),
]


@pytest.fixture
def ollama() -> Iterator[OllamaDouble]:
    """A double serving the three models of suites/one_sentence.yaml."""
    with OllamaDouble(models=[dataclasses.replace(m) for m in FAST_MODELS]) as double:
        yield double


def write_suite(path: Path, host: str, **overrides: object) -> Path:
    """A small suite file against `host`; keyword arguments replace top-level keys (YAML)."""
    keys: dict[str, object] = {
        "name": "mini",
        "host": host,
        "models": "[llama3.2, nemotron-mini]",
        "prompts": '["Respond in one sentence: Hi.", "Respond in one sentence: 2+2?"]',
        "modes": "[parallel, sequential]",
        "repetitions": 2,
        "warmup": 1,
        "timeout_s": 20,
    }
    keys.update(overrides)
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items() if v is not None))
    return path


# The robustness tests' counts: summed over pytest-xdist workers, printed once at the end.


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the counts to the controller
        workeroutput["robustness"] = dataclasses.asdict(robustness.FIGURES)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_testnodedown(node: object, error: object) -> None:
    robustness.add(getattr(node, "workeroutput", {}).get("robustness", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    line = robustness.summary_line()
    if line is not None:
        terminalreporter.section("robustness")
        terminalreporter.write_line(line)


def wait_until_running(process: subprocess.Popen[str], lock: Path) -> dict[str, Any]:
    """The suite lock file's contents once `process` (a `novabench run`) holds the lock and its
    run has started."""
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        try:
            holder = json.loads(lock.read_text())
        except (OSError, ValueError):
            holder = {}
        if holder.get("pid") == process.pid and holder.get("run_id"):
            return dict(holder)
        time.sleep(0.05)
