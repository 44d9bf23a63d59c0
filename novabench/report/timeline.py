"""The per-request timeline of a run: every request as a bar of its phases on the run's clock.

A lane per mode and model (more when requests of one lane overlap), so sequential requests form a
staircase and parallel ones stand side by side. Each bar ends when the last chunk arrived
(start_offset_s + e2e_s); the server's own durations are laid back from that end: generation
(eval_duration), prompt eval, load, the server's unaccounted time (queue), and before them what
the client waited for anything to start on the server (network, HTTP, scheduling).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from novabench.analysis.figures import NS_PER_S, is_measured, queue_ns
from novabench.records import Request
from novabench.report.charts import base_layout, plotly_text
from novabench.report.tables import Label
from novabench.report.thinning import Tally, per_trace, thin

# (key, legend name, colour), in the order they happen within a request.
PHASES = (
    ("network", "client & network", "#cbd5e1"),
    ("queue", "queue", "#f59e0b"),
    ("load", "load", "#db2777"),
    ("prompt", "prompt eval", "#0891b2"),
    ("generation", "generation", "#4f46e5"),
    ("untimed", "no server timings", "#94a3b8"),
    ("failed", "failed", "#e11d48"),
)
PHASE_NAMES = {key: name for key, name, _ in PHASES}
LANE_PX = 34
MIN_HEIGHT_PX = 320  # the page's chart box
UNMEASURED = "warm-up / cold start"
UNMEASURED_OPACITY = 0.6
# White stripes over the phase's colour: hatched, and still the phase's colour.
UNMEASURED_PATTERN = {
    "shape": "/",
    "fillmode": "overlay",
    "fgcolor": "#ffffff",
    "size": 6,
    "solidity": 0.45,
}
DECIMALS = 6  # seconds: microseconds, finer than any server duration we are shown in ms


@dataclass(frozen=True)
class Segment:
    """One phase of one request: where it starts (s since the run started) and how long it took."""

    phase: str
    start_s: float
    length_s: float


def request_segments(row: Request) -> list[Segment]:
    """The phases of one request laid back from its end; empty without a start and an end.

    Without server durations (a failed request, a server that sends none) one segment spans the
    whole request. A phase the server did not report is left out, so are empty ones.
    """
    start, e2e = row.start_offset_s, row.e2e_s
    if start is None or e2e is None:
        return []
    end = float(start) + float(e2e)
    if row.error is not None or row.total_duration_ns is None:
        phase = "failed" if row.error is not None else "untimed"
        return [Segment(phase, float(start), float(e2e))]
    server = {
        "generation": row.eval_duration_ns,
        "prompt": row.prompt_eval_duration_ns,
        "load": row.load_duration_ns,
        "queue": queue_ns(row),
    }
    segments = []
    at = end
    for phase in ("generation", "prompt", "load", "queue"):
        length = (server[phase] or 0) / NS_PER_S
        at -= length
        if length > 0:
            segments.append(Segment(phase, at, length))
    if at > start:  # what the server did not account for: before it started on the request
        segments.append(Segment("network", float(start), at - float(start)))
    return segments[::-1]


# Overlapping requests of one mode and model get a lane each up to this many; beyond it (a load
# sweep of hundreds of streams) bars share the lane that frees first, so the chart keeps a height
# a page can show.
MAX_SUB_LANES = 32


def lanes(
    rows: Sequence[Request], label: Label, modes: Sequence[str]
) -> tuple[list[str], list[int]]:
    """Lane names, and each row's lane: a lane per mode and model, one more per overlap."""
    present = [m for m in modes if any(r.mode == m for r in rows)]
    present += sorted({r.mode for r in rows} - set(present))
    models = list(dict.fromkeys(label(r) for r in rows))
    several_modes = len(present) > 1
    names: list[str] = []
    assigned = [0] * len(rows)
    for mode in present:
        for model in models:
            members = sorted(
                (i for i, r in enumerate(rows) if r.mode == mode and label(r) == model),
                key=lambda i: rows[i].start_offset_s,
            )
            if not members:
                continue
            name = f"{model} · {mode}" if several_modes else model
            ends: list[float] = []  # per sub-lane, when its last request ended
            first = len(names)
            for i in members:
                row = rows[i]
                free = next((k for k, e in enumerate(ends) if e <= row.start_offset_s + 1e-6), None)
                if free is None and len(ends) >= MAX_SUB_LANES:
                    free = min(range(len(ends)), key=ends.__getitem__)
                elif free is None:
                    free = len(ends)
                    ends.append(0.0)
                    names.append(name if free == 0 else f"{name} ({free + 1})")
                ends[free] = row.start_offset_s + (row.e2e_s or 0.0)
                assigned[i] = first + free
    return names, assigned


