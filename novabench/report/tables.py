"""The run page's statistics tables: a row per mode and model (all prompts), and per prompt,
each with the columns where it has the best value and why its repetitions stopped."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from novabench.analysis.statistics import summarize
from novabench.records import GroupSummary, RepetitionStop, Request


class Located(Protocol):
    """Anything with a model and a host: a request, a summary, a level, a model record."""

    @property
    def model(self) -> str: ...
    @property
    def host(self) -> str: ...


Label = Callable[[Located], str]

# The figure whose spread (CV, outliers) the page reports: Suite.target_metric, the one auto
# repetitions also stop on.
TARGET_NAMES = {
    "e2e_ms": "end-to-end latency",
    "ttft_ms": "TTFT",
    "eval_tokens_per_s": "generation tokens/s",
    "itl_ms": "ITL",
}
DEFAULT_TARGET = "e2e_ms"
# Why a model within the target still ran to the cap.
WITHIN_TARGET_HELP = (
    "parallel mode repeats a prompt on the whole group of models until every one of them reaches "
    "the target: another model of this group did not"
)


@dataclass(frozen=True)
class Column:
    """One figure column of a statistics table: one statistic of one figure of a GroupSummary."""

    figure: str
    stat: str
    heading: str
    unit: str
    best: str | None  # "low" or "high": which end is highlighted; None: never highlighted
    help: str
    ci: bool = False  # show the 95% CI of the median under it

    @property
    def key(self) -> str:
        """The column's name in the page (data-col), e.g. 'ttft_ms_median'."""
        return f"{self.figure}_{self.stat}"


_TTFT = Column(
    "ttft_ms", "median", "TTFT", "ms", "low", "median time to first token, client clock", ci=True
)
_TTFT_P95 = Column(
    "ttft_ms", "p95", "TTFT p95", "ms", "low", "95th percentile of time to first token"
)
_GENERATION = Column(
    "eval_tokens_per_s",
    "median",
    "Generation",
    "tok/s",
    "high",
    "median generation rate, server clock: eval_count / eval_duration",
    ci=True,
)
_PROMPT = Column(
    "prompt_tokens_per_s",
    "median",
    "Prompt",
    "tok/s",
    "high",
    "median prompt processing rate, server clock: prompt_eval_count / prompt_eval_duration",
)
_CLIENT = Column(
    "client_tokens_per_s",
    "median",
    "Client",
    "tok/s",
    "high",
    "median output tokens per second between the first and last chunk, client clock",
)
_ITL = Column("itl_ms", "median", "ITL", "ms", "low", "median inter-token latency, client clock")
_TPOT = Column(
    "tpot_ms",
    "median",
    "TPOT",
    "ms",
    "low",
    "median time per output token after the first: (end-to-end − TTFT) / (tokens − 1)",
)
_LOAD = Column("load_ms", "median", "Load", "ms", "low", "median model load time, server clock")
_QUEUE = Column(
    "queue_ms",
    "median",
    "Queue",
    "ms",
    "low",
    "median server time not spent loading, reading the prompt or generating: waiting for a slot",
)

OVERVIEW_COLUMNS = (_TTFT, _TTFT_P95, _GENERATION, _PROMPT, _CLIENT, _ITL, _LOAD)
PROMPT_COLUMNS = (_TTFT, _TTFT_P95, _GENERATION, _CLIENT, _ITL, _TPOT, _PROMPT, _LOAD, _QUEUE)


@dataclass(frozen=True)
class SuiteFacts:
    """What the run's suite asked for, as stored with the run (runs.facts)."""

    target_metric: str = DEFAULT_TARGET
    target_cv: float | None = None  # with repetitions: auto
    # prompt id -> {check name: description}, in the order checks.evaluate gives results
    checks: dict[str, dict[str, str]] = field(default_factory=dict)
    recorded: bool = True  # False: an older run whose suite text no longer reads

    @property
    def target_name(self) -> str:
        name = TARGET_NAMES.get(self.target_metric, self.target_metric)
        return name if self.recorded else f"{name} (the suite's target figure was not recorded)"


def suite_facts(facts: dict[str, Any] | None) -> SuiteFacts:
    """The target figure and check descriptions stored with the run; where an older run's were
    not recorded, the default target (end-to-end latency) and no descriptions, and it says so."""
    facts = facts or {}
    if facts.get("target_metric") is None:
        return SuiteFacts(recorded=False)
    return SuiteFacts(
        target_metric=str(facts["target_metric"]),
        target_cv=facts.get("target_cv"),
        checks=dict(facts.get("checks") or {}),
    )


