"""Start-up imports only what a command uses: `--help` and `validate` never load the heavy
libraries, and a run loads the report's (plotly, jinja2) and the statistics' (scipy) only once it
needs them. Timing is `make scale`'s business; this checks what is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "numpy", "plotly", "duckdb", "jinja2", "httpx", "rich", "llama_cpp", "psutil")

# Runs a command in-process as `python -m novabench` would, then lists the heavy packages loaded.
PROBE = """
import json, runpy, sys
sys.argv = ["novabench", *sys.argv[1:]]
try:
    runpy.run_module("novabench", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))))
"""


def loaded_by(*args: str, code: str = PROBE) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{code}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [("--help",), ("run", "--help"), ("--version",)])
def test_help_loads_no_heavy_library(args: tuple[str, ...]) -> None:
    assert loaded_by(*args) == []


def test_validate_loads_no_heavy_library() -> None:
    assert loaded_by("validate", "suites/one_sentence.yaml", "suites/load.yaml") == []


def test_a_run_starts_without_the_report_and_statistics_libraries() -> None:
    before_first_request = """
import json, sys
import novabench.cli
from novabench.console.log import JsonLogObserver
from novabench.console.session import RunPrinter, run_observer
from novabench.run.session import RunSession
from novabench.storage.store import Store
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))))
"""
    # DuckDB holds the results, rich draws progress, psutil samples resources: those it uses.
    assert loaded_by(code=before_first_request) == ["duckdb", "psutil", "rich"]