def request_timeline(
    rows: Iterable[Request], label: Label, modes: Sequence[str], tally: Tally | None = None
) -> go.Figure | None:
    """Every request with a start and an end as stacked phase segments; None without any.

    Warm-ups and cold starts are drawn hatched and faded. Hovering a bar names the request and
    gives every phase in ms. A big run draws a thinned share of each mode and model's requests
    (`thinning`), in the lanes that all of them fill.
    """
    every = [
        r for r in rows if r.start_offset_s is not None and r.e2e_s is not None and r.e2e_s >= 0
    ]
    if not every:
        return None
    names, lanes_of_every = lanes(every, label, modes)
    timed, lane_of = _drawn(every, lanes_of_every, label, tally)
    segments = [request_segments(r) for r in timed]
    fig = go.Figure()
    for phase, legend_name, color in PHASES:
        for measured in (True, False):
            bar = _phase_bar(timed, lane_of, segments, phase, measured)
            if bar is None:
                continue
            marker: dict[str, Any] = {"color": color, "line": {"width": 0}}
            if not measured:
                marker["pattern"] = UNMEASURED_PATTERN
            # Unmeasured segments share one legend item, shown once: a click hides them all.
            bar.update(
                name=legend_name if measured else UNMEASURED,
                legendgroup=phase if measured else UNMEASURED,
                legendrank=1000 if measured else 2000,
                showlegend=measured,
                marker=marker,
                opacity=1.0 if measured else UNMEASURED_OPACITY,
            )
            fig.add_trace(bar)
    unmeasured = [t for t in fig.data if t.legendgroup == UNMEASURED]
    if unmeasured:  # the generation segment shows the hatch best
        carrier = next((t for t in unmeasured if t.marker.color == PHASES[4][2]), unmeasured[0])
        carrier.showlegend = True
    # One transparent bar over each whole request carries its hover text: the segments' own
    # traces would repeat it once per phase.
    fig.add_trace(
        go.Bar(
            name="request",
            showlegend=False,
            orientation="h",
            base=[round(float(r.start_offset_s), DECIMALS) for r in timed],
            x=[round(float(r.e2e_s or 0.0), DECIMALS) for r in timed],
            y=lane_of,
            width=0.62,
            marker={"color": "rgba(0,0,0,0)", "line": {"width": 0}},
            hovertext=[_hover(r, label, parts) for r, parts in zip(timed, segments, strict=True)],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    )
    _lay_out(fig, names)
    return fig


def _drawn(
    timed: Sequence[Request], lane_of: Sequence[int], label: Label, tally: Tally | None
) -> tuple[list[Request], list[int]]:
    """The requests the chart draws, thinned per mode and model, and their lanes."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, row in enumerate(timed):
        groups.setdefault((row.mode, label(row)), []).append(index)
    limit = per_trace(len(groups))
    kept = sorted(
        i
        for members in groups.values()
        for i in thin(members, lambda i: timed[i].e2e_s, limit, tally)
    )
    return [timed[i] for i in kept], [lane_of[i] for i in kept]


def _phase_bar(
    timed: Sequence[Request],
    lane_of: Sequence[int],
    segments: Sequence[Sequence[Segment]],
    phase: str,
    measured: bool,
) -> go.Bar | None:
    """One phase's segments of the measured (or the other) requests as one trace; None if none."""
    starts: list[float] = []
    lengths: list[float] = []
    ys: list[int] = []
    for row, lane, parts in zip(timed, lane_of, segments, strict=True):
        if is_measured(row) != measured:
            continue
        for part in parts:
            if part.phase == phase:
                starts.append(round(part.start_s, DECIMALS))
                lengths.append(round(part.length_s, DECIMALS))
                ys.append(lane)
    if not ys:
        return None
    return go.Bar(orientation="h", base=starts, x=lengths, y=ys, width=0.62, hoverinfo="skip")


def _lay_out(fig: go.Figure, names: Sequence[str]) -> None:
    """A lane per name, the first on top, seconds since the run started along x."""
    height = max(MIN_HEIGHT_PX, 140 + LANE_PX * len(names))
    fig.update_layout(
        base_layout(
            "",
            height=height,
            barmode="overlay",
            bargap=0.3,
            hovermode="closest",
            margin={"l": 64, "r": 24, "t": 24, "b": 56},
        )
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(names))),
        ticktext=[plotly_text(n) for n in names],
        autorange="reversed",  # the first lane on top
        rangemode="normal",
        showgrid=False,
        zeroline=False,  # y is a lane number: 0 is the first lane, not a baseline
        title=None,
    )
    fig.update_xaxes(title={"text": "seconds since the run started"}, rangemode="tozero")


def _hover(row: Request, label: Label, parts: Sequence[Segment]) -> str:
    if row.is_cold:
        kind = "cold start"
    elif row.is_warmup:
        kind = f"warm-up {row['repetition'] + 1}"
    else:
        kind = f"rep {row['repetition'] + 1}"
    start = float(row.start_offset_s)
    lines = [
        f"<b>{plotly_text(label(row))}</b> · {plotly_text(row['mode'])}",
        f"prompt {plotly_text(row['prompt_id'])}, {kind}",
        f"{start:.2f}–{start + float(row['e2e_s']):.2f} s ({float(row['e2e_s']) * 1000:,.1f} ms)",
    ]
    for part in parts:
        lines.append(f"{PHASE_NAMES[part.phase]}: {part.length_s * 1000:,.1f} ms")
    if row.error is not None:
        lines.append(plotly_text(str(row.error)[:120]))
    return "<br>".join(lines)
