"""The run page's sections built from stored rows: statistics tables, warnings, cold starts and
what each response's details line says."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from novabench.analysis.checks import describe as describe_checks
from novabench.analysis.figures import TPS_DISAGREEMENT
from novabench.analysis.resources import lifetime_stats
from novabench.analysis.statistics import is_measured, median, outlier_flags, summarize
from novabench.config.suite import parse_suite
from novabench.errors import SuiteError

Label = Callable[[dict[str, Any]], str]
GroupKey = tuple[str, str, str, str]  # mode, model, host, prompt id

# The figure whose spread (CV, outliers) the page reports: Suite.target_metric, the one auto
# repetitions also stop on.
TARGET_NAMES = {
    "e2e_ms": "end-to-end latency",
    "ttft_ms": "TTFT",
    "eval_tokens_per_s": "generation tokens/s",
    "itl_ms": "ITL",
}
DEFAULT_TARGET = "e2e_ms"
# A warning about repetitions that stopped at the cap names at most this many cases.
CAPPED_LISTED = 6
# Why a model within the target still ran to the cap.
WITHIN_TARGET_HELP = (
    "parallel mode repeats a prompt on the whole group of models until every one of them reaches "
    "the target: another model of this group did not"
)


@dataclass(frozen=True)
class Column:
    """One figure column of a statistics table: `<figure>_<stat>` of a stats.summarize summary."""

    figure: str
    stat: str
    heading: str
    unit: str
    best: str | None  # "low" or "high": which end is highlighted; None: never highlighted
    help: str
    ci: bool = False  # show the 95% CI of the median under it

    @property
    def key(self) -> str:
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
    """What the run's stored suite text says, when it still validates (an old one may not)."""

    target_metric: str = DEFAULT_TARGET
    target_cv: float | None = None  # with repetitions: auto
    # prompt id -> {check name: description}, in the order checks.evaluate gives results
    checks: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def target_name(self) -> str:
        return TARGET_NAMES.get(self.target_metric, self.target_metric)


@dataclass(frozen=True)
class Notice:
    """One line of the warnings block: `warn` changes how to read a figure, `note` informs."""

    level: str
    text: str
    link: str | None = None  # an anchor on the page that shows more


def suite_facts(suite_text: str | None) -> SuiteFacts:
    """Target figure and check descriptions from the stored suite text; defaults if invalid."""
    if not suite_text:
        return SuiteFacts()
    try:
        suite = parse_suite(suite_text, "stored suite")
    except (SuiteError, ValueError):  # written by an older novabench, or never valid
        return SuiteFacts()
    checks = {}
    for prompt in suite.prompts:
        merged = suite.checks_for(prompt)
        if merged is not None:
            checks[prompt.id] = dict(zip(merged.declared, describe_checks(merged), strict=False))
    return SuiteFacts(
        target_metric=suite.target_metric,
        target_cv=suite.target_cv if suite.repetitions == "auto" else None,
        checks=checks,
    )


# ---- statistics tables --------------------------------------------------------------------


def mark_best(summaries: Sequence[dict[str, Any]], columns: Sequence[Column]) -> None:
    """Set each summary's `best`: the columns where it has the best value as shown (1 decimal).

    A column where every shown value is the same has no winner.
    """
    for summary in summaries:
        summary["best"] = set()
    for column in columns:
        if column.best is None:
            continue
        shown = {
            id(s): round(s[column.key], 1)
            for s in summaries
            if s.get(column.key) is not None
            # a prompt read from the KV cache is not faster at reading prompts
            and not (column.figure == "prompt_tokens_per_s" and s.get("prompt_cached"))
        }
        if len(set(shown.values())) < 2:
            continue
        best = min(shown.values()) if column.best == "low" else max(shown.values())
        for summary in summaries:
            if shown.get(id(summary)) == best:
                summary["best"].add(column.key)


def overview(
    rows: Sequence[dict[str, Any]], sort_key: Callable[[dict[str, Any]], Any], label: Label
) -> list[dict[str, Any]]:
    """One summary per (mode, model, host), all prompts pooled, with `label`, `checks`, `best`."""
    summaries = sorted(summarize(rows, ("mode", "model", "host")), key=sort_key)
    for summary in summaries:
        summary["label"] = label(summary)
        summary["checks"] = _check_text(summary)
    mark_best(summaries, OVERVIEW_COLUMNS)
    return summaries


