"""Tables and lines on the terminal: a run's summary, its load sweeps, comparisons, runs, models.

Everything from outside novabench (names, hosts, server answers) is shown as plain text with
control characters escaped, never as rich markup.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from novabench.analysis.compare import (
    IMPROVEMENT,
    NO_DIFFERENCE,
    REGRESSION,
    SIGNIFICANCE,
    TOO_FEW,
    Comparison,
    Finding,
)
from novabench.analysis.compare_sweeps import SweepChange
from novabench.analysis.run_view import RunView, read_run
from novabench.analysis.significance import WITHIN_NOISE
from novabench.analysis.sweeps import level_name, verdict
from novabench.engines import ModelInfo
from novabench.records import RunListing
from novabench.run.runner import RunOutcome
from novabench.storage.store import Store
from novabench.text import terminal_safe

_VERDICT_STYLES = {REGRESSION: "red", IMPROVEMENT: "green"}


def cell(value: object) -> Text:
    """A table cell or line from outside novabench (the database, a server, a suite): plain text
    (never rich markup) with every control and bidi character shown as an escape."""
    return Text(terminal_safe("—" if value is None else str(value)))


def console(stderr: bool = False) -> Console:
    """stdout (or stderr); wide enough in a pipe or a cron mail that tables are not folded."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(highlight=False, stderr=stderr, width=None if stream.isatty() else 160)


def num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def print_summary(store: Store, outcome: RunOutcome, quiet: bool, log_json: bool) -> None:
    """The summary table on stdout; with --quiet only the failed requests, on stderr (and with
    --log-json too, nothing: each failed request has been logged as JSON already).
    """
    if quiet:
        if not log_json:
            print_failures(outcome, console(stderr=True))
        return
    out = console()
    table = Table(title=cell(f"run {outcome.run_id} ({outcome.status})"), title_justify="left")
    for header in ("mode", "model", "n", "errors", "TTFT p50 ms", "TTFT p95 ms", "gen tok/s p50"):
        table.add_column(header, justify="left" if header in ("mode", "model") else "right")
    view = read_run(store, outcome.run_id)
    for row in view.summaries():
        table.add_row(
            cell(row.mode),
            cell(row.model),
            str(row.n),
            str(row.errors),
            num(row.stat("ttft_ms", "median")),
            num(row.stat("ttft_ms", "p95")),
            num(row.stat("eval_tokens_per_s", "median"), 1),
        )
    if table.row_count:
        out.print(table)
    print_load(view, out)
    if outcome.speedup is not None:
        out.print(
            f"parallel {outcome.wall_s_by_mode['parallel']:.2f} s vs sequential "
            f"{outcome.wall_s_by_mode['sequential']:.2f} s: speedup {outcome.speedup:.2f}x"
        )
    print_failures(outcome, out)


def print_load(view: RunView, out: Console) -> None:
    """Each load sweep: a row per level, then what the sweep found, in words."""
    limits = view.slo_limits
    found = view.sweeps
    if not found:
        return
    headers = ["level", "n", "errors", "tok/s", "req/s", "TTFT p50/p95/p99 ms", "ITL p50/p95 ms"]
    headers += ["e2e p95 ms"] + (["goodput req/s"] if limits else [])
    for (model, host), summaries in found.items():
        table = Table(title=cell(f"load: {model} on {host}"), title_justify="left")
        for header in headers:
            table.add_column(header, justify="left" if header == "level" else "right")
        for level in summaries:
            cells = [
                level_name(level.kind, level.level),
                str(level.requests),
                str(level.errors),
                num(level.output_tokens_per_s, 1),
                num(level.requests_per_s, 2),
                "/".join(num(level.percentile("ttft_ms", q)) for q in (50, 95, 99)),
                "/".join(num(level.percentile("itl_ms", q), 1) for q in (50, 95)),
                num(level.e2e_ms_p95),
            ] + ([num(level.goodput_rps, 2)] if limits else [])
            table.add_row(*cells)
        out.print(table)
        out.print(cell(verdict(summaries, view.backend_of(model, host))))


def print_failures(outcome: RunOutcome, out: Console) -> None:
    """The first five failed requests, then how many more failed."""
    for failed in outcome.failed[:5]:
        out.print(cell(f"failed: {failed.model} {failed.prompt_id}: {failed.error or ''}"))
    if len(outcome.failed) > 5:
        out.print(f"... and {len(outcome.failed) - 5} more failed requests")


def print_comparison(
    comparison: Comparison,
    title: str,
    headers: tuple[str, str],
    show_all: bool = False,
    hidden_hint: str = "",
) -> None:
    """Notes, then the significant rows (regressions first) or every row, then what was left out."""
    out = console()
    if title:
        out.print(Text(terminal_safe(title)))
    for note in comparison.notes:
        out.print(Text(terminal_safe(note)))
    rows = comparison.findings if show_all else comparison.significant
    if rows:
        out.print(_findings_table(rows, headers))
    elif comparison.findings:
        # With sweeps below, say which rows this is about: the sweeps may well have changed.
        out.print(
            "no significant changes" + (" in the per-prompt groups" if comparison.load else "")
        )
    hidden = [] if show_all else [f for f in comparison.findings if not f.significant]
    if hidden:
        counts = ", ".join(
            f"{n} {verdict}"
            for verdict in (WITHIN_NOISE, TOO_FEW, NO_DIFFERENCE)
            if (n := sum(f.verdict == verdict for f in hidden))
        )
        rows_text = "1 row" if len(hidden) == 1 else f"{len(hidden)} rows"
        out.print(f"{rows_text} not significant: {counts}{hidden_hint}")
    for sweep in comparison.load:
        print_sweep_change(out, sweep, headers)
    if comparison.load:
        out.print(
            "tokens/s at a level is one number per run: no significance test; * marks a p95 "
            f"whose samples changed significantly (Mann-Whitney U, p < {SIGNIFICANCE:g})"
        )


