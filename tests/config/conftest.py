"""The config tests' folder and environment."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def suite_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's folder as the working one, and no OLLAMA_HOST at all (not even the double's)."""
    # Relative file names keep the expected lines short; no test sees the caller's OLLAMA_HOST.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    return tmp_path
