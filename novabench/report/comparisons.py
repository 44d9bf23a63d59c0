"""What the comparison page and the run page's baseline block show of a `compare.Comparison`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from novabench.analysis.compare import (
    IMPROVEMENT,
    METRICS,
    NO_DIFFERENCE,
    REGRESSION,
    TOO_FEW,
    Comparison,
    Finding,
)
from novabench.analysis.significance import WITHIN_NOISE
from novabench.records import ModelRecord
from novabench.report.charts import FONT_STACK, base_layout, plotly_text
from novabench.report.trends import host_label

VERDICT_COLORS = {
    REGRESSION: "#dc2626",
    IMPROVEMENT: "#059669",
    WITHIN_NOISE: "#9ca3af",
    TOO_FEW: "#d1d5db",
}
OTHER_COLOR = "#e5e7eb"
ROW_PX = 30


# How a count of each verdict reads: (singular, plural).
VERDICT_WORDS = {
    REGRESSION: ("regression", "regressions"),
    IMPROVEMENT: ("improvement", "improvements"),
    WITHIN_NOISE: ("within noise", "within noise"),
    TOO_FEW: ("with too few repetitions", "with too few repetitions"),
    NO_DIFFERENCE: ("with identical samples", "with identical samples"),
}


def verdict_summary(comparison: Comparison) -> str:
    """'2 regressions, 1 improvement, 12 within noise': the findings' verdicts, counted."""
    counts = Counter(f.verdict for f in comparison.findings)
    parts = []
    for verdict, (one, many) in VERDICT_WORDS.items():
        if counts.get(verdict):
            parts.append(f"{counts[verdict]} {one if counts[verdict] == 1 else many}")
    return ", ".join(parts)


def group_label(finding: Finding, several_hosts: bool, several_modes: bool) -> str:
    """'llama3.2:3b · greet', with the host and the mode where the comparison has several."""
    name = finding.model
    if several_hosts:
        name += f" @ {host_label(finding.host)}"
    name += f" · {finding.prompt_id}"
    if several_modes:
        name += f" · {finding.mode}"
    return name


def ordered_findings(findings: Sequence[Finding]) -> list[Finding]:
    """By model, host, mode (sequential first) and prompt, then in METRICS order."""
    rank = {m.name: i for i, m in enumerate(METRICS)}
    modes = {"sequential": 0, "parallel": 1}
    return sorted(
        findings,
        key=lambda f: (
            f.model,
            f.host,
            modes.get(f.mode, len(modes)),
            f.mode,
            f.prompt_id,
            rank.get(f.metric, len(rank)),
        ),
    )


def models_side_by_side(
    models_a: Sequence[ModelRecord], models_b: Sequence[ModelRecord]
) -> list[dict[str, Any]]:
    """Every (model, host) of either run with its digest in A and in B, and whether it differs."""
    by_key_a = {(m.model, m.host): m for m in models_a}
    by_key_b = {(m.model, m.host): m for m in models_b}
    keys = list(by_key_a) + [k for k in by_key_b if k not in by_key_a]
    rows = []
    for key in keys:
        a, b = by_key_a.get(key), by_key_b.get(key)
        digest_a = a.digest if a else None
        digest_b = b.digest if b else None
        rows.append(
            {
                "model": key[0],
                "host": key[1],
                "a": a,
                "b": b,
                "digest_a": digest_a,
                "digest_b": digest_b,
                "differs": a is None or b is None or digest_a != digest_b,
            }
        )
    return rows


def change_chart(findings: Sequence[Finding]) -> go.Figure | None:
    """Change % of B against A: a panel per metric, a bar per (model, prompt, mode) group.

    Significant changes are drawn in their verdict's colour, the rest in grey; None without any
    finding whose change is defined (A's median 0 has none).
    """
    shown = [f for f in ordered_findings(findings) if f.change_pct is not None]
    if not shown:
        return None
    several_hosts = len({f.host for f in shown}) > 1
    several_modes = len({f.mode for f in shown}) > 1
    metrics = [m for m in METRICS if any(f.metric == m.name for f in shown)]
    groups = list(dict.fromkeys(group_label(f, several_hosts, several_modes) for f in shown))
    fig = make_subplots(
        rows=1,
        cols=len(metrics),
        shared_yaxes=True,
        horizontal_spacing=0.025,
        subplot_titles=[plotly_text(f"{m.label} ({m.unit})") for m in metrics],
    )
    for column, metric in enumerate(metrics, start=1):
        of_metric = [f for f in shown if f.metric == metric.name]
        fig.add_trace(
            go.Bar(
                name=plotly_text(metric.label),
                orientation="h",
                showlegend=False,
                x=[round(f.change_pct or 0.0, 2) for f in of_metric],
                y=[plotly_text(group_label(f, several_hosts, several_modes)) for f in of_metric],
                marker={
                    "color": [VERDICT_COLORS.get(f.verdict, OTHER_COLOR) for f in of_metric],
                    "line": {
                        "color": [
                            "#111827" if f.significant else "rgba(0,0,0,0)" for f in of_metric
                        ],
                        "width": 1,
                    },
                },
                hovertext=[_hover(f) for f in of_metric],
                hovertemplate="%{y}<br>%{hovertext}<extra></extra>",
            ),
            row=1,
            col=column,
        )
        fig.update_xaxes(
            ticksuffix="%",
            zeroline=True,
            zerolinecolor="#6b7280",
            zerolinewidth=1,
            gridcolor="#e5e7eb",
            automargin=True,
            row=1,
            col=column,
        )
    height = 130 + ROW_PX * len(groups)
    fig.update_layout(
        base_layout(
            "",
            height=height,
            hovermode="closest",
            bargap=0.35,
            margin={"l": 64, "r": 24, "t": 64, "b": 56},  # the panel titles sit in the top margin
        )
    )
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=[plotly_text(g) for g in groups],
        autorange="reversed",
        gridcolor="#f3f4f6",
        automargin=True,
        rangemode="normal",
    )
    fig.update_annotations(font={"family": FONT_STACK, "size": 13, "color": "#374151"})
    return fig


def _hover(f: Finding) -> str:
    change = "—" if f.change_pct is None else f"{f.change_pct:+.1f}%"
    return (
        f"{plotly_text(f.label)}: {f.median_a:,.1f} → {f.median_b:,.1f} {plotly_text(f.unit)} "
        f"({change})<br>{plotly_text(f.verdict_text)}"
    )
