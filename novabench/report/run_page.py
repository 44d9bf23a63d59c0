"""What the run page shows, from one read of the run (analysis.run_view)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from novabench.analysis.compare import Comparison, baseline_comparison
from novabench.analysis.run_view import RunView, read_run
from novabench.analysis.significance import SIGNIFICANCE, TOO_FEW
from novabench.analysis.statistics import OUTLIER_IQR_FACTOR
from novabench.records import GroupSummary, ModelRecord, PhaseRecord, Request
from novabench.report import charts, comparisons, sweeps, timeline, usage_chart
from novabench.report.figures import figure
from novabench.report.notices import notices
from novabench.report.responses import (
    MAX_ERRORS_LISTED,
    cold_starts,
    outliers,
    response_views,
    selection,
)
from novabench.report.tables import (
    OVERVIEW_COLUMNS,
    PROMPT_COLUMNS,
    Label,
    Located,
    overview,
    prompt_tables,
    suite_facts,
)
from novabench.report.thinning import Tally
from novabench.storage.store import Store

MODE_ORDER = ("sequential", "parallel")

# What run/machine.system_info() records; older or partial runs may lack some.
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

# What a thinned chart still counts in full, said in its note.
EXACT = "the medians, intervals and tables count every request"
EXACT_NOTES = {
    "e2e": "the boxes (quartiles, whiskers at 1.5×IQR) and the tables count every request",
    "gaps": "the boxes (quartiles, whiskers at 1.5×IQR) and the tables count every request",
    "length": "the tables count every request",
}

STATUS_NOTES = {
    "running": "This run has not finished (or its process died without saying so): "
    "the figures cover only the requests stored so far.",
    "interrupted": "This run was interrupted before it finished: "
    "the figures cover only the requests it completed.",
    "aborted": "This run was aborted by an error: "
    "the figures cover only the requests it completed.",
}


def run_context(store: Store, run_id: str) -> dict[str, Any]:
    """The run page's template context."""
    view = read_run(store, run_id)
    run = view.run
    models = sorted(view.models, key=lambda m: not m.found)  # missing ones last
    label = _labeller(models, view.requests)
    modes = mode_order(list(run.modes or []) + [r.mode for r in view.requests])
    facts = suite_facts(run.facts)
    rows = view.mode_requests
    summary_order, request_order = _orders(models, modes)
    summaries = overview(rows, summary_order, label)
    figures, timeline_figure, resources = _figures(view, rows, label, modes)
    load = sweeps.section(view, models, label)
    system = run.system or {}
    outlier_seqs = outliers(rows, facts)
    listed = view.with_texts(selection(rows, outlier_seqs))
    views = response_views(listed, view.samples, facts, outlier_seqs)
    errors = [r for r in view.requests if not r.ok]
    return {
        "title": f"{run.suite_name} · {run_id}",
        "charted": bool(figures)
        or timeline_figure["json"] is not None
        or resources["json"] is not None
        or bool(load and load["figures"]),
        "load": load,
        "baseline": baseline_context(baseline_comparison(store, run_id)),
        "significance": f"{SIGNIFICANCE:g}",
        "run": run,
        "description": (run.facts or {}).get("description"),
        "status_note": STATUS_NOTES.get(run.status),
        "duration_s": run.duration_s,
        "host_versions": run.host_versions or {},
        "system": {key: system.get(key) for key in SYSTEM_KEYS},
        "gpus": system.get("gpus") or [],
        "manifest": run.manifest or {},
        "notices": notices(run, models, view.requests, view.stops, facts, label),
        "models": models,
        "prompts": view.prompts,
        "several_hosts": _several_hosts(models, view.requests),
        "several_modes": len({s.mode for s in summaries}) > 1,
        "summaries": summaries,
        "columns": OVERVIEW_COLUMNS,
        "per_prompt": prompt_tables(
            rows, [p.prompt_id for p in view.prompts], summary_order, label, view.stops, facts
        ),
        "prompt_columns": PROMPT_COLUMNS,
        "has_checks": any(r.checks for r in rows),
        "has_stops": bool(view.stops),
        "facts": facts,
        "outlier_rule": f"{OUTLIER_IQR_FACTOR:g}×IQR",
        "cold": cold_starts(rows, request_order, label),
        "comparison": mode_comparison(view.phases, models),
        "figures": figures,
        "timeline": timeline_figure if timeline_figure["json"] is not None else None,
        "resources": resources if resources["json"] is not None else None,
        "errors": errors[:MAX_ERRORS_LISTED],
        "errors_total": len(errors),
        "load_requests": len(view.requests) - len(rows),
        "responses": _responses(listed, views, view, models, modes, label),
        "responses_listed": len(listed),
        "responses_total": len(rows),
        "warmup_count": sum(1 for r in rows if r.is_warmup),
        "cold_count": sum(1 for r in rows if r.is_cold),
    }


