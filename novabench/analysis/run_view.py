"""A stored run read once into one view: what the report and the terminal both show of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from novabench.analysis.figures import with_figures
from novabench.analysis.statistics import summarize
from novabench.analysis.sweeps import limits_of, sweeps
from novabench.errors import RunPrunedError
from novabench.records import (
    LOAD_MODE,
    GroupSummary,
    LevelRecord,
    LevelSummary,
    ModelRecord,
    PhaseRecord,
    PromptRecord,
    RepetitionStop,
    Request,
    ResourceSample,
    RunRecord,
)
from novabench.storage.reads import Reads
from novabench.storage.store import Store

SweepKey = tuple[str, str]  # model, host


@dataclass(frozen=True)
class RunView:
    """Everything stored of one run, with each request's figures and each sweep's levels.

    The requests carry no texts (their response_text and thinking_text are ''): a run of
    100,000 requests would hold every answer in memory for the few a page lists; `with_texts`
    reads those.
    """

    run: RunRecord
    models: list[ModelRecord]
    prompts: list[PromptRecord]
    requests: list[Request]  # every stored request, in finishing order, with its figures
    phases: list[PhaseRecord]
    samples: list[ResourceSample]
    stops: list[RepetitionStop]
    levels: list[LevelRecord]
    sweeps: dict[SweepKey, list[LevelSummary]] = field(default_factory=dict)
    store: Reads | None = field(default=None, repr=False, compare=False)  # for with_texts

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def load_facts(self) -> dict[str, Any] | None:
        """The sweep's facts stored with the run (kind, levels, level size, SLOs), or None."""
        return (self.run.facts or {}).get("load")

    @property
    def slo_limits(self) -> dict[str, float]:
        return limits_of(self.load_facts)

    @property
    def mode_requests(self) -> list[Request]:
        """The requests the per-mode tables pool: a sweep's levels are no repetitions."""
        return [r for r in self.requests if r.mode != LOAD_MODE]

    def summaries(self, by_prompt: bool = False) -> list[GroupSummary]:
        """Per (mode, model, host[, prompt]) statistics of the measured, non-sweep requests."""
        return summarize(self.mode_requests, by_prompt=by_prompt)

    def with_texts(self, requests: Sequence[Request]) -> list[Request]:
        """The given requests of this run with their response and thinking texts."""
        if self.store is None or not requests:
            return list(requests)
        texts = self.store.texts(self.run_id, [r.seq for r in requests])
        return [
            replace(r, response_text=texts[r.seq][0], thinking_text=texts[r.seq][1])
            if r.seq in texts
            else r
            for r in requests
        ]

    def backend_of(self, model: str, host: str) -> str:
        """The engine that served a model ('ollama' for runs from before engines were stored)."""
        found = next((m for m in self.models if (m.model, m.host) == (model, host)), None)
        return (found.backend if found else None) or "ollama"


def read_run(store: Store, run_id: str) -> RunView:
    """One stored run, read once (RunNotFoundError for an unknown id)."""
    run = store.get_run(run_id)
    if run.pruned_at is not None:
        raise RunPrunedError(
            f"run {run_id}: its raw rows (requests, resource samples) were pruned on "
            f"{run.pruned_at:%Y-%m-%d %H:%M} UTC (novabench prune --keep-summaries), so its "
            "report cannot be made again; its summaries stay in history.html"
        )
    requests = with_figures(store.results_for_figures(run_id))
    samples = store.samples(run_id)
    levels = store.load_levels(run_id)
    load = (run.facts or {}).get("load")
    return RunView(
        run=run,
        models=store.models(run_id),
        prompts=store.prompts(run_id),
        requests=requests,
        phases=store.phases(run_id),
        samples=samples,
        stops=store.repetition_stops(run_id),
        levels=levels,
        sweeps=sweeps(levels, requests, limits_of(load), samples, load=load),
        store=store,
    )