def prompt_tables(
    rows: Sequence[dict[str, Any]],
    prompt_ids: Sequence[str],
    sort_key: Callable[[dict[str, Any]], Any],
    label: Label,
    stops: Sequence[dict[str, Any]],
    facts: SuiteFacts,
) -> list[dict[str, Any]]:
    """Per prompt, one summary per (mode, model, host): the rows of the per-prompt table.

    Each summary has `label`, `best` (within its prompt), `target_cv` / `target_outliers` of the
    suite's target figure, `checks` ("2/3" or None) and `repetitions` (how many, why it stopped).
    """
    stop_by_key = {(s["mode"], s["model"], s["host"], s["prompt_id"]): s for s in stops}
    summaries = summarize(rows, ("mode", "model", "host", "prompt_id"))
    target = facts.target_metric
    by_prompt: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for summary in summaries:
        summary["label"] = label(summary)
        summary["target_cv"] = summary.get(f"{target}_cv")
        summary["target_outliers"] = summary.get(f"{target}_outliers")
        summary["checks"] = _check_text(summary)
        stop = stop_by_key.get(
            (summary["mode"], summary["model"], summary["host"], summary["prompt_id"])
        )
        summary["repetitions"] = stop_text(stop, facts.target_cv) if stop else None
        summary["capped"] = bool(stop and missed_target(stop, facts.target_cv))
        summary["repetitions_help"] = (
            WITHIN_TARGET_HELP
            if stop and stop["reason"] == "max_repetitions" and not summary["capped"]
            else None
        )
        by_prompt[summary["prompt_id"]].append(summary)
    order = list(prompt_ids) + sorted(set(by_prompt) - set(prompt_ids))
    tables = []
    for prompt_id in order:
        members = sorted(by_prompt.get(prompt_id, []), key=sort_key)
        if not members:
            continue
        mark_best(members, PROMPT_COLUMNS)
        tables.append({"prompt_id": prompt_id, "summaries": members})
    return tables


def _check_text(summary: Mapping[str, Any]) -> str | None:
    """'2/3': requests that passed every check, of those checked; None where none was."""
    if not summary["checks_total"]:
        return None
    return f"{summary['checks_passed']}/{summary['checks_total']}"


def stop_text(stop: Mapping[str, Any], target_cv: float | None) -> str:
    """How many repetitions ran and why they stopped: 'cap of 30 reached at ±8.1%'."""
    count, reason = stop["repetitions"], stop["reason"]
    ratio = stop.get("ci_half_width_ratio")
    if reason == "target_reached":
        if target_cv is not None:
            return f"stopped: target ±{_percent(target_cv)} reached after {count}"
        reached = f" (±{_percent(ratio)})" if ratio is not None else ""
        return f"stopped: target reached after {count}{reached}"
    if reason == "max_repetitions":
        at = f" at ±{_percent(ratio)}" if ratio is not None else " (precision unknown)"
        within = "" if missed_target(stop, target_cv) else " (within target)"
        return f"cap of {count} reached{at}{within}"
    return str(count)


def missed_target(stop: Mapping[str, Any], target_cv: float | None) -> bool:
    """Whether auto repetitions stopped at the cap short of the target precision."""
    if stop["reason"] != "max_repetitions":
        return False
    ratio = stop.get("ci_half_width_ratio")
    return target_cv is None or ratio is None or ratio > target_cv


def _percent(fraction: float) -> str:
    """0.05 -> '5%', 0.081 -> '8.1%'."""
    return f"{fraction * 100:.1f}".rstrip("0").rstrip(".") + "%"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# ---- cold starts --------------------------------------------------------------------------


def cold_starts(
    rows: Sequence[dict[str, Any]], sort_key: Callable[[dict[str, Any]], Any], label: Label
) -> list[dict[str, Any]]:
    """Each cold request beside the warm medians of the same mode, model, host and prompt."""
    entries = []
    for cold in sorted((r for r in rows if r.get("is_cold")), key=sort_key):
        warm = [
            r
            for r in rows
            if is_measured(r)
            and r.get("error") is None
            and (r["mode"], r["model"], r["host"], r["prompt_id"])
            == (cold["mode"], cold["model"], cold["host"], cold["prompt_id"])
        ]
        warm_ttft = median(r["ttft_ms"] for r in warm)
        entries.append(
            {
                "label": label(cold),
                "mode": cold["mode"],
                "prompt_id": cold["prompt_id"],
                "error": cold.get("error"),
                "cold_ttft_ms": cold.get("ttft_ms"),
                "cold_load_ms": cold.get("load_ms"),
                "warm_n": len(warm),
                "warm_ttft_ms": warm_ttft,
                "warm_load_ms": median(r["load_ms"] for r in warm),
                "ttft_ratio": (
                    cold["ttft_ms"] / warm_ttft if cold.get("ttft_ms") and warm_ttft else None
                ),
            }
        )
    return entries


# ---- warnings -----------------------------------------------------------------------------


