"""Templates compiled by one command are reused by the next (report/pages.py _CompiledTemplates),
and a cache folder that is damaged, unsafe or unwritable never stops a page from being written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jinja2 import bccache

REPO = Path(__file__).resolve().parents[2]
# Renders the history template in a fresh interpreter; prints how many templates were compiled.
RENDER = """
import jinja2.environment as environment
from novabench.report import pages
compiled = []
compile = environment.Environment.compile
def counted(self, *args, **kwargs):
    compiled.append(args[1] if len(args) > 1 else kwargs.get("name"))
    return compile(self, *args, **kwargs)
environment.Environment.compile = counted
page = pages._environment().get_template("history.html.j2").render(
    title="t", suites=[], filters={"suite": [], "model": [], "host": []}, facets={}, changes=[],
    changed_runs=0, runs=[], runs_total=0, runs_per_suite=10, several_hosts=False,
    series_rule="r", shared_arrays=None, novabench_version="v", generated_at=None,
    plotly_js=None, plotly_config="{}", root="",
)
print(len(compiled), len(page))
"""


def _render(tmp: Path) -> tuple[int, int]:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", RENDER], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    compiled, size = done.stdout.split()
    return int(compiled), int(size)


def test_a_second_command_compiles_no_template_and_a_damaged_cache_is_compiled_again(
    tmp_path: Path,
) -> None:
    compiled, size = _render(tmp_path)
    assert compiled > 0
    folder = tmp_path / f"_jinja2-cache-{os.getuid()}"
    kept = sorted(folder.iterdir())
    assert kept and all(path.stat().st_size > 0 for path in kept)
    assert _render(tmp_path) == (0, size)  # every template from the cache
    for path in kept:
        path.write_bytes(b"j2 not bytecode at all")
    assert _render(tmp_path) == (compiled, size)  # compiled again, not trusted
    assert _render(tmp_path) == (0, size)
    for path in kept:  # jinja2's header intact, the pickled checksum after it damaged
        path.write_bytes(bccache.bc_magic + b"\x80\x04damaged")
    assert _render(tmp_path) == (compiled, size)


def test_cache_files_that_cannot_be_read_or_written_only_cost_the_compiling(
    tmp_path: Path,
) -> None:
    """A cache entry that is a folder (so neither readable nor replaceable, even for root)."""
    compiled, size = _render(tmp_path)
    folder = tmp_path / f"_jinja2-cache-{os.getuid()}"
    for path in list(folder.iterdir()):
        path.unlink()
        path.mkdir()
    assert _render(tmp_path) == (compiled, size)
    assert all(path.is_dir() for path in folder.iterdir() if not path.name.endswith(".tmp"))


def test_an_unsafe_cache_folder_is_not_used(tmp_path: Path) -> None:
    """Another user's (or a world-writable) folder could hold planted bytecode: jinja2 refuses
    it, and the pages are compiled as if there were no cache."""
    folder = tmp_path / f"_jinja2-cache-{os.getuid()}"
    folder.write_text("not a folder")
    compiled, size = _render(tmp_path)
    assert compiled > 0 and size > 0
    assert _render(tmp_path)[0] == compiled  # nothing was kept anywhere
    assert folder.read_text() == "not a folder"
