"""A stored run's manifest as label and value pairs, for `novabench runs --show`."""

from __future__ import annotations

from typing import Any

from novabench.config.workload import stored_load_spec


def manifest_lines(run: dict[str, Any], models: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The manifest of a stored run as (label, value) pairs, for `novabench runs --show`."""
    system = run.get("system") or {}
    manifest = run.get("manifest") or {}
    git = manifest.get("git") or {}
    options = run.get("options") or {}
    lines = [
        ("run", run["run_id"]),
        ("status", run["status"]),
        ("started (UTC)", f"{run['started_at']:%Y-%m-%d %H:%M:%S}"),
        ("ended (UTC)", f"{run['ended_at']:%Y-%m-%d %H:%M:%S}" if run.get("ended_at") else "—"),
        ("suite", f"{run['suite_name']} ({run.get('suite_path') or 'no file'})"),
        ("suite sha256", run["suite_sha256"]),
        (
            "suite git",
            f"{git['commit'][:12]}{' dirty' if git.get('dirty') else ''}"
            f"{' (suite file changed)' if git.get('suite_file_changed') else ''}"
            if git
            else "not in a git repository",
        ),
        ("novabench", run["novabench_version"]),
        ("host", run["host"]),
        ("ollama", run.get("ollama_version") or "—"),
        ("modes", ", ".join(run["modes"])),
        *(
            [("repetitions", str(manifest.get("repetitions", run["repetitions"])))]
            if set(run["modes"]) - {"load"}
            else []
        ),
        ("warm-up", str(run["warmup"])),
        ("cold start", "yes" if manifest.get("cold_start") else "no"),
        *_load_lines(manifest.get("load")),
        ("options", _compact(options)),
        ("os", f"{system.get('os', '—')} ({system.get('machine', '')})"),
        ("cpu", f"{system.get('cpu_model', '—')}"),
        (
            "cores",
            f"{system.get('cpu_cores_physical')} physical, {system.get('cpu_cores_logical')} "
            "logical",
        ),
        ("ram", f"{(system.get('ram_bytes') or 0) / 2**30:.1f} GiB"),
        ("python", system.get("python", "—")),
        ("hostname", system.get("hostname", "—")),
    ]
    for gpu in system.get("gpus") or []:
        lines.append(("gpu", _compact(gpu)))
    for model in models:
        parts = [
            "found" if model["found"] else "NOT FOUND",
            f"digest {model['digest'][:12]}" if model.get("digest") else "",
            model.get("quantization") or "",
            model.get("parameter_size") or "",
            f"ctx {model['context_length']}" if model.get("context_length") else "",
            f"options {_compact(model.get('options') or {})}",
        ]
        lines.append((f"model {model['model']}", ", ".join(p for p in parts if p)))
    return lines


def _compact(value: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, {}, []))


def _load_lines(load: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The load sweep's settings, when the run had one."""
    spec = stored_load_spec(load)
    if spec is None:
        return []
    levels = ", ".join(f"{v:g}" for v in spec.levels)
    slo = ", ".join(f"{k}≤{v:g}" for k, v in spec.slo_limits().items())
    stop = "on" if spec.early_stop else "off"
    text = f"{spec.kind} [{levels}], {spec.level_size()}, early stop {stop}"
    return [("load", text + (f", SLO {slo}" if slo else ""))]