def notices(
    run: Mapping[str, Any],
    models: Sequence[Mapping[str, Any]],
    rows: Sequence[dict[str, Any]],
    stops: Sequence[Mapping[str, Any]],
    facts: SuiteFacts,
    label: Label,
) -> list[Notice]:
    """What a reader must know before trusting the figures, most serious first."""
    found: list[Notice] = []
    failed = [r for r in rows if r.get("error") is not None]
    if failed:
        unmeasured = sum(1 for r in failed if not is_measured(r))
        extra = f", {unmeasured} of them warm-up or cold-start" if unmeasured else ""
        found.append(
            Notice(
                "warn",
                f"{_plural(len(failed), 'request')} failed{extra}: the statistics count only "
                "successful requests",
                "#errors",
            )
        )
    found += _memory_notices(run, models, label)
    measured_ok = [r for r in rows if is_measured(r) and r.get("error") is None]
    found += _per_model(
        measured_ok,
        label,
        "tps_disagreement",
        lambda name, count, total: Notice(
            "warn",
            f"{name}: server and client tokens/s differ by more than {TPS_DISAGREEMENT:.0%} in "
            f"{count} of {_plural(total, 'request')} (chunks buffered on the way, or a busy "
            "client); Generation uses the server clock",
        ),
    )
    capped = [s for s in stops if missed_target(s, facts.target_cv)]
    if capped:
        target = f" ±{_percent(facts.target_cv)}" if facts.target_cv is not None else ""
        listed = [
            f"{label(dict(s))} · {s['prompt_id']} ({s['mode']}"
            + (f", ±{_percent(s['ci_half_width_ratio'])})" if s["ci_half_width_ratio"] else ")")
            for s in capped[:CAPPED_LISTED]
        ]
        more = f" and {len(capped) - CAPPED_LISTED} more" if len(capped) > CAPPED_LISTED else ""
        found.append(
            Notice(
                "warn",
                f"Auto repetitions stopped at the cap without reaching the target{target} on "
                f"{facts.target_name} in {len(capped)} of {len(stops)} cases: "
                f"{'; '.join(listed)}{more}. Their medians are less precise than the suite asked",
                "#per-prompt",
            )
        )
    found += _per_model(
        measured_ok,
        label,
        "prompt_cached",
        lambda name, count, total: Notice(
            "note",
            f"{name}: prompt served from the KV cache in {_plural(count, 'request')}: "
            "prompt tokens/s is not comparable",
        ),
    )
    git = ((run.get("manifest") or {}).get("git")) or {}
    if git.get("dirty"):
        commit = f" (commit {str(git.get('commit') or '?')[:12]}"
        commit += f" on {git['branch']})" if git.get("branch") else ")"
        suite_changed = (
            "; the suite file itself was changed, so the suite text stored with this run is "
            "what ran"
            if git.get("suite_file_changed")
            else ""
        )
        found.append(
            Notice(
                "warn",
                f"The suite's repository had uncommitted changes{commit}: the run may not be "
                f"reproducible from that commit{suite_changed}",
            )
        )
    return sorted(found, key=lambda notice: notice.level != "warn")  # stable: notes last


def _memory_notices(
    run: Mapping[str, Any], models: Sequence[Mapping[str, Any]], label: Label
) -> list[Notice]:
    """Models that did not fit in GPU memory, from what /api/ps said after their first request."""
    gpus = (run.get("system") or {}).get("gpus") or (run.get("manifest") or {}).get("gpus") or []
    found = []
    for model in models:
        size, vram = model.get("loaded_size_bytes"), model.get("loaded_vram_bytes")
        if not size or vram is None:
            continue
        name = label(dict(model))
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
    rows: Sequence[dict[str, Any]],
    label: Label,
    flag: str,
    notice: Callable[[str, int, int], Notice],
) -> list[Notice]:
    """A notice per model with requests where `flag` is true: (label, flagged, of how many)."""
    flagged: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.get(flag) is not None:
            total[label(row)] += 1
            flagged[label(row)] += bool(row[flag])
    return [notice(name, count, total[name]) for name, count in flagged.items() if count]


# ---- responses ----------------------------------------------------------------------------


def annotate_responses(
    rows: Sequence[dict[str, Any]],
    samples: Sequence[Mapping[str, Any]],
    facts: SuiteFacts,
) -> None:
    """Add to each row what its details line shows: `outlier`, `check_marks`, `usage`.

    `outlier`: the suite's target figure lies beyond stats.OUTLIER_IQR_FACTOR IQRs of the
    quartiles of its (mode, model, host, prompt); `check_marks`: (passed, text) per check;
    `usage`: peak and mean resource figures over the request's lifetime, None without samples.
    """
    groups: dict[GroupKey, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        row["outlier"] = False
        if is_measured(row) and row.get("error") is None:
            groups[(row["mode"], row["model"], row["host"], row["prompt_id"])].append(row)
    for members in groups.values():
        flags = outlier_flags([r.get(facts.target_metric) for r in members])
        for row, flag in zip(members, flags, strict=True):
            row["outlier"] = flag
    for row in rows:
        described = facts.checks.get(row["prompt_id"], {})
        row["check_marks"] = [
            (bool(passed), described.get(name, name))
            for name, passed in (row.get("checks") or {}).items()
        ]
        end_s = None if row.get("e2e_s") is None else row["start_offset_s"] + row["e2e_s"]
        row["usage"] = (
            lifetime_stats(samples, row["start_offset_s"], end_s)
            if samples and end_s is not None
            else None
        )
