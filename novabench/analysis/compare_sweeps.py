"""Compare load sweeps: per (model, host), each level both runs ran, the knee and the peak.

A level's per-request figures (TTFT, ITL, e2e) are samples and get `compare.judge`'s Mann-Whitney
U test; its throughput is one number per run (tokens over the level's wall time), so its change
is shown without a significance claim. Everything is recomputed from stored rows on read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from novabench.analysis import aggregates
from novabench.analysis.baselines import (
    BaselineSpec,
    change_notes,
    digest_label,
)
from novabench.analysis.figures import derive, is_measured
from novabench.analysis.significance import IMPROVEMENT, REGRESSION, judge
from novabench.analysis.sweeps import knee_level, level_name, load_sweeps, peak_throughput
from novabench.errors import RunNotFoundError
from novabench.records import LOAD_MODE, LevelSummary, RunRecord
from novabench.storage.store import Store

# The per-request figures tested at each level; their p95 is what the tables show.
LEVEL_FIGURES = (("ttft_ms", "TTFT p95"), ("itl_ms", "ITL p95"), ("e2e_ms", "e2e p95"))
_LABEL = dict(LEVEL_FIGURES)
# A level rising by more than --fail-on-regression fails the run only on these (ITL is shown).
GATED_FIGURES = ("ttft_ms", "e2e_ms")

SweepKey = tuple[str, str]  # model, host


@dataclass(frozen=True)
class FigureChange:
    """One per-request figure at one level: p95 of A and B, and the test on the samples."""

    metric: str
    n_a: int
    n_b: int
    p95_a: float | None
    p95_b: float | None
    p_value: float | None
    verdict: str  # compare.REGRESSION, IMPROVEMENT, WITHIN_NOISE, TOO_FEW or NO_DIFFERENCE

    @property
    def label(self) -> str:
        return _LABEL[self.metric]

    @property
    def significant(self) -> bool:
        return self.verdict in (REGRESSION, IMPROVEMENT)

    @property
    def change_pct(self) -> float | None:
        return _change_pct(self.p95_a, self.p95_b)


@dataclass(frozen=True)
class LevelChange:
    """One level both runs swept: throughput, error rate, and the per-request figures."""

    kind: str  # concurrency or rate
    level: float
    tokens_per_s_a: float | None
    tokens_per_s_b: float | None
    error_rate_a: float | None
    error_rate_b: float | None
    figures: tuple[FigureChange, ...]

    @property
    def name(self) -> str:
        return level_name(self.kind, self.level)

    @property
    def tokens_change_pct(self) -> float | None:
        return _change_pct(self.tokens_per_s_a, self.tokens_per_s_b)

    def figure(self, metric: str) -> FigureChange | None:
        return next((f for f in self.figures if f.metric == metric), None)


@dataclass(frozen=True)
class SweepChange:
    """One (model, host)'s sweep in run B against its sweep in run A."""

    model: str
    host: str
    run_id: str
    baseline_run_id: str
    levels: tuple[LevelChange, ...]  # in B's sweep order
    knee_a: str | None  # level name of the knee; None when the sweep did not saturate
    knee_b: str | None
    peak_a: float | None  # the most output tokens/s of any level
    peak_b: float | None
    unmatched: tuple[str, ...] = ()  # levels only one run swept

    @property
    def peak_change_pct(self) -> float | None:
        return _change_pct(self.peak_a, self.peak_b)

    def regressions(self, pct: float | None) -> list[str]:
        """Significant p95 rises of any size; with a tolerance, a peak drop beyond it too."""
        return self._peak_lines(pct) + self._latency_lines(0.0)

    def failing(self, pct: float) -> list[str]:
        """What fails --fail-on-regression PCT: the peak dropping, or a level's p95 rising."""
        return self._peak_lines(pct) + self._latency_lines(pct)

    def _peak_lines(self, pct: float | None) -> list[str]:
        # one number per run, no test: only a tolerance says when a drop is a regression
        peak = self.peak_change_pct
        if pct is None or peak is None or -peak <= pct:
            return []
        return [
            f"regression: load {self.model} peak throughput (tok/s): "
            f"{self.peak_a:.1f} -> {self.peak_b:.1f} {peak:+.1f}%"
        ]

    def _latency_lines(self, pct: float) -> list[str]:
        lines = []
        for level in self.levels:
            for metric in GATED_FIGURES:
                found = level.figure(metric)
                if found is None or found.verdict != REGRESSION:
                    continue
                change = found.change_pct
                if change is not None and change <= pct:
                    continue  # the samples moved, their p95 not (or not enough)
                shown = "" if change is None else f" {change:+.1f}%"
                lines.append(
                    f"regression: load {self.model} {level.name} {found.label} (ms): "
                    f"{found.p95_a:.1f} -> {found.p95_b:.1f}{shown} (p = {found.p_value:.2g})"
                )
        return lines


