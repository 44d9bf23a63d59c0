"""Provenance of a run: enough to reproduce it and to explain why its numbers moved."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


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
