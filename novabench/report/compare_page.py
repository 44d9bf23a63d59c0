"""What the comparison page shows: run B against run A, every finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from novabench.analysis.compare import compare_runs
from novabench.analysis.significance import SIGNIFICANCE
from novabench.report import comparisons
from novabench.report.figures import figure
from novabench.storage.store import Store


def _run_side(store: Store, run_id: str, out_dir: Path) -> dict[str, Any]:
    """One side of the comparison: the run's record, and what the page says of it."""
    run = store.get_run(run_id)
    return {
        **run.as_dict(),
        "duration_s": run.duration_s,
        "git": (run.manifest or {}).get("git") or {},
        "has_page": (out_dir / "runs" / f"{run.run_id}.html").exists(),
    }


def comparison_context(store: Store, run_a: str, run_b: str, out_dir: Path) -> dict[str, Any]:
    """The comparison page's template context (run B against run A)."""
    runs = [_run_side(store, run_id, out_dir) for run_id in (run_a, run_b)]
    comparison = compare_runs(store, run_a, run_b)
    findings = comparisons.ordered_findings(comparison.findings)
    change = figure(
        "changes",
        "Change per metric",
        "B against A in % of A's median, a bar per model and prompt; significant regressions red, "
        f"improvements green (two-sided Mann-Whitney U, p < {SIGNIFICANCE:g}), the rest grey. "
        "For tokens/s, higher is better; for the times, lower.",
        comparisons.change_chart(findings),
    )
    return {
        "title": f"Compare {run_a} → {run_b}",
        "charted": change["json"] is not None,
        "a": runs[0],
        "b": runs[1],
        "comparison": comparison,
        "findings": findings,
        "summary": comparisons.verdict_summary(comparison),
        "models": comparisons.models_side_by_side(store.models(run_a), store.models(run_b)),
        "several_hosts": len({f.host for f in findings}) > 1,
        "several_modes": len({f.mode for f in findings}) > 1,
        "change": change if change["json"] is not None else None,
        "significance": f"{SIGNIFICANCE:g}",
    }
