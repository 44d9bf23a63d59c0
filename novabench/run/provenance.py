"""Provenance of a run: enough to reproduce it and to explain why its numbers moved."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from novabench.config.suite import Suite
from novabench.run.machine import system_info
from novabench.run.targets import Target, Versions
from novabench.run.workloads.repetitions import RepetitionRule
from novabench.storage.facts import run_facts
from novabench.storage.store import utcnow
from novabench.version import __version__


def run_row(
    suite: Suite,
    run_id: str,
    versions: Versions,
    targets: Sequence[Target],
    modes: Sequence[str],
    cold_start: bool,
    server_warnings: Sequence[str],
) -> dict[str, Any]:
    """The runs row (with its models and prompts) written before the first request is sent."""
    system = system_info()
    repetitions = RepetitionRule.of(suite)
    return {
        "run_id": run_id,
        "started_at": utcnow(),
        "status": "running",
        "suite_name": suite.name,
        "suite_path": str(suite.path) if suite.path else None,
        "suite_text": suite.text,
        "suite_sha256": suite.sha256,
        "host": suite.host,
        "ollama_version": versions.get(suite.host)
        or next((v for v in versions.values() if v), None),
        "host_versions": versions,
        "novabench_version": __version__,
        "modes": list(modes),
        "repetitions": repetitions.cap,
        "warmup": suite.warmup,
        "options": {
            "options": suite.options.to_request(),
            "keep_alive": suite.keep_alive,
            "timeout_s": suite.timeout_s,
            "connect_timeout_s": suite.connect_timeout_s,
            "first_token_timeout_s": suite.first_token_timeout_s,
        },
        "system": system,
        "hostname": system["hostname"],
        "pid": os.getpid(),
        "facts": run_facts(suite.facts()),
        "manifest": {
            "git": git_info(suite.path),
            "repetitions": repetitions.describe(),
            "cold_start": cold_start,
            "sample_interval_s": suite.sample_interval_s,
            "load": suite.load.model_dump() if suite.load else None,
            "server_warnings": list(server_warnings),
        },
        "models": [t.model_row() for t in targets],
        "prompts": [{"prompt_id": p.id, "text": p.text, "system": p.system} for p in suite.prompts],
    }


def git_info(path: Path | None) -> dict[str, Any] | None:
    """Commit and dirty flag of the git repository holding the suite file; None outside one."""
    if path is None:
        return None
    folder = path.resolve().parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain")
    suite_status = git("status", "--porcelain", "--", str(path.resolve()))
    return {
        "commit": commit,
        "dirty": bool(status),
        "suite_file_changed": bool(suite_status),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "root": git("rev-parse", "--show-toplevel"),
    }
