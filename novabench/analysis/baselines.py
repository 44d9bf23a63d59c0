"""What a run is compared with (`--baseline`): 'last', 'median:N' or a run id, and the model
digest that names a model across runs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from novabench.errors import BaselineError, RunNotFoundError
from novabench.records import RunRecord
from novabench.storage.store import Store


@dataclass(frozen=True)
class BaselineSpec:
    """A parsed --baseline value."""

    text: str
    kind: str  # "last", "median" or "run"
    runs: int = 1  # how many earlier runs are pooled (median:N)
    run_id: str | None = None


def parse_baseline(text: str) -> BaselineSpec:
    """'last', 'median:N' (N ≥ 1) or anything else as a run id."""
    if text == "last":
        return BaselineSpec(text, "last")
    if text.startswith("median:"):
        count = text.removeprefix("median:")
        if not re.fullmatch(r"[0-9]+", count) or int(count) < 1:
            raise BaselineError(
                f"--baseline {text!r}: N must be a whole number of runs, at least 1, as in median:5"
            )
        return BaselineSpec(text, "median", runs=int(count))
    return BaselineSpec(text, "run", run_id=text)


def check_baseline(store: Store, text: str) -> BaselineSpec:
    """Parse a --baseline value and make sure a named run exists, before anything runs."""
    spec = parse_baseline(text)
    if spec.kind == "run":
        try:
            if not store.path.exists():
                raise RunNotFoundError(text)
            store.get_run(text)
        except RunNotFoundError:
            raise BaselineError(
                f"--baseline {text!r}: not 'last', 'median:N' or a run id in {store.path} "
                "('novabench runs' lists them)"
            ) from None
    return spec


def digest_label(digest: str | None) -> str:
    """A digest's first 12 hex digits for notes; 'unknown' when the run has none."""
    return (digest or "unknown").removeprefix("sha256:")[:12]


def earlier_complete_runs(store: Store, run: RunRecord, mode: str | None = None) -> list[str]:
    """The ids of the suite's complete runs before `run` whose raw rows are stored (a run pruned
    with --keep-summaries has none to compare with), newest first: the runs `last` chooses from
    (only those that ran `mode`, when given)."""
    return store.complete_runs_before(run.suite_name, run.started_at, run.run_id, mode)


def change_notes(
    model: str,
    digests_before: Sequence[str | None],
    digest_now: str | None,
    versions_before: Sequence[str | None],
    version_now: str | None,
) -> list[str]:
    """What changed besides the numbers: the model's digest, the host's Ollama version."""
    notes = []
    digests = sorted({digest_label(d) for d in digests_before})
    if digests != [digest_label(digest_now)]:
        notes.append(
            f"{model}: model changed (digest {', '.join(digests)} → {digest_label(digest_now)})"
        )
    versions = sorted({v or "unknown" for v in versions_before})
    if versions != [version_now or "unknown"]:
        notes.append(f"Ollama {', '.join(versions)} → {version_now or 'unknown'}")
    return notes