@dataclass
class _Run:
    """What one run swept: level summaries and per-level request figures, per (model, host)."""

    run_id: str
    sweeps: dict[SweepKey, list[LevelSummary]]
    samples: dict[tuple[str, str, int], dict[str, list[float]]]
    digests: dict[SweepKey, str | None]
    host_versions: dict[str, str | None]


def swept(store: Store, run_id: str) -> _Run:
    """A stored run's sweeps and the samples to test them with (empty without a sweep)."""
    samples: dict[tuple[str, str, int], dict[str, list[float]]] = {}
    rows = store.results(run_id)
    for row in rows:
        if row.mode != LOAD_MODE or row.load_level is None:
            continue
        if not is_measured(row) or not row.ok:
            continue
        figures = derive(row)
        by_metric = samples.setdefault((row.model, row.host, row.load_level), {})
        for metric, _ in LEVEL_FIGURES:
            value = getattr(figures, metric)
            if value is not None and math.isfinite(value):
                by_metric.setdefault(metric, []).append(value)
    run = store.get_run(run_id)
    return _Run(
        run_id,
        load_sweeps(store, run_id, rows) if samples else {},
        samples,
        {(m.model, m.host): m.digest for m in store.models(run_id)},
        run.host_versions or {},
    )


def compare_sweeps(base: _Run, current: _Run) -> tuple[list[SweepChange], list[str]]:
    """Every (model, host) both runs swept, and notes on what could not be compared or changed."""
    changes, notes = [], []
    for key, levels_b in current.sweeps.items():
        levels_a = base.sweeps.get(key)
        if levels_a is None:
            notes.append(f"{key[0]}: run {base.run_id} has no load sweep of it to compare with")
            continue
        change = _sweep_change(key, base, levels_a, current, levels_b)
        if not change.levels:
            notes.append(f"{key[0]}: the load sweeps of the two runs have no level in common")
        changes.append(change)
        notes += [n for n in _change_notes(key, base, current) if n not in notes]
    for key in base.sweeps:
        if key not in current.sweeps:
            notes.append(f"{key[0]}: run {current.run_id} has no load sweep of it to compare with")
    return changes, notes


