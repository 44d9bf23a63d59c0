"""What the run page shows of each response and each cold start, beside the stored request."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from novabench.analysis.figures import is_measured
from novabench.analysis.resources import WindowStats, window_stats
from novabench.analysis.statistics import median, outlier_flags
from novabench.records import Request, ResourceSample
from novabench.report.tables import Label, SuiteFacts

GroupKey = tuple[str, str, str, str]  # mode, model, host, prompt id


@dataclass(frozen=True)
class ResponseView:
    """One stored request and its details line: outlier flag, check marks, resource usage."""

    request: Request
    outlier: bool  # its target figure lies beyond OUTLIER_IQR_FACTOR IQRs of its group
    check_marks: list[tuple[bool, str]]  # (passed, what the check asks) per check
    usage: WindowStats | None  # peak and mean resources over its lifetime; None without samples


# Beyond this many requests the page lists a selection of responses, and says so: a run of
# 100,000 requests would make a page of hundreds of megabytes. `novabench export` has them all.
MAX_LISTED = 200
# ...and at most this many failed requests in the Errors table.
MAX_ERRORS_LISTED = 100


def outliers(requests: Sequence[Request], facts: SuiteFacts) -> set[int]:
    """The seqs of the requests whose target figure lies beyond OUTLIER_IQR_FACTOR IQRs of
    their group (mode, model, host, prompt)."""
    groups: dict[GroupKey, list[Request]] = defaultdict(list)
    for request in requests:
        if is_measured(request) and request.ok:
            groups[(request.mode, request.model, request.host, request.prompt_id)].append(request)
    found: set[int] = set()
    for members in groups.values():
        flags = outlier_flags([getattr(r, facts.target_metric) for r in members])
        found |= {r.seq for r, flag in zip(members, flags, strict=True) if flag}
    return found


def selection(
    requests: Sequence[Request], outlier_seqs: set[int], limit: int = MAX_LISTED
) -> list[Request]:
    """The requests whose responses the page lists: every one up to `limit`; beyond it `limit`
    of them, in turn from each (mode, model, host, prompt) group, each group's cold start,
    warm-ups, failures and outliers first, then its earliest repetitions. In stored order."""
    if len(requests) <= limit:
        return list(requests)
    groups: dict[GroupKey, list[Request]] = defaultdict(list)
    for request in requests:
        groups[(request.mode, request.model, request.host, request.prompt_id)].append(request)

    def rank(request: Request) -> tuple[int, int, int]:
        kind = (
            0
            if request.is_cold
            else 1
            if request.is_warmup
            else 2
            if request.error is not None
            else 3
            if request.seq in outlier_seqs
            else 4
        )
        return kind, request.repetition, request.seq

    turns = [
        (turn, position, request.seq)
        for position, members in enumerate(groups.values())
        for turn, request in enumerate(sorted(members, key=rank))
    ]
    chosen = {seq for _, _, seq in sorted(turns)[:limit]}
    return [r for r in requests if r.seq in chosen]


def response_views(
    requests: Sequence[Request],
    samples: Sequence[ResourceSample],
    facts: SuiteFacts,
    outlier_seqs: set[int] | None = None,
) -> dict[int, ResponseView]:
    """Every request's details line, by its seq (`outlier_seqs`: from `outliers`, over the
    requests of the whole run when these are a selection of them)."""
    if outlier_seqs is None:
        outlier_seqs = outliers(requests, facts)
    views = {}
    for request in requests:
        described = facts.checks.get(request.prompt_id, {})
        marks = [
            (bool(passed), described.get(name, name))
            for name, passed in (request.checks or {}).items()
        ]
        end_s = None if request.e2e_s is None else request.start_offset_s + request.e2e_s
        usage = (
            window_stats(samples, request.start_offset_s, end_s, nearest=True)
            if samples and end_s is not None
            else None
        )
        views[request.seq] = ResponseView(request, request.seq in outlier_seqs, marks, usage)
    return views


def cold_starts(
    requests: Sequence[Request], sort_key: Callable[[Request], Any], label: Label
) -> list[dict[str, Any]]:
    """Each cold request beside the warm medians of the same mode, model, host and prompt."""
    entries = []
    for cold in sorted((r for r in requests if r.is_cold), key=sort_key):
        same = (cold.mode, cold.model, cold.host, cold.prompt_id)
        warm = [
            r
            for r in requests
            if is_measured(r) and r.ok and (r.mode, r.model, r.host, r.prompt_id) == same
        ]
        warm_ttft = median(r.ttft_ms for r in warm)
        entries.append(
            {
                "label": label(cold),
                "mode": cold.mode,
                "prompt_id": cold.prompt_id,
                "error": cold.error,
                "cold_ttft_ms": cold.ttft_ms,
                "cold_load_ms": cold.load_ms,
                "warm_n": len(warm),
                "warm_ttft_ms": warm_ttft,
                "warm_load_ms": median(r.load_ms for r in warm),
                "ttft_ratio": cold.ttft_ms / warm_ttft if cold.ttft_ms and warm_ttft else None,
            }
        )
    return entries
