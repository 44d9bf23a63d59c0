"""The suites of the synthetic history: real suite texts, parsed by novabench itself.

Each suite's text, sha256, facts and manifest are what `novabench run` would store for it, so
every page and command reads the synthetic runs as it reads real ones. The SQL in
tests/scale/generate.py takes them as list parameters indexed by suite number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from novabench.config.reading import parse_suite
from novabench.storage.facts import run_facts

HOSTS = ("http://127.0.0.1:11434", "http://gpu-box.lan:11434")
HOURLY_LEVELS = (1, 2, 4, 8)
PAGE_LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)
SLOT_BASE_S = 1.0
SLOT_PER_STREAM_S = 0.04
MACHINE = "scale-synthetic"  # never this machine's hostname: no run is taken for abandoned
SYSTEM = {
    "os": "Linux 6.1",
    "machine": "x86_64",
    "cpu_model": "synthetic",
    "cpu_cores_physical": 8,
    "cpu_cores_logical": 16,
    "ram_bytes": 32 * 2**30,
    "python": "3.11.7",
    "python_implementation": "CPython",
    "hostname": MACHINE,
    "pid": 1,
    "gpus": [],
}
OPTIONS = {
    "options": {"temperature": 0, "seed": 42},
    "keep_alive": "5m",
    "timeout_s": 300.0,
    "connect_timeout_s": 10.0,
    "first_token_timeout_s": None,
}


@dataclass(frozen=True)
class SyntheticSuite:
    """One suite as the generator lays out its requests."""

    name: str
    models: tuple[str, ...]
    prompts: int
    modes: tuple[str, ...]
    levels: tuple[int, ...] = ()  # concurrency levels of a load suite
    requests_per_level: int = 0

    @property
    def is_load(self) -> bool:
        return bool(self.levels)

    def level_slots_s(self) -> list[float]:
        """How long one stream's request may take at each level (requests in a stream never
        overlap); tests/scale/generate.py keeps every request shorter than its level's slot."""
        return [SLOT_BASE_S + SLOT_PER_STREAM_S * level for level in self.levels] or [0.0]

    def level_starts(self) -> list[float]:
        """Each level's start, in seconds per measured request of the run (levels in turn)."""
        starts, total = [], 0.0
        for level, slot_s in zip(self.levels, self.level_slots_s(), strict=False):
            starts.append(total)
            total += slot_s / level / len(self.levels)
        return starts or [0.0]

    def text(self) -> str:
        prompts = "".join(
            f"  - id: p{n}\n    text: 'Prompt {n} of {self.name}: answer in one sentence.'\n"
            for n in range(1, self.prompts + 1)
        )
        lines = [
            f"name: {self.name}",
            f"description: Synthetic {self.name} suite of the scale benchmark.",
            f"models: [{', '.join(self.models)}]",
            "prompts:",
            prompts.rstrip("\n"),
            f"modes: [{', '.join(self.modes)}]",
            "warmup: 1",
            "options: {temperature: 0, seed: 42}",
        ]
        if self.is_load:
            levels = ", ".join(str(level) for level in self.levels)
            lines.append(
                f"load: {{concurrency: [{levels}], "
                f"requests_per_level: {max(1, self.requests_per_level)}, "
                "slo: {ttft_ms: 2000, itl_ms: 100}, early_stop: false}"
            )
        else:
            lines.append("repetitions: 3")
        return "\n".join(lines) + "\n"

    def stored(self) -> dict[str, Any]:
        """The run-level columns `novabench run` stores for this suite (JSON as text)."""
        text = self.text()
        suite = parse_suite(text, f"synthetic suite {self.name}")
        manifest = {
            "git": None,
            "repetitions": suite.repetitions,
            "cold_start": False,
            "sample_interval_s": suite.sample_interval_s,
            "load": suite.load.model_dump() if suite.load is not None else None,
            "server_warnings": [],
        }
        return {
            "name": suite.name,
            "text": text,
            "sha256": suite.sha256,
            "facts": json.dumps(run_facts(suite.facts()), default=str),
            "manifest": json.dumps(manifest, default=str),
        }


def history_suites(hourly_load_requests: int) -> list[SyntheticSuite]:
    """The hourly suites; the last one is a small load sweep (every load_every-th run)."""
    return [
        SyntheticSuite("chat", ("llama3.2:3b", "qwen2.5:7b"), 3, ("sequential", "parallel")),
        SyntheticSuite(
            "code", ("qwen2.5-coder:7b", "llama3.2:3b", "gemma3:4b"), 4, ("sequential",)
        ),
        SyntheticSuite("rag", ("gemma3:4b", "mistral:7b"), 2, ("sequential", "parallel")),
        SyntheticSuite(
            "load-hourly",
            ("llama3.2:3b",),
            3,
            ("load",),
            HOURLY_LEVELS,
            max(1, hourly_load_requests // len(HOURLY_LEVELS)),
        ),
    ]


def page_suite(requests: int) -> SyntheticSuite:
    """The one big load sweep whose run page the benchmark renders."""
    return SyntheticSuite(
        "load-scale",
        ("llama3.2:3b",),
        3,
        ("load",),
        PAGE_LEVELS,
        max(1, requests // len(PAGE_LEVELS)),
    )


def suite_params(suites: list[SyntheticSuite]) -> dict[str, Any]:
    """The suites as SQL list parameters, index s + 1 for suite number s."""
    stored = [suite.stored() for suite in suites]
    return {
        "names": [s["name"] for s in stored],
        "texts": [s["text"] for s in stored],
        "shas": [s["sha256"] for s in stored],
        "facts": [s["facts"] for s in stored],
        "manifests": [s["manifest"] for s in stored],
        "suite_models": [list(suite.models) for suite in suites],
        "suite_modes": [list(suite.modes) for suite in suites],
        "suite_prompts": [suite.prompts for suite in suites],
        "suite_levels": [[float(v) for v in suite.levels] or [0.0] for suite in suites],
        "suite_slots": [suite.level_slots_s() for suite in suites],
        "suite_level_starts": [suite.level_starts() for suite in suites],
        "suite_is_load": [suite.is_load for suite in suites],
        "hosts": list(HOSTS),
        "system": json.dumps(SYSTEM),
        "options": json.dumps(OPTIONS),
        "machine": MACHINE,
    }
