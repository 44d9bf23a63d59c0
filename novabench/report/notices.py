"""The run page's warnings: what a reader must know before trusting the figures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from novabench.analysis.figures import TPS_DISAGREEMENT, is_measured
from novabench.records import ModelRecord, RepetitionStop, Request, RunRecord
from novabench.report.tables import Label, SuiteFacts, missed_target, percent_text

# A warning about repetitions that stopped at the cap names at most this many cases.
CAPPED_LISTED = 6


@dataclass(frozen=True)
class Notice:
    """One line of the warnings block: `warn` changes how to read a figure, `note` informs."""

    level: str
    text: str
    link: str | None = None  # an anchor on the page that shows more


def notices(
    run: RunRecord,
    models: Sequence[ModelRecord],
    requests: Sequence[Request],
    stops: Sequence[RepetitionStop],
    facts: SuiteFacts,
    label: Label,
) -> list[Notice]:
    """What a reader must know before trusting the figures, most serious first."""
    found: list[Notice] = _failure_notices(requests)
    found += _memory_notices(run, models, label)
    measured_ok = [r for r in requests if is_measured(r) and r.ok]
    found += _per_model(
        measured_ok,
        label,
        lambda r: r.tps_disagreement,
        lambda name, count, total: Notice(
            "warn",
            f"{name}: server and client tokens/s differ by more than {TPS_DISAGREEMENT:.0%} in "
            f"{count} of {_plural(total, 'request')} (chunks buffered on the way, or a busy "
            "client); Generation uses the server clock",
        ),
    )
    found += _capped_notices(stops, facts, label)
    found += _per_model(
        measured_ok,
        label,
        lambda r: r.prompt_cached,
        lambda name, count, total: Notice(
            "note",
            f"{name}: prompt served from the KV cache in {_plural(count, 'request')}: "
            "prompt tokens/s is not comparable",
        ),
    )
    found += _dirty_notices(run)
    if not facts.recorded:
        found.append(
            Notice(
                "note",
                "This run was stored before novabench recorded a suite's target figure and check "
                "descriptions with the run, and its suite text no longer reads: they are shown "
                "as not recorded",
            )
        )
    return sorted(found, key=lambda notice: notice.level != "warn")  # stable: notes last


def _failure_notices(requests: Sequence[Request]) -> list[Notice]:
    failed = [r for r in requests if not r.ok]
    if not failed:
        return []
    unmeasured = sum(1 for r in failed if not is_measured(r))
    extra = f", {unmeasured} of them warm-up or cold-start" if unmeasured else ""
    return [
        Notice(
            "warn",
            f"{_plural(len(failed), 'request')} failed{extra}: the statistics count only "
            "successful requests",
            "#errors",
        )
    ]


def _capped_notices(
    stops: Sequence[RepetitionStop], facts: SuiteFacts, label: Label
) -> list[Notice]:
    capped = [s for s in stops if missed_target(s, facts.target_cv)]
    if not capped:
        return []
    target = f" ±{percent_text(facts.target_cv)}" if facts.target_cv is not None else ""
    listed = [
        f"{label(s)} · {s.prompt_id} ({s.mode}"
        + (f", ±{percent_text(s.ci_half_width_ratio)})" if s.ci_half_width_ratio else ")")
        for s in capped[:CAPPED_LISTED]
    ]
    more = f" and {len(capped) - CAPPED_LISTED} more" if len(capped) > CAPPED_LISTED else ""
    return [
        Notice(
            "warn",
            f"Auto repetitions stopped at the cap without reaching the target{target} on "
            f"{facts.target_name} in {len(capped)} of {len(stops)} cases: "
            f"{'; '.join(listed)}{more}. Their medians are less precise than the suite asked",
            "#per-prompt",
        )
    ]


def _dirty_notices(run: RunRecord) -> list[Notice]:
    git = ((run.manifest or {}).get("git")) or {}
    if not git.get("dirty"):
        return []
    commit = f" (commit {str(git.get('commit') or '?')[:12]}"
    commit += f" on {git['branch']})" if git.get("branch") else ")"
    suite_changed = (
        "; the suite file itself was changed, so the suite text stored with this run is what ran"
        if git.get("suite_file_changed")
        else ""
    )
    return [
        Notice(
            "warn",
            f"The suite's repository had uncommitted changes{commit}: the run may not be "
            f"reproducible from that commit{suite_changed}",
        )
    ]


def _memory_notices(run: RunRecord, models: Sequence[ModelRecord], label: Label) -> list[Notice]:
    """Models that did not fit in GPU memory, from what /api/ps said after their first request."""
    gpus = (run.system or {}).get("gpus") or (run.manifest or {}).get("gpus") or []
    found = []
    for model in models:
        size, vram = model.loaded_size_bytes, model.loaded_vram_bytes
        if not size or vram is None:
            continue
        name = label(model)
        if 0 < vram < size:
            share = int(vram * 100 / size)  # floored: 99.6% in GPU memory is not all of it
            found.append(
                Notice(
                    "warn",
                    f"{name}: only {share}% of the model in GPU memory — it spilled to CPU; "
                    f"expect lower tokens/s ({vram / 1e9:.2f} of {size / 1e9:.2f} GB in GPU "
                    "memory)",
                )
            )
        elif vram == 0 and gpus:
            names = ", ".join(sorted({str(g.get("name") or "a GPU") for g in gpus}))
            found.append(
                Notice(
                    "note",
                    f"{name}: ran entirely on the CPU (none of its {size / 1e9:.2f} GB in GPU "
                    f"memory) although the machine has {names}",
                )
            )
    return found


def _per_model(
    requests: Sequence[Request],
    label: Label,
    flag: Callable[[Request], bool | None],
    notice: Callable[[str, int, int], Notice],
) -> list[Notice]:
    """A notice per model with requests where `flag` is true: (label, flagged, of how many)."""
    flagged: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for request in requests:
        value = flag(request)
        if value is not None:
            total[label(request)] += 1
            flagged[label(request)] += bool(value)
    return [notice(name, count, total[name]) for name, count in flagged.items() if count]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
