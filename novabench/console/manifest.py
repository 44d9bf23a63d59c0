"""A stored run's manifest as label and value pairs, for `novabench runs --show`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from novabench.records import ModelRecord, RunRecord


def manifest_lines(run: RunRecord, models: Sequence[ModelRecord]) -> list[tuple[str, str]]:
    """The manifest of a stored run as (label, value) pairs, for `novabench runs --show`."""
    system = run.system or {}
    manifest = run.manifest or {}
    git = manifest.get("git") or {}
    options = run.options or {}
    lines = [
        ("run", run.run_id),
        ("status", run.status),
        ("started (UTC)", f"{run.started_at:%Y-%m-%d %H:%M:%S}"),
        ("ended (UTC)", f"{run.ended_at:%Y-%m-%d %H:%M:%S}" if run.ended_at else "—"),
        ("suite", f"{run.suite_name} ({run.get('suite_path') or 'no file'})"),
        ("suite sha256", run["suite_sha256"]),
        (
            "suite git",
            f"{git['commit'][:12]}{' dirty' if git.get('dirty') else ''}"
            f"{' (suite file changed)' if git.get('suite_file_changed') else ''}"
            if git
            else "not in a git repository",
        ),
        ("novabench", run.novabench_version),
        ("host", run.host),
        ("ollama", run.ollama_version or "—"),
        ("modes", ", ".join(run.modes)),
        *(
            [("repetitions", str(manifest.get("repetitions", run.repetitions)))]
            if set(run.modes) - {"load"}
            else []
        ),
        ("warm-up", str(run.warmup)),
        ("cold start", "yes" if manifest.get("cold_start") else "no"),
        *_load_lines((run.facts or {}).get("load")),
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
            "found" if model.found else "NOT FOUND",
            f"digest {model.digest[:12]}" if model.digest else "",
            model.quantization or "",
            model.parameter_size or "",
            f"ctx {model.context_length}" if model.context_length else "",
            f"options {_compact(model.get('options') or {})}",
        ]
        lines.append((f"model {model.model}", ", ".join(p for p in parts if p)))
    return lines


def _compact(value: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, {}, []))


def _load_lines(load: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The load sweep's settings, when the run had one."""
    if not load:
        return []
    levels = ", ".join(f"{v:g}" for v in load["levels"])
    slo = ", ".join(f"{k}≤{v:g}" for k, v in (load.get("slo") or {}).items())
    stop = "on" if load["early_stop"] else "off"
    text = f"{load['kind']} [{levels}], {load['level_size']}, early stop {stop}"
    return [("load", text + (f", SLO {slo}" if slo else ""))]
