"""The spread between repeated runs: each round's own error figures (min / median / max), and
the target that needs them: novabench with its live display on at least as accurate as the
`ollama` client at every level, in repeated runs (issue 13)."""

from __future__ import annotations

import statistics

from rich.table import Table

from tests.perf.harness import PerfConfig, RunFigures
from tests.perf.loadmode import CLIENT as CLIENT_LOAD
from tests.perf.loadmode import LoadFigures

OURS = "novabench-live"  # as `novabench run` streams: live display on
PEER = "ollama"


def spread(values: list[float]) -> str:
    """min / median / max, or – when there is nothing to spread."""
    if not values:
        return "–"
    return f"{min(values):+.2f} / {statistics.median(values):+.2f} / {max(values):+.2f}"


def spread_table(
    config: PerfConfig, figures: list[RunFigures], load: list[LoadFigures] | None = None
) -> Table:
    """Each level and client: its error figures over the rounds, min / median / max."""
    table = Table(
        title=f"Spread over rounds ({config.rounds} per level and client; load mode: runs per "
        "level): each round's own median, min / median / max",
        title_justify="left",
        padding=(0, 1),
    )
    for header in ("streams", "client", "rounds", "TTFT err %", "ITL err %", "tok/s err %"):
        table.add_column(header, justify="right")
    for run in figures:
        if run.flood:
            continue
        table.add_row(
            f"{run.concurrency} fast" if run.fast else str(run.concurrency),
            run.client,
            str(len(run.ttft_error_pct_rounds)),
            spread(run.ttft_error_pct_rounds),
            spread(run.itl_error_pct_rounds),
            spread(run.tps_error_pct_rounds),
        )
    for streams in sorted({level.concurrency for level in load or []}):
        runs = [level.accuracy for level in load or [] if level.concurrency == streams]
        table.add_row(
            f"{streams} load",
            CLIENT_LOAD,
            str(len(runs)),
            *(
                spread([value for value in values if value is not None])
                for values in (
                    [run.ttft_error_pct for run in runs],
                    [run.itl_error_pct for run in runs],
                    [run.tps_error_pct for run in runs],
                )
            ),
        )
    return table


def as_accurate_as_peer(
    config: PerfConfig, figures: list[RunFigures]
) -> tuple[str, bool | None, str]:
    """At each level: novabench's |TTFT error| over the rounds, median and worst, at most the
    peer's median and worst. Returns the target, met (None: nothing to compare), the figure."""
    target = (
        f"novabench (live display) at least as accurate as the ollama client at every level: "
        f"|TTFT error| median and worst of {config.rounds} rounds"
    )
    by_key = {(run.client, run.concurrency): run for run in figures if not run.flood}
    verdicts: list[bool] = []
    parts: list[str] = []
    for level in config.levels + config.fast_levels:
        ours, peer = by_key.get((OURS, level)), by_key.get((PEER, level))
        if ours is None or peer is None:
            continue
        mine = [abs(value) for value in ours.ttft_error_pct_rounds]
        theirs = [abs(value) for value in peer.ttft_error_pct_rounds]
        if not mine or not theirs:
            continue
        met = statistics.median(mine) <= statistics.median(theirs) and max(mine) <= max(theirs)
        verdicts.append(met)
        parts.append(
            f"{level}: {statistics.median(mine):.2f}/{max(mine):.2f}% vs "
            f"{statistics.median(theirs):.2f}/{max(theirs):.2f}%" + ("" if met else " (worse)")
        )
    if not verdicts:
        return target, None, "–"
    return target, all(verdicts), "median/worst, novabench vs ollama: " + ", ".join(parts)
