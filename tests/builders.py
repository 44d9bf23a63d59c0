"""Records for tests that exercise the analysis on hand-made requests and levels: every field
the test does not care about gets a neutral default."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from novabench.analysis.figures import with_figures
from novabench.records import (
    Figures,
    LevelRecord,
    LevelSummary,
    Request,
    ResourceSample,
    StoredResult,
)

_WHEN = datetime(2026, 12, 1, 12, 0, 0)

RESULT_DEFAULTS: dict[str, Any] = {
    "run_id": "r",
    "seq": 0,
    "mode": "sequential",
    "model": "m",
    "host": "h",
    "prompt_id": "p1",
    "repetition": 0,
    "is_warmup": False,
    "started_at": _WHEN,
    "start_offset_s": 0.0,
    "ttft_s": None,
    "e2e_s": None,
    "chunk_count": 0,
    "response_bytes": 0,
    "token_offsets_s": [],
    "prompt_eval_count": None,
    "prompt_eval_duration_ns": None,
    "eval_count": None,
    "eval_duration_ns": None,
    "load_duration_ns": None,
    "total_duration_ns": None,
    "done_reason": None,
    "response_text": "",
    "thinking_text": "",
    "error": None,
    "http_status": None,
}


def stored_result(**fields: Any) -> StoredResult:
    """A stored result: the given fields, neutral defaults for the rest."""
    return StoredResult(**{**RESULT_DEFAULTS, **fields})


def request(**fields: Any) -> Request:
    """A stored result with its figures derived: the given fields, neutral defaults for the rest."""
    return with_figures([stored_result(**fields)])[0]


def level_record(**fields: Any) -> LevelRecord:
    """A load level's record (concurrency 1, no requests) with the given fields."""
    defaults: dict[str, Any] = {
        "model": "m",
        "host": "h",
        "level_index": 0,
        "kind": "concurrency",
        "level": 1.0,
        "started_offset_s": 0.0,
        "wall_s": 0.0,
        "requests": 0,
        "delayed_arrivals": 0,
        "stop_reason": None,
    }
    return LevelRecord(**{**defaults, **fields})


def level_summary(**fields: Any) -> LevelSummary:
    """A level's summary with the given figures; every other figure None (or 0 for counts)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(LevelSummary):
        if field.default is not dataclasses.MISSING:
            continue
        values[field.name] = 0 if field.type in ("int", "float") else None
    values.update(
        model="m", host="h", level_index=0, kind="concurrency", level=1.0,
        started_offset_s=0.0, wall_s=0.0, requests=0, delayed_arrivals=0,
        ok=0, errors=0, output_tokens=0.0,
    )  # fmt: skip
    values.update(fields)
    return LevelSummary(**values)


def figures(**fields: Any) -> Figures:
    return Figures(**fields)


def resource_sample(**fields: Any) -> ResourceSample:
    """A resource sample at offset 0 with every figure unknown, but for `fields`."""
    defaults = {f.name: None for f in dataclasses.fields(ResourceSample)}
    defaults.update(offset_s=0.0, taken_at=datetime(2026, 1, 1))
    return ResourceSample(**{**defaults, **fields})
