"""What a user chooses of the storage, importable without DuckDB (for the CLI's options)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

DEFAULT_DB = Path("reports") / "novabench.duckdb"

ExportFormat = Literal["csv", "json", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "json", "parquet")