def _several_hosts(models: Sequence[ModelRecord], requests: Sequence[Request]) -> bool:
    return len({m.host for m in models} | {r.host for r in requests}) > 1


def _labeller(models: Sequence[ModelRecord], requests: Sequence[Request]) -> Label:
    several = _several_hosts(models, requests)

    def label(item: Located) -> str:
        return f"{item.model} @ {item.host}" if several else str(item.model)

    return label


def _orders(
    models: Sequence[ModelRecord], modes: Sequence[str]
) -> tuple[Callable[[GroupSummary], Any], Callable[[Request], Any]]:
    """How summaries and requests are listed: the run's model order, then host and mode."""
    model_order = {(m.model, m.host): i for i, m in enumerate(models)}

    def placed(model: str, host: str, mode: str) -> tuple[Any, ...]:
        rank = model_order.get((model, host), len(model_order))
        return (rank, model, host, modes.index(mode))

    def summary_order(summary: GroupSummary) -> tuple[Any, ...]:
        # models that never answered go last
        return (summary.n == 0, *placed(summary.model, summary.host, summary.mode))

    def request_order(request: Request) -> tuple[Any, ...]:
        return (False, *placed(request.model, request.host, request.mode))

    return summary_order, request_order


def _figures(
    view: RunView, rows: Sequence[Request], label: Label, modes: Sequence[str]
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The charts of the page: (per-mode figures, the request timeline, resources).

    Each chart of single requests counts what it draws (`thinning.Tally`): a big run's chart
    says beside it how many of its requests it shows.
    """
    tallies = {key: Tally() for key in ("ttft", "generation", "e2e", "gaps", "length")}

    def charted(key: str, title: str, caption: str, fig: Any) -> dict[str, Any]:
        return figure(key, title, caption, fig, tallies[key].note(EXACT_NOTES.get(key, EXACT)))

    made = [
        charted(
            "ttft",
            "Time to first token",
            "Median per model with its 95% bootstrap confidence interval (error bars), over every "
            "measured request (dots); lower is better. Intervals that do not overlap differ beyond "
            "noise.",
            charts.median_with_ci(rows, "ttft_ms", "TTFT (ms)", label, modes, tallies["ttft"]),
        ),
        charted(
            "generation",
            "Generation speed",
            "Server-side eval_count / eval_duration: the median per model with its 95% bootstrap "
            "confidence interval, every measured request as a dot; higher is better.",
            charts.median_with_ci(
                rows, "eval_tokens_per_s", "tokens/s", label, modes, tallies["generation"]
            ),
        ),
        charted(
            "e2e",
            "End-to-end latency",
            "From sending the request to the last chunk; lower is better.",
            charts.distribution_by_model(
                rows, "e2e_ms", "end-to-end (ms)", label, modes, "violin", tallies["e2e"]
            ),
        ),
        charted(
            "gaps",
            "Gaps between tokens",
            "Per request, the median (p50), p95 and p99 of the time between consecutive chunks: "
            "a steady stream keeps them together, p95/p99 far above p50 expose stalls.",
            charts.token_gaps(rows, label, modes, tallies["gaps"]),
        ),
        charted(
            "length",
            "Generation speed against output length",
            "Server tokens/s of every measured request by how many tokens it generated: a rate "
            "that falls with length points at a growing context.",
            charts.tokens_vs_length(rows, label, modes, tallies["length"]),
        ),
    ]
    walls = mode_comparison(view.phases, view.models)
    if walls:
        made.append(
            figure(
                "walls",
                "Parallel vs sequential wall time",
                "Measured requests only; warm-ups and cold starts excluded.",
                charts.phase_walls(walls["phases"]),
            )
        )
    return [f for f in made if f["json"] is not None], *_run_charts(view, label, modes)


def _run_charts(
    view: RunView, label: Label, modes: Sequence[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The charts of every request on the run's clock: (the request timeline, resources)."""
    run = view.run
    cores = (run.system or {}).get("cpu_cores_logical")
    used, lanes = Tally(), Tally()
    resource_chart = usage_chart.resource_usage(view.samples, view.requests, label, cores, used)
    resources = figure(
        "resources",
        "Resource usage",
        _resources_caption(len(view.samples), (run.manifest or {}).get("sample_interval_s")),
        resource_chart,
        used.note("the CPU and memory lines count every sample"),
    )
    timeline_chart = timeline.request_timeline(view.requests, label, modes, lanes)
    requests = figure(
        "timeline",
        "Request timeline",
        "Every request on the run's clock, a lane per "
        + ("mode and model" if len(modes) > 1 else "model")
        + ": each bar ends at its last chunk, the server's durations laid back from there "
        "(generation, prompt eval, load, queue); what precedes them is the client and network. "
        "Warm-ups and cold starts are hatched. Hover a bar for its phases in ms.",
        timeline_chart,
        lanes.note("the lanes are those every request fills"),
    )
    return requests, resources


def _resources_caption(samples: int, interval_s: float | None) -> str:
    every = f" every {interval_s:g} s" if interval_s else ""
    bucket = usage_chart.bucket_size(samples)
    averaged = f"; each point averages {bucket} consecutive samples" if bucket > 1 else ""
    return (
        f"{samples:,} samples{every}{averaged}. Server CPU is the Ollama server's share of "
        "all cores. Below, each request from its send to its last chunk (grey: warm-ups and cold "
        "starts)."
    )


def baseline_context(comparison: Comparison | None) -> dict[str, Any] | None:
    """The run page's block on its stored baseline: significant findings, regressions first."""
    if comparison is None:
        return None
    return {
        "comparison": comparison,
        "significant": comparison.significant,
        "failing": set(comparison.failing),
        "summary": comparisons.verdict_summary(comparison),
        "too_few": any(f.verdict == TOO_FEW for f in comparison.findings),
        "several_hosts": len({f.host for f in comparison.findings}) > 1,
        "several_modes": len({f.mode for f in comparison.findings}) > 1,
    }


def mode_order(modes: Sequence[str]) -> list[str]:
    seen = list(dict.fromkeys(modes))
    return [m for m in MODE_ORDER if m in seen] + [m for m in seen if m not in MODE_ORDER]


def mode_comparison(
    phases: Sequence[PhaseRecord], models: Sequence[ModelRecord]
) -> dict[str, Any] | None:
    """Speedup and efficiency of the parallel phase, when the run has both phases."""
    by_mode = {p.mode: p for p in phases}
    sequential, parallel = by_mode.get("sequential"), by_mode.get("parallel")
    if not sequential or not parallel:
        return None
    models_ran = sum(1 for m in models if m.found)
    speedup = sequential.wall_s / parallel.wall_s if parallel.wall_s > 0 else None
    return {
        "phases": [sequential, parallel],
        "sequential": sequential,
        "parallel": parallel,
        "models_ran": models_ran,
        "speedup": speedup,
        "efficiency": speedup / models_ran if speedup is not None and models_ran else None,
    }


def _responses(
    rows: Sequence[Request],
    views: dict[int, Any],
    view: RunView,
    models: Sequence[ModelRecord],
    modes: Sequence[str],
    label: Label,
) -> list[dict[str, Any]]:
    """Every stored request grouped by prompt, then model; cold starts, then warm-ups first."""
    prompt_ids = [p.prompt_id for p in view.prompts]
    prompt_ids += sorted({r.prompt_id for r in rows} - set(prompt_ids))
    model_keys = [(m.model, m.host) for m in models]
    model_keys += sorted({(r.model, r.host) for r in rows} - set(model_keys))
    by_prompt = {p.prompt_id: p for p in view.prompts}
    groups = []
    for prompt_id in prompt_ids:
        of_prompt = [r for r in rows if r.prompt_id == prompt_id]
        if not of_prompt:
            continue
        per_model = []
        for model, host in model_keys:
            of_model = [r for r in of_prompt if (r.model, r.host) == (model, host)]
            if not of_model:
                continue
            of_model.sort(
                key=lambda r: (
                    modes.index(r.mode),
                    0 if r.is_cold else 1 if r.is_warmup else 2,
                    r.repetition,
                    r.seq,
                )
            )
            shown = [views[r.seq] for r in of_model]
            per_model.append({"label": label(of_model[0]), "rows": shown})
        groups.append(
            {"prompt_id": prompt_id, "prompt": by_prompt.get(prompt_id), "models": per_model}
        )
    return groups


def duration_s(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    if started_at is None or ended_at is None:
        return None
    return (ended_at - started_at).total_seconds()