def _findings_table(rows: Sequence[Finding], headers: tuple[str, str]) -> Table:
    """One row per finding: its group, metric, both medians, the change and the verdict."""
    several_hosts = len({f.host for f in rows}) > 1
    table = Table()
    for header in ("mode", "model", "prompt", "metric", *headers, "change", "verdict"):
        table.add_column(header, justify="right" if header in headers else "left")
    for f in rows:
        model = f"{f.model} @ {f.host}" if several_hosts else f.model
        table.add_row(
            cell(f.mode),
            cell(model),
            cell(f.prompt_id),
            f"{f.label} ({f.unit})",
            num(f.median_a, 1),
            num(f.median_b, 1),
            "—" if f.change_pct is None else f"{f.change_pct:+.1f}%",
            Text(f.verdict_text, style=_VERDICT_STYLES.get(f.verdict, "")),
        )
    return table


def print_sweep_change(out: Console, sweep: SweepChange, headers: tuple[str, str]) -> None:
    """One model's load sweep, level by level, then its knee and peak in both runs."""
    out.print(Text(terminal_safe(f"load: {sweep.model} @ {sweep.host}")))
    table = Table()
    for header in ("level", "tokens/s", "TTFT p95 (ms)", "ITL p95 (ms)", "e2e p95 (ms)", "errors"):
        table.add_column(header, justify="left" if header == "level" else "right")
    for level in sweep.levels:
        cells = [_a_to_b(level.tokens_per_s_a, level.tokens_per_s_b, level.tokens_change_pct)]
        for metric in ("ttft_ms", "itl_ms", "e2e_ms"):
            found = level.figure(metric)
            if found is None:
                cells.append(Text("—"))
                continue
            change = _a_to_b(found.p95_a, found.p95_b, found.change_pct)
            if found.significant:
                change.append(" *")
                change.stylize(_VERDICT_STYLES.get(found.verdict, ""))
            cells.append(change)
        cells.append(Text(f"{_rate(level.error_rate_a)} → {_rate(level.error_rate_b)}"))
        table.add_row(cell(level.name), *cells)
    out.print(table)
    peak = _a_to_b(sweep.peak_a, sweep.peak_b, sweep.peak_change_pct)
    out.print(
        Text(f"peak throughput (tok/s) {headers[0]} → {headers[1]}: ")
        + peak
        + Text(f"; knee: {sweep.knee_a or 'none'} → {sweep.knee_b or 'none'}")
    )
    for text in sweep.unmatched:
        out.print(Text(f"not compared: {terminal_safe(text)}"))


def _a_to_b(a: float | None, b: float | None, change_pct: float | None) -> Text:
    change = "" if change_pct is None else f" ({change_pct:+.1f}%)"
    return Text(f"{num(a, 1)} → {num(b, 1)}{change}")


def _rate(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


def regression_line(finding: Finding) -> str:
    """A regression that fails the run, on one line (for --quiet's errors)."""
    change = "" if finding.change_pct is None else f" {finding.change_pct:+.1f}%"
    return terminal_safe(
        f"regression: {finding.mode} {finding.model} {finding.prompt_id} {finding.label} "
        f"({finding.unit}): {finding.median_a:.1f} -> {finding.median_b:.1f}{change} "
        f"({finding.verdict_text})"
    )


def print_manifest(lines: Iterable[tuple[str, str]]) -> None:
    """A run's manifest, label and value (`novabench runs --show`)."""
    manifest = Table(show_header=False, box=None)
    manifest.add_column(style="bold")
    manifest.add_column()
    for label, value in lines:
        manifest.add_row(cell(label), cell(value))
    console().print(manifest)


def print_runs(runs: Iterable[RunListing]) -> None:
    """The runs in the database, one row each (`novabench runs`)."""
    table = Table()
    for header in (
        "run id",
        "started (UTC)",
        "suite",
        "status",
        "host",
        "ollama",
        "requests",
        "errors",
    ):
        table.add_column(header)
    for run_row in runs:
        table.add_row(
            cell(run_row.run_id),
            f"{run_row.started_at:%Y-%m-%d %H:%M:%S}",
            cell(run_row.suite_name),
            cell(run_row.status + (", pruned" if run_row.pruned_at else "")),
            cell(run_row.host),
            cell(run_row.ollama_version),
            str(run_row.requests),
            str(run_row.errors),
        )
    console().print(table)


def print_models(url: str, version: str, infos: Iterable[ModelInfo]) -> None:
    """The models a host has installed (`novabench models`)."""
    table = Table(title=cell(f"{url} (Ollama {version})"), title_justify="left")
    for header in ("model", "size GB", "family", "parameters", "quantization", "digest"):
        table.add_column(header)
    for info in infos:
        size = f"{info.size_bytes / 1e9:.2f}" if info.size_bytes else "—"
        table.add_row(
            cell(info.name),
            size,
            cell(info.family or None),
            cell(info.parameter_size or None),
            cell(info.quantization or None),
            cell((info.digest or "—")[:12]),
        )
    console().print(table)
