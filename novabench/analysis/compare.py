"""Compare runs: per group and metric, medians, change, and a Mann-Whitney U test on repetitions.

A run (B) is compared with a baseline (A): another run (`compare A B`, `--baseline RUN_ID`), the
most recent earlier complete run of the same suite (`--baseline last`), or the pooled repetitions
of the last N comparable earlier runs (`--baseline median:N`). Only the baseline spec is stored
with a run; every comparison is recomputed from the stored requests on read.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from novabench.analysis import aggregates, compare_sweeps
from novabench.analysis.baselines import (
    BaselineSpec,
    change_notes,
    digest_label,
    earlier_complete_runs,
    parse_baseline,
)
from novabench.analysis.compare_sweeps import SweepChange
from novabench.analysis.figures import derive
from novabench.analysis.significance import (
    IMPROVEMENT,
    METRIC_NAMES,
    METRICS,
    NO_DIFFERENCE,
    REGRESSION,
    SIGNIFICANCE,
    TOO_FEW,
    _p_text,
    judge,
)
from novabench.analysis.statistics import median
from novabench.errors import RunNotFoundError
from novabench.records import LOAD_MODE, FindingRecord, HistoryRow, RunRecord
from novabench.storage.store import Store

# A load sweep's requests (records.LOAD_MODE) ran at rising levels of load: pooled per prompt
# they are no repetitions of one measurement, so they are never compared here; compare_sweeps
# compares them level by level.


_METRIC = {m.name: m for m in METRICS}


GroupKey = tuple[str, str, str, str]  # mode, model, host, prompt_id


@dataclass(frozen=True)
class Finding(FindingRecord):
    """One metric of one (mode, model, host, prompt) group: the baseline (A) against a run (B)."""

    @property
    def significant(self) -> bool:
        return self.verdict in (REGRESSION, IMPROVEMENT)

    @property
    def change_pct(self) -> float | None:
        return None if self.change is None else 100.0 * self.change

    @property
    def label(self) -> str:
        return _METRIC[self.metric].label

    @property
    def unit(self) -> str:
        return _METRIC[self.metric].unit

    @property
    def verdict_text(self) -> str:
        """The verdict in words, with the p-value wherever a test ran."""
        if self.verdict == NO_DIFFERENCE:
            return "no difference (identical samples)"
        if self.verdict == TOO_FEW:
            detail = f"n = {self.n_a} vs {self.n_b}"
            if self.p_value is not None:
                detail += f", {_p_text(self.p_value)}"
            return f"too few repetitions for p < {SIGNIFICANCE:g} ({detail})"
        return f"{self.verdict} ({_p_text(self.p_value)})"

    def exceeds(self, pct: float) -> bool:
        """A significant regression larger than `pct` percent (an infinite one when A was 0)."""
        return self.verdict == REGRESSION and (self.change is None or abs(self.change) * 100 > pct)


@dataclass
class Comparison:
    """A run (B) against its baseline (A): findings for every group both measured."""

    run_id: str
    baseline: str  # 'last', 'median:N', or the baseline run's id
    baseline_run_ids: list[str] = field(default_factory=list)  # every run that contributed
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what explains changes or was not compared
    groups_compared: int = 0
    fail_on_regression_pct: float | None = None
    load: list[SweepChange] = field(default_factory=list)  # load sweeps, per (model, host)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == REGRESSION]

    @property
    def improvements(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == IMPROVEMENT]

    @property
    def significant(self) -> list[Finding]:
        """Regressions first, then improvements."""
        return self.regressions + self.improvements

    @property
    def failing(self) -> list[Finding]:
        """Regressions beyond the stored --fail-on-regression tolerance (none without one)."""
        pct = self.fail_on_regression_pct
        return [] if pct is None else [f for f in self.regressions if f.exceeds(pct)]

    @property
    def load_regressions(self) -> list[str]:
        """Load regressions in words: significant p95 rises, and with a tolerance, peak drops."""
        return [line for s in self.load for line in s.regressions(self.fail_on_regression_pct)]

    @property
    def load_failing(self) -> list[str]:
        """Load regressions beyond the stored --fail-on-regression tolerance (none without one)."""
        pct = self.fail_on_regression_pct
        return [] if pct is None else [line for s in self.load for line in s.failing(pct)]


def compare_runs(
    store: Store, run_a: str, run_b: str, metrics: Sequence[str] = METRIC_NAMES
) -> Comparison:
    """Run B against run A for every group both measured; RunNotFoundError for an unknown id."""
    suite_a, suite_b = store.get_run(run_a).suite_name, store.get_run(run_b).suite_name
    rows = store.history(run_ids=[run_a, run_b])
    samples = _samples(rows)
    base, current = samples.get(run_a, {}), samples.get(run_b, {})
    comparison = Comparison(run_b, run_a)
    if suite_a != suite_b:
        comparison.notes.append(f"different suites: {suite_a!r} → {suite_b!r}")
    for key, sample in current.items():
        if key in base:
            _add(comparison, key, [base[key]], sample, metrics)
    _add_sweeps(comparison, store, run_a, run_b)
    if not comparison.groups_compared and not comparison.load:
        comparison.notes.append(
            f"run {run_a} and run {run_b} measured no (mode, model, host, prompt) in common"
        )
    return comparison


def baseline_comparison(
    store: Store, run_id: str, metrics: Sequence[str] = METRIC_NAMES
) -> Comparison | None:
    """The run against the baseline stored with it (`--baseline`); None when it had none."""
    run = store.get_run(run_id)
    if not run.baseline:
        return None
    spec = parse_baseline(run.baseline)
    comparison = Comparison(run_id, spec.text, fail_on_regression_pct=run.fail_on_regression_pct)
    rows = store.history(run_ids=[run_id])
    current = _samples(rows).get(run_id, {})
    _add_sweep_baseline(comparison, store, run, spec)
    if spec.run_id is not None:  # --baseline RUN_ID
        try:
            store.get_run(spec.run_id)
        except RunNotFoundError:
            comparison.notes.append(f"baseline run {spec.run_id} is no longer in the database")
            return comparison
        base = _samples(store.history(run_ids=[spec.run_id])).get(spec.run_id, {})
        for key, sample in current.items():
            if key in base:
                _add(comparison, key, [base[key]], sample, metrics)
        if not comparison.groups_compared and not comparison.load:
            comparison.notes.append(
                f"baseline run {spec.run_id} measured no (mode, model, host, prompt) of this run"
            )
        return comparison
    if spec.kind == "last":
        earlier = earlier_complete_runs(store, run)[:1]
    else:  # per group, its N newest comparable runs (found in the summaries), not every run
        aggregates.make_missing(store)
        groups = [(*key, sample.digest) for key, sample in current.items()]
        earlier = store.comparable_earlier(run_id, groups, spec.runs)
    by_run = _samples(store.history(suite=run.suite_name, run_ids=earlier)) if earlier else {}
    for key, sample in current.items():
        measured = [by_run[r][key] for r in earlier if key in by_run.get(r, {})]
        pool = [s for s in measured if s.digest == sample.digest][: spec.runs]
        if pool:
            _add(comparison, key, pool, sample, metrics)
        elif measured:
            comparison.notes.append(
                f"{key[1]}: model changed (digest {digest_label(measured[0].digest)} → "
                f"{digest_label(sample.digest)}) since run {measured[0].run_id}: not compared"
            )
    if not comparison.groups_compared and not comparison.load:
        comparison.notes.append(
            f"no comparable earlier run of suite {run.suite_name!r} (complete, same host, "
            "model digest, mode and prompt): nothing compared"
        )
    return comparison


def baseline_findings(store: Store, run_id: str) -> list[Finding]:
    """Every finding of the run against its stored baseline; empty when it had none."""
    comparison = baseline_comparison(store, run_id)
    return comparison.findings if comparison is not None else []


def history_changes(
    store: Store, metrics: Sequence[str] = METRIC_NAMES
) -> dict[str, list[Finding]]:
    """Each run's significant changes against the previous comparable run, per group.

    Comparable: same suite, host, model, digest, mode and prompt, and the earlier run complete.
    Runs without a significant change are left out.
    """
    rows = store.history()
    context = {row.run_id: (row.suite_name, row.status) for row in rows}
    previous: dict[tuple[Any, ...], _Sample] = {}
    changes: dict[str, list[Finding]] = {}
    for run_id, groups in _samples(rows).items():  # oldest first
        suite_name, status = context[run_id]
        for key, sample in groups.items():
            before = previous.get((suite_name, *key, sample.digest))
            if before is not None:
                found = [f for f in _findings(key, [before], sample, metrics) if f.significant]
                if found:
                    changes.setdefault(run_id, []).extend(found)
        if status == "complete":
            for key, sample in groups.items():
                previous[(suite_name, *key, sample.digest)] = sample
    return changes


def changes_since_previous(
    store: Store, run_ids: Sequence[str], metrics: Sequence[str] = METRIC_NAMES
) -> dict[str, list[Finding]]:
    """What `history_changes` finds for `run_ids`, from only their rows and their baselines'.

    Each group a run measured is compared with the previous comparable run of that group (the
    store finds it in the summaries); runs are read a few at a time, so the memory used does not
    grow with the number of runs. Every run in `run_ids` gets a list, empty when nothing changed.
    """
    baselines = store.previous_comparable(run_ids)
    changes: dict[str, list[Finding]] = {run_id: [] for run_id in run_ids}
    compared = [run_id for run_id in run_ids if run_id in baselines]
    for start in range(0, len(compared), _RUNS_READ_AT_ONCE):
        chunk = compared[start : start + _RUNS_READ_AT_ONCE]
        needed = set(chunk) | {b for run_id in chunk for b in baselines[run_id].values()}
        samples = _samples(store.history(run_ids=sorted(needed)))
        for run_id in chunk:
            for key, sample in samples.get(run_id, {}).items():
                before = samples.get(baselines[run_id].get(key, ""), {}).get(key)
                if before is not None:
                    found = _findings(key, [before], sample, metrics)
                    changes[run_id] += [f for f in found if f.significant]
    return changes


def stored_changes(
    store: Store, run_ids: Sequence[str] | None = None, suites: Sequence[str] | None = None
) -> dict[str, list[Finding]]:
    """The stored significant changes (`run_changes`) of `run_ids` or of the runs of `suites`
    (every run when both are None), runs without any left out."""
    changes: dict[str, list[Finding]] = {}
    for record in store.run_changes(run_ids, suites):
        changes.setdefault(record.run_id, []).append(Finding(**record.as_dict()))
    return changes


# Runs whose rows changes_since_previous reads in one query (with their baselines').
_RUNS_READ_AT_ONCE = 64


@dataclass
class _Sample:
    """The measured values of one group in one run."""

    run_id: str
    digest: str | None
    ollama_version: str | None
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _samples(rows: Iterable[HistoryRow]) -> dict[str, dict[GroupKey, _Sample]]:
    """Rows of `Store.history` (measured, successful requests) as run id -> group -> measured
    values, in the rows' order."""
    samples: dict[str, dict[GroupKey, _Sample]] = {}
    for row in rows:
        if row.mode == LOAD_MODE:
            continue
        key = (row.mode, row.model, row.host, row.prompt_id)
        groups = samples.setdefault(row.run_id, {})
        if key not in groups:
            groups[key] = _Sample(row.run_id, row.digest, row.host_version)
        figures = derive(row)
        for metric in METRICS:
            value = getattr(figures, metric.name)
            if value is not None and math.isfinite(value):
                groups[key].values[metric.name].append(value)
    return samples