def baseline_sweeps(
    store: Store, run: RunRecord, spec: BaselineSpec
) -> tuple[list[SweepChange], list[str]]:
    """A run's sweeps against its --baseline, per (model, host).

    A named run is used as it is. 'last' is the newest earlier complete run of the suite that
    swept the model on that host with the same digest. Sweeps are never pooled (a level's
    throughput is one number per run), so 'median:N' uses the newest of those N runs whose sweep
    ran the same levels, or the newest of them when none did.
    """
    current = swept(store, run.run_id)
    if not current.sweeps:
        return [], []
    if spec.run_id is not None:
        try:
            return compare_sweeps(swept(store, spec.run_id), current)
        except RunNotFoundError:
            return [], []  # compare.baseline_comparison says so
    aggregates.make_missing(store)  # the load levels of every earlier run are there
    earlier = store.comparable_earlier(  # the few runs a pool can use: not every earlier one
        run.run_id,
        [(*key, current.digests.get(key)) for key in current.sweeps],
        1 if spec.kind == "last" else spec.runs,
        sweeps=True,
    )
    cache: dict[str, _Run] = {}
    changes, notes = [], []
    for key, levels_b in current.sweeps.items():
        candidates = []  # newest first: earlier runs that swept this model on this host
        for run_id in earlier:
            if run_id not in cache:
                cache[run_id] = swept(store, run_id)
            if key in cache[run_id].sweeps:
                candidates.append(cache[run_id])
        same_model = [c for c in candidates if c.digests.get(key) == current.digests.get(key)]
        pool = same_model[: 1 if spec.kind == "last" else spec.runs]
        if not pool:
            if candidates:
                before = digest_label(candidates[0].digests.get(key))
                notes.append(
                    f"{key[0]}: model changed (digest {before} → "
                    f"{digest_label(current.digests.get(key))}) since run {candidates[0].run_id}: "
                    "load sweep not compared"
                )
            else:
                notes.append(f"{key[0]}: no earlier complete load sweep of it to compare with")
            continue
        base = next((c for c in pool if same_levels(c.sweeps[key], levels_b)), pool[0])
        if spec.kind == "median" and not same_levels(base.sweeps[key], levels_b):
            notes.append(
                f"{key[0]}: none of the last {spec.runs} load sweeps ran the same levels: "
                f"compared with the newest, run {base.run_id}"
            )
        changes.append(_sweep_change(key, base, base.sweeps[key], current, levels_b))
        notes += [n for n in _change_notes(key, base, current) if n not in notes]
    return changes, notes


def same_levels(a: Sequence[LevelSummary], b: Sequence[LevelSummary]) -> bool:
    """True when two sweeps ran the same (kind, level) values."""
    return {(lv.kind, lv.level) for lv in a} == {(lv.kind, lv.level) for lv in b}


def _sweep_change(
    key: SweepKey,
    base: _Run,
    levels_a: list[LevelSummary],
    current: _Run,
    levels_b: list[LevelSummary],
) -> SweepChange:
    by_level_a = {(lv.kind, lv.level): lv for lv in levels_a}
    matched = []
    for level_b in levels_b:
        level_a = by_level_a.get((level_b.kind, level_b.level))
        if level_a is None:
            continue
        samples_a = base.samples.get((*key, level_a.level_index), {})
        samples_b = current.samples.get((*key, level_b.level_index), {})
        figures = []
        for metric, _ in LEVEL_FIGURES:
            a, b = samples_a.get(metric, []), samples_b.get(metric, [])
            if not a or not b:
                continue  # ITL of one-token answers, say
            verdict, p_value = judge(a, b, higher_is_worse=True)
            figures.append(
                FigureChange(
                    metric,
                    len(a),
                    len(b),
                    level_a.get(f"{metric}_p95"),
                    level_b.get(f"{metric}_p95"),
                    p_value,
                    verdict,
                )
            )
        matched.append(
            LevelChange(
                level_b["kind"],
                level_b["level"],
                level_a.get("output_tokens_per_s"),
                level_b.get("output_tokens_per_s"),
                level_a.get("error_rate"),
                level_b.get("error_rate"),
                tuple(figures),
            )
        )
    names_b = {(lv.kind, lv.level) for lv in levels_b}
    unmatched = [
        f"{level_name(*k)} only in run {base.run_id}" for k in by_level_a if k not in names_b
    ] + [
        f"{level_name(lv.kind, lv.level)} only in run {current.run_id}"
        for lv in levels_b
        if (lv.kind, lv.level) not in by_level_a
    ]
    return SweepChange(
        key[0],
        key[1],
        current.run_id,
        base.run_id,
        tuple(matched),
        _knee(levels_a),
        _knee(levels_b),
        peak_throughput(levels_a),
        peak_throughput(levels_b),
        tuple(unmatched),
    )


def _knee(levels: Sequence[LevelSummary]) -> str | None:
    knee = knee_level(levels)
    return None if knee is None else level_name(knee.kind, knee.level)


def _change_notes(key: SweepKey, base: _Run, current: _Run) -> list[str]:
    return change_notes(
        key[0],
        [base.digests.get(key)],
        current.digests.get(key),
        [base.host_versions.get(key[1])],
        current.host_versions.get(key[1]),
    )


def _change_pct(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or not a else 100.0 * (b - a) / a