@dataclass
class SummaryRow:
    """A group summary as a table row shows it."""

    summary: GroupSummary
    label: str
    best: set[str] = field(default_factory=set)  # keys of the columns where it is best
    target_cv: float | None = None
    target_outliers: int | None = None
    repetitions: str | None = None  # how many ran and why they stopped
    capped: bool = False  # auto repetitions stopped at the cap short of the target
    repetitions_help: str | None = None

    @property
    def mode(self) -> str:
        return self.summary.mode

    @property
    def model(self) -> str:
        return self.summary.model

    @property
    def host(self) -> str:
        return self.summary.host

    @property
    def prompt_id(self) -> str | None:
        return self.summary.prompt_id

    @property
    def n(self) -> int:
        return self.summary.n

    @property
    def errors(self) -> int:
        return self.summary.errors

    @property
    def prompt_cached(self) -> int:
        return self.summary.prompt_cached

    @property
    def checks_passed(self) -> int:
        return self.summary.checks_passed

    @property
    def checks_total(self) -> int:
        return self.summary.checks_total

    @property
    def checks(self) -> str | None:
        """'2/3': requests that passed every check, of those checked; None where none was."""
        if not self.summary.checks_total:
            return None
        return f"{self.summary.checks_passed}/{self.summary.checks_total}"

    def stat(self, figure: str, statistic: str) -> float | None:
        return self.summary.stat(figure, statistic)

    def cell(self, column: Column) -> float | None:
        return self.summary.stat(column.figure, column.stat)


def mark_best(rows: Sequence[SummaryRow], columns: Sequence[Column]) -> None:
    """Set each row's `best`: the columns where it has the best value as shown (1 decimal).

    A column where every shown value is the same has no winner.
    """
    for row in rows:
        row.best = set()
    for column in columns:
        if column.best is None:
            continue
        shown = {
            id(row): round(value, 1)
            for row in rows
            if (value := row.cell(column)) is not None
            # a prompt read from the KV cache is not faster at reading prompts
            and not (column.figure == "prompt_tokens_per_s" and row.prompt_cached)
        }
        if len(set(shown.values())) < 2:
            continue
        best = min(shown.values()) if column.best == "low" else max(shown.values())
        for row in rows:
            if shown.get(id(row)) == best:
                row.best.add(column.key)


def overview(
    requests: Sequence[Request], sort_key: Callable[[GroupSummary], Any], label: Label
) -> list[SummaryRow]:
    """One row per (mode, model, host), all prompts pooled."""
    rows = [SummaryRow(s, label(s)) for s in sorted(summarize(requests), key=sort_key)]
    mark_best(rows, OVERVIEW_COLUMNS)
    return rows


def prompt_tables(
    requests: Sequence[Request],
    prompt_ids: Sequence[str],
    sort_key: Callable[[GroupSummary], Any],
    label: Label,
    stops: Sequence[RepetitionStop],
    facts: SuiteFacts,
) -> list[dict[str, Any]]:
    """Per prompt, one row per (mode, model, host): {prompt_id, summaries: [SummaryRow]}.

    Each row has `best` (within its prompt), the CV and outliers of the suite's target figure,
    and `repetitions` (how many ran, why they stopped).
    """
    stop_by_key: dict[tuple[str, str, str, str | None], RepetitionStop] = {
        (s.mode, s.model, s.host, s.prompt_id): s for s in stops
    }
    target = facts.target_metric
    by_prompt: dict[str, list[SummaryRow]] = defaultdict(list)
    for summary in summarize(requests, by_prompt=True):
        stop = stop_by_key.get((summary.mode, summary.model, summary.host, summary.prompt_id))
        capped = bool(stop and missed_target(stop, facts.target_cv))
        outliers = summary.stat(target, "outliers")
        row = SummaryRow(
            summary,
            label(summary),
            target_cv=summary.stat(target, "cv"),
            target_outliers=None if outliers is None else int(outliers),
            repetitions=stop_text(stop, facts.target_cv) if stop else None,
            capped=capped,
            repetitions_help=(
                WITHIN_TARGET_HELP
                if stop and stop.reason == "max_repetitions" and not capped
                else None
            ),
        )
        by_prompt[str(summary.prompt_id)].append(row)
    order = list(prompt_ids) + sorted(set(by_prompt) - set(prompt_ids))
    tables = []
    for prompt_id in order:
        members = sorted(by_prompt.get(prompt_id, []), key=lambda r: sort_key(r.summary))
        if not members:
            continue
        mark_best(members, PROMPT_COLUMNS)
        tables.append({"prompt_id": prompt_id, "summaries": members})
    return tables


def stop_text(stop: RepetitionStop, target_cv: float | None) -> str:
    """How many repetitions ran and why they stopped: 'cap of 30 reached at ±8.1%'."""
    count, reason, ratio = stop.repetitions, stop.reason, stop.ci_half_width_ratio
    if reason == "target_reached":
        if target_cv is not None:
            return f"stopped: target ±{percent_text(target_cv)} reached after {count}"
        reached = f" (±{percent_text(ratio)})" if ratio is not None else ""
        return f"stopped: target reached after {count}{reached}"
    if reason == "max_repetitions":
        at = f" at ±{percent_text(ratio)}" if ratio is not None else " (precision unknown)"
        within = "" if missed_target(stop, target_cv) else " (within target)"
        return f"cap of {count} reached{at}{within}"
    return str(count)


def missed_target(stop: RepetitionStop, target_cv: float | None) -> bool:
    """Whether auto repetitions stopped at the cap short of the target precision."""
    if stop.reason != "max_repetitions":
        return False
    ratio = stop.ci_half_width_ratio
    return target_cv is None or ratio is None or ratio > target_cv


def percent_text(fraction: float) -> str:
    """0.05 -> '5%', 0.081 -> '8.1%'."""
    return f"{fraction * 100:.1f}".rstrip("0").rstrip(".") + "%"