def _add_sweeps(comparison: Comparison, store: Store, run_a: str, run_b: str) -> None:
    """Run B's load sweeps against run A's, when both swept."""
    current = compare_sweeps.swept(store, run_b)
    if current.sweeps:
        changes, notes = compare_sweeps.compare_sweeps(compare_sweeps.swept(store, run_a), current)
        comparison.load += changes
        comparison.notes += [n for n in notes if n not in comparison.notes]


def _add_sweep_baseline(
    comparison: Comparison, store: Store, run: RunRecord, spec: BaselineSpec
) -> None:
    """The run's load sweeps against its stored baseline's (see compare_sweeps.baseline_sweeps)."""
    changes, notes = compare_sweeps.baseline_sweeps(store, run, spec)
    comparison.load += changes
    comparison.notes += [n for n in notes if n not in comparison.notes]
    for change in changes:
        if change.baseline_run_id not in comparison.baseline_run_ids:
            comparison.baseline_run_ids.append(change.baseline_run_id)


def _add(
    comparison: Comparison,
    key: GroupKey,
    base: Sequence[_Sample],
    current: _Sample,
    metrics: Sequence[str],
) -> None:
    comparison.groups_compared += 1
    for sample in base:
        if sample.run_id not in comparison.baseline_run_ids:
            comparison.baseline_run_ids.append(sample.run_id)
    for note in _change_notes(key, base, current):
        if note not in comparison.notes:
            comparison.notes.append(note)
    comparison.findings.extend(_findings(key, base, current, metrics))


def _findings(
    key: GroupKey, base: Sequence[_Sample], current: _Sample, metrics: Sequence[str]
) -> list[Finding]:
    notes = tuple(_change_notes(key, base, current))
    findings = []
    for name in metrics:
        metric = _METRIC[name]
        a = [v for sample in base for v in sample.values.get(name, [])]
        b = current.values.get(name, [])
        median_a, median_b = median(a), median(b)
        if median_a is None or median_b is None:
            continue  # not measured on one side (a server without eval fields, say)
        verdict, p_value = judge(a, b, metric.higher_is_worse)
        findings.append(
            Finding(
                *key,
                metric=name,
                run_id=current.run_id,
                baseline_run_ids=tuple(s.run_id for s in base),
                n_a=len(a),
                n_b=len(b),
                median_a=median_a,
                median_b=median_b,
                change=(median_b - median_a) / median_a if median_a else None,
                p_value=p_value,
                verdict=verdict,
                notes=notes,
            )
        )
    return findings


def _change_notes(key: GroupKey, base: Sequence[_Sample], current: _Sample) -> list[str]:
    return change_notes(
        key[1],
        [s.digest for s in base],
        current.digest,
        [s.ollama_version for s in base],
        current.ollama_version,
    )
