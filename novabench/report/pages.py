"""Self-contained HTML pages (Jinja2 + inlined Plotly) rendered from the store alone."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import plotly.offline
import yaml
from jinja2 import Environment, PackageLoader, Undefined
from markupsafe import Markup

from novabench import __version__
from novabench.analysis.compare import (
    REGRESSION,
    SIGNIFICANCE,
    TOO_FEW,
    Comparison,
    baseline_comparison,
    compare_runs,
    history_changes,
)
from novabench.analysis.statistics import OUTLIER_IQR_FACTOR, with_figures
from novabench.engines.openai import OPENAI_OPTIONS
from novabench.errors import OutputError
from novabench.report import charts, comparisons, sections, timeline, trends
from novabench.report import sweep_trends as load_trends
from novabench.report import sweeps as load_section
from novabench.report.figures import figure as _figure
from novabench.report.figures import script_json as _script_json
from novabench.storage.store import Store, utcnow

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
MODE_ORDER = ("sequential", "parallel")

# What system.system_info() records; older or partial runs may lack some.
SYSTEM_KEYS = (
    "os",
    "machine",
    "cpu_model",
    "cpu_cores_physical",
    "cpu_cores_logical",
    "ram_bytes",
    "python",
    "python_implementation",
    "hostname",
)

STATUS_NOTES = {
    "running": "This run has not finished (or its process died without saying so): "
    "the figures cover only the requests stored so far.",
    "interrupted": "This run was interrupted before it finished: "
    "the figures cover only the requests it completed.",
    "aborted": "This run was aborted by an error: "
    "the figures cover only the requests it completed.",
}


# ---- public API ---------------------------------------------------------------------------


def render_run(store: Store, run_id: str, out_dir: Path) -> Path:
    """Write out_dir/runs/<run_id>.html: one run's provenance, summary, charts and responses."""
    _check_run_id(run_id)
    page = _render("run.html.j2", root="../", **_run_context(store, run_id))
    return _write_atomic(Path(out_dir) / "runs" / f"{run_id}.html", page)


def render_history(store: Store, out_dir: Path) -> Path:
    """Write out_dir/history.html: per-run medians of every model over all runs in the store."""
    page = _render("history.html.j2", root="", **_history_context(store))
    return _write_atomic(Path(out_dir) / "history.html", page)


def render_index(store: Store, out_dir: Path) -> Path:
    """Write out_dir/index.html: every run in the store, newest first."""
    page = _render("index.html.j2", root="", title="Runs", runs=store.list_runs())
    return _write_atomic(Path(out_dir) / "index.html", page)


def render_comparison(store: Store, run_a: str, run_b: str, out_dir: Path) -> Path:
    """Write out_dir/compare/<run_a>__<run_b>.html: run B against run A, every finding."""
    _check_run_id(run_a)
    _check_run_id(run_b)
    context = _comparison_context(store, run_a, run_b, Path(out_dir))
    page = _render("compare.html.j2", root="../", **context)
    return _write_atomic(Path(out_dir) / "compare" / f"{run_a}__{run_b}.html", page)


def render_all(store: Store, run_id: str, out_dir: Path) -> list[Path]:
    """Write the run's page, the history page and the index; return their paths in that order."""
    return [
        render_run(store, run_id, out_dir),
        render_history(store, out_dir),
        render_index(store, out_dir),
    ]


# ---- page contents ------------------------------------------------------------------------


def _run_context(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    models = sorted(store.models(run_id), key=lambda m: not m["found"])  # missing ones last
    prompts = store.prompts(run_id)
    every_row = with_figures(store.results(run_id))
    # Per-mode tables and charts pool repetitions of one prompt; a sweep's levels have their own
    # section. The timeline, resources and errors keep every request on the run's clock.
    rows = load_section.without_load(every_row)
    phases = store.phases(run_id)
    samples = store.samples(run_id)
    stops = store.repetition_stops(run_id)
    facts = sections.suite_facts(run.get("suite_text"))

    hosts = {m["host"] for m in models} | {r["host"] for r in every_row}
    several_hosts = len(hosts) > 1

    def label(row: dict[str, Any]) -> str:
        return f"{row['model']} @ {row['host']}" if several_hosts else str(row["model"])

    modes = _mode_order(list(run.get("modes") or []) + [r["mode"] for r in every_row])
    model_order = {(m["model"], m["host"]): i for i, m in enumerate(models)}

    def order(summary: dict[str, Any]) -> tuple[Any, ...]:
        return (
            summary.get("n") == 0,  # models that never answered go last
            model_order.get((summary["model"], summary["host"]), len(model_order)),
            summary["model"],
            summary["host"],
            modes.index(summary["mode"]),
        )

    summaries = sections.overview(rows, order, label)
    prompt_ids = [p["prompt_id"] for p in prompts]
    per_prompt = sections.prompt_tables(rows, prompt_ids, order, label, stops, facts)
    sections.annotate_responses(rows, samples, facts)
    figures = [
        _figure(
            "ttft",
            "Time to first token",
            "Median per model with its 95% bootstrap confidence interval (error bars), over every "
            "measured request (dots); lower is better. Intervals that do not overlap differ beyond "
            "noise.",
            charts.median_with_ci(rows, "ttft_ms", "TTFT (ms)", label, modes),
        ),
        _figure(
            "generation",
            "Generation speed",
            "Server-side eval_count / eval_duration: the median per model with its 95% bootstrap "
            "confidence interval, every measured request as a dot; higher is better.",
            charts.median_with_ci(rows, "eval_tokens_per_s", "tokens/s", label, modes),
        ),
        _figure(
            "e2e",
            "End-to-end latency",
            "From sending the request to the last chunk; lower is better.",
            charts.distribution_by_model(rows, "e2e_ms", "end-to-end (ms)", label, modes, "violin"),
        ),
        _figure(
            "gaps",
            "Gaps between tokens",
            "Per request, the median (p50), p95 and p99 of the time between consecutive chunks: "
            "a steady stream keeps them together, p95/p99 far above p50 expose stalls.",
            charts.token_gaps(rows, label, modes),
        ),
        _figure(
            "length",
            "Generation speed against output length",
            "Server tokens/s of every measured request by how many tokens it generated: a rate "
            "that falls with length points at a growing context.",
            charts.tokens_vs_length(rows, label, modes),
        ),
    ]
    comparison = _mode_comparison(phases, models)
    if comparison:
        figures.append(
            _figure(
                "walls",
                "Parallel vs sequential wall time",
                "Measured requests only; warm-ups and cold starts excluded.",
                charts.phase_walls(comparison["phases"]),
            )
        )
    system = run.get("system") or {}
    resources = _figure(
        "resources",
        "Resource usage",
        _resources_caption(samples, (run.get("manifest") or {}).get("sample_interval_s")),
        charts.resource_usage(samples, every_row, label, system.get("cpu_cores_logical")),
    )
    requests = _figure(
        "timeline",
        "Request timeline",
        "Every request on the run's clock, a lane per "
        + ("mode and model" if len(modes) > 1 else "model")
        + ": each bar ends at its last chunk, the server's durations laid back from there "
        "(generation, prompt eval, load, queue); what precedes them is the client and network. "
        "Warm-ups and cold starts are hatched. Hover a bar for its phases in ms.",
        timeline.request_timeline(every_row, label, modes),
    )
    figures = [f for f in figures if f["json"] is not None]
    load = load_section.section(store.load_levels(run_id), every_row, samples, run, models, label)
    return {
        "title": f"{run['suite_name']} · {run_id}",
        "charted": bool(figures)
        or requests["json"] is not None
        or resources["json"] is not None
        or bool(load and load["figures"]),
        "load": load,
        "baseline": _baseline_context(baseline_comparison(store, run_id)),
        "significance": f"{SIGNIFICANCE:g}",
        "run": run,
        "description": _suite_description(run.get("suite_text")),
        "status_note": STATUS_NOTES.get(run["status"]),
        "duration_s": _duration_s(run.get("started_at"), run.get("ended_at")),
        "host_versions": run.get("host_versions") or {},
        "system": {key: system.get(key) for key in SYSTEM_KEYS},
        "gpus": system.get("gpus") or [],
        "manifest": run.get("manifest") or {},
        "notices": sections.notices(run, models, every_row, stops, facts, label),
        "models": models,
        "openai_options": tuple(OPENAI_OPTIONS),  # what the openai backend sends; others not
        "prompts": prompts,
        "several_hosts": several_hosts,
        "several_modes": len({s["mode"] for s in summaries}) > 1,
        "summaries": summaries,
        "columns": sections.OVERVIEW_COLUMNS,
        "per_prompt": per_prompt,
        "prompt_columns": sections.PROMPT_COLUMNS,
        "has_checks": any(r.get("checks") for r in rows),
        "has_stops": bool(stops),
        "facts": facts,
        "outlier_rule": f"{OUTLIER_IQR_FACTOR:g}×IQR",
        "cold": sections.cold_starts(rows, order, label),
        "comparison": comparison,
        "figures": figures,
        "timeline": requests if requests["json"] is not None else None,
        "resources": resources if resources["json"] is not None else None,
        "errors": [r for r in every_row if r.get("error") is not None],
        "load_requests": len(every_row) - len(rows),
        "responses": _responses(rows, prompts, models, modes, label),
        "warmup_count": sum(1 for r in rows if r.get("is_warmup")),
        "cold_count": sum(1 for r in rows if r.get("is_cold")),
    }


def _resources_caption(samples: Sequence[dict[str, Any]], interval_s: float | None) -> str:
    every = f" every {interval_s:g} s" if interval_s else ""
    bucket = charts.bucket_size(len(samples))
    averaged = f"; each point averages {bucket} consecutive samples" if bucket > 1 else ""
    return (
        f"{len(samples):,} samples{every}{averaged}. Server CPU is the Ollama server's share of "
        "all cores. Below, each request from its send to its last chunk (grey: warm-ups and cold "
        "starts)."
    )


def _history_context(store: Store) -> dict[str, Any]:
    rows = store.history()
    series = trends.history_series(rows)
    changes = history_changes(store)
    marks = trends.change_index(changes)
    swept = load_trends.load_series(store)
    suites = []
    names = sorted({s["suite"] for s in series} | {s["suite"] for s in swept})
    for number, suite in enumerate(names, start=1):
        of_suite = [s for s in series if s["suite"] == suite]
        swept_of_suite = [s for s in swept if s["suite"] == suite]
        figures = [
            _figure(
                f"history-{number}-{metric.slug}",
                metric.title,
                metric.caption,
                trends.history_chart(of_suite, metric, marks),
            )
            for metric in trends.TREND_METRICS
        ]
        figures.append(
            _figure(
                f"history-{number}-load-peak",
                load_trends.PEAK_TITLE,
                load_trends.PEAK_CAPTION,
                load_trends.peak_chart(swept_of_suite),
            )
        )
        both = of_suite + swept_of_suite
        suites.append(
            {
                "name": suite,
                "figures": [f for f in figures if f["json"] is not None],
                "runs": len({p["run_id"] for s in both for p in s["points"]}),
                "models": sorted({s["model"] for s in both}),
            }
        )
    runs = store.list_runs()
    models: dict[str, set[str]] = {run["run_id"]: set() for run in runs}
    hosts: dict[str, set[str]] = {run["run_id"]: set() for run in runs}
    for row in rows:
        models[row["run_id"]].add(row["model"])
        hosts[row["run_id"]].add(row["host"])
    facets = {
        run["run_id"]: {
            "suite": run["suite_name"],
            "model": sorted(models[run["run_id"]]),
            "host": sorted(hosts[run["run_id"]] or {run["host"]}),
        }
        for run in runs
    }
    by_run = {run["run_id"]: run for run in runs}
    found: list[dict[str, Any]] = [
        {
            "run": by_run[run_id],
            "findings": sorted(findings, key=lambda f: f.verdict != REGRESSION),
            "regressions": sum(f.verdict == REGRESSION for f in findings),
            "since": list(dict.fromkeys(r for f in findings for r in f.baseline_run_ids)),
        }
        for run_id, findings in changes.items()
        if run_id in by_run
    ]
    found.sort(key=lambda c: (c["run"]["started_at"], c["run"]["run_id"]), reverse=True)
    all_hosts = sorted({h for of_run in facets.values() for h in of_run["host"]})
    return {
        "title": "History",
        "charted": any(s["figures"] for s in suites),
        "suites": suites,
        "filters": {
            "suite": sorted({run["suite_name"] for run in runs}),
            "model": sorted({m for of_run in models.values() for m in of_run}),
            "host": [(host, trends.host_label(host)) for host in all_hosts],
        },
        # plain JSON text: autoescape makes it a safe attribute value, the browser gives it back
        "facets": {run_id: json.dumps(f) for run_id, f in facets.items()},
        "changes": found,
        "several_hosts": len(all_hosts) > 1,
        "runs": runs,
    }


def _baseline_context(comparison: Comparison | None) -> dict[str, Any] | None:
    """The run page's block on its stored baseline: significant findings, regressions first."""
    if comparison is None:
        return None
    significant = comparison.significant
    return {
        "comparison": comparison,
        "significant": significant,
        "failing": set(comparison.failing),
        "summary": comparisons.verdict_summary(comparison),
        "too_few": any(f.verdict == TOO_FEW for f in comparison.findings),
        "several_hosts": len({f.host for f in comparison.findings}) > 1,
        "several_modes": len({f.mode for f in comparison.findings}) > 1,
    }


def _comparison_context(store: Store, run_a: str, run_b: str, out_dir: Path) -> dict[str, Any]:
    runs = [store.get_run(run_a), store.get_run(run_b)]
    comparison = compare_runs(store, run_a, run_b)
    findings = comparisons.ordered_findings(comparison.findings)
    for run in runs:
        run["duration_s"] = _duration_s(run.get("started_at"), run.get("ended_at"))
        run["git"] = (run.get("manifest") or {}).get("git") or {}
        run["has_page"] = (out_dir / "runs" / f"{run['run_id']}.html").exists()
    change = _figure(
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


def _mode_order(modes: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(modes))
    return [m for m in MODE_ORDER if m in seen] + [m for m in seen if m not in MODE_ORDER]


def _mode_comparison(
    phases: Sequence[dict[str, Any]], models: Sequence[dict[str, Any]]
) -> dict[str, Any] | None:
    """Speedup and efficiency of the parallel phase, when the run has both phases."""
    by_mode = {p["mode"]: p for p in phases}
    sequential, parallel = by_mode.get("sequential"), by_mode.get("parallel")
    if not sequential or not parallel:
        return None
    models_ran = sum(1 for m in models if m.get("found"))
    speedup = sequential["wall_s"] / parallel["wall_s"] if parallel["wall_s"] > 0 else None
    return {
        "phases": [sequential, parallel],
        "sequential": sequential,
        "parallel": parallel,
        "models_ran": models_ran,
        "speedup": speedup,
        "efficiency": speedup / models_ran if speedup is not None and models_ran else None,
    }


def _responses(
    rows: Sequence[dict[str, Any]],
    prompts: Sequence[dict[str, Any]],
    models: Sequence[dict[str, Any]],
    modes: Sequence[str],
    label: charts.Label,
) -> list[dict[str, Any]]:
    """Every stored request grouped by prompt, then model; cold starts, then warm-ups first."""
    prompt_ids = [p["prompt_id"] for p in prompts]
    prompt_ids += sorted({r["prompt_id"] for r in rows} - set(prompt_ids))
    model_keys = [(m["model"], m["host"]) for m in models]
    model_keys += sorted({(r["model"], r["host"]) for r in rows} - set(model_keys))
    by_prompt = {p["prompt_id"]: p for p in prompts}
    groups = []
    for prompt_id in prompt_ids:
        of_prompt = [r for r in rows if r["prompt_id"] == prompt_id]
        if not of_prompt:
            continue
        per_model = []
        for model, host in model_keys:
            of_model = [r for r in of_prompt if r["model"] == model and r["host"] == host]
            if not of_model:
                continue
            of_model.sort(
                key=lambda r: (
                    modes.index(r["mode"]),
                    0 if r.get("is_cold") else 1 if r["is_warmup"] else 2,
                    r["repetition"],
                    r["seq"],
                )
            )
            per_model.append({"label": label(of_model[0]), "rows": of_model})
        groups.append(
            {"prompt_id": prompt_id, "prompt": by_prompt.get(prompt_id), "models": per_model}
        )
    return groups


def _suite_description(suite_text: str | None) -> str | None:
    if not suite_text:
        return None
    try:
        suite = yaml.safe_load(suite_text)
    except yaml.YAMLError:
        return None
    description = suite.get("description") if isinstance(suite, dict) else None
    if not isinstance(description, str) or not description.strip():
        return None
    return description.strip()


def _duration_s(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    if started_at is None or ended_at is None:
        return None
    return (ended_at - started_at).total_seconds()


# ---- figures in the page ------------------------------------------------------------------


@functools.cache
def _plotly_js() -> Markup:
    # plotly.js holds no '</script', but a future build must not be able to end our tag early.
    return Markup(plotly.offline.get_plotlyjs().replace("</script", "<\\/script"))


# ---- Jinja and files ----------------------------------------------------------------------


@functools.cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("novabench", "report/templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        num=_num,
        utc=_utc,
        duration=_duration,
        short_digest=charts.short_digest,
        gigabytes=_gigabytes,
        gibibytes=_gibibytes,
        memory=_memory,
        percent=_percent,
        measure=_measure,
        change=_change,
        pvalue=_pvalue,
        host_label=trends.host_label,
    )
    return env


def _render(template: str, **context: Any) -> str:
    charted = context.pop("charted", False)
    return (
        _environment()
        .get_template(template)
        .render(
            **context,
            novabench_version=__version__,
            generated_at=utcnow(),
            plotly_js=_plotly_js() if charted else None,
            plotly_config=_script_json(json.dumps(PLOTLY_CONFIG)),
        )
    )


class _UnusableRunId(OutputError, ValueError):
    """A run id (given, or read from a database) that cannot name a report file; still a
    ValueError, as it was before the command line needed it to be an OutputError."""


def _check_run_id(run_id: str) -> None:
    if not run_id or run_id.strip(".") == "" or any(s in run_id for s in ("/", "\\", "..", "\0")):
        raise _UnusableRunId(
            f"run id {run_id!r} cannot name a report file: it must be non-empty and contain "
            "no '/', '\\' or '..' (novabench makes ids like '20261127T104500Z-3fa1')"
        )


def _write_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` via a temporary file in the same folder: no half page ever exists.

    Raises OutputError (path, reason, what to do) when the page cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes it private; a report is meant to be opened and shared
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from exc
        raise
    return path


def _cannot_write(path: Path, exc: OSError) -> OutputError:
    """The one line for a page that cannot be written: which, why, and what to do."""
    # mkdir under /dev/null says only "Not a directory": name the part that is not a folder.
    blocker = next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)
    reason = f"{blocker} is not a folder" if blocker is not None else exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space there, or give --out a folder on another disk"
    else:
        hint = "give --out a folder novabench can write to"
    return OutputError(f"cannot write the report {path} ({reason}): {hint}")


# ---- filters ------------------------------------------------------------------------------

MISSING = "—"


def _given(value: Any) -> Any:
    """None for a value that is missing from the store row or undefined in the template."""
    return None if isinstance(value, Undefined) else value


def _num(value: float | int | None, digits: int = 1) -> str:
    value = _given(value)
    if value is None:
        return MISSING
    return f"{value:,.{digits}f}"


def _measure(value: float | int | None, unit: str, digits: int = 1) -> str:
    value = _given(value)
    return MISSING if value is None else f"{_num(value, digits)} {unit}"


def _utc(value: datetime | None, seconds: bool = True) -> str:
    value = _given(value)
    if value is None:
        return MISSING
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") + " UTC"


def _duration(seconds: float | None) -> str:
    seconds = _given(seconds)
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s"


def _gigabytes(size_bytes: int | None) -> str:
    size_bytes = _given(size_bytes)
    return MISSING if size_bytes is None else f"{size_bytes / 1e9:.2f} GB"


def _gibibytes(size_bytes: int | None) -> str:
    size_bytes = _given(size_bytes)
    return MISSING if size_bytes is None else f"{size_bytes / 2**30:.1f} GiB"


def _memory(size_bytes: int | float | None) -> str:
    """Binary units that keep a figure readable: '3.0 GiB', '412 MiB'."""
    size_bytes = _given(size_bytes)
    if size_bytes is None:
        return MISSING
    if size_bytes >= 2**30:
        return f"{size_bytes / 2**30:.1f} GiB"
    return f"{size_bytes / 2**20:.0f} MiB"


def _percent(fraction: float | None, digits: int = 0) -> str:
    fraction = _given(fraction)
    return MISSING if fraction is None else f"{fraction * 100:.{digits}f}%"


def _change(percent: float | None) -> str:
    """A signed change in percent: '+12.3%'."""
    percent = _given(percent)
    return MISSING if percent is None else f"{percent:+.1f}%"


def _pvalue(p_value: float | None) -> str:
    """Two significant digits: '0.00016', '1.2e-07'."""
    p_value = _given(p_value)
    return MISSING if p_value is None else f"{p_value:.2g}"
