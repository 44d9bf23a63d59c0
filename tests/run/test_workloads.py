"""The workload interface: a new kind plugs into the runner and gets what every workload gets;
each built-in workload sends what it plans; the repetition rule stops where it says."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from novabench import Store, load_suite
from novabench.config.reading import parse_suite
from novabench.config.suite import Suite
from novabench.records import RepetitionStop, RequestResult
from novabench.run.runner import NullObserver, SuiteRunner
from novabench.run.workloads import (
    LoadSweep,
    Parallel,
    Sequential,
    Workload,
    WorkloadContext,
    WorkloadOutcome,
    workloads_of,
)
from novabench.run.workloads.repetitions import RepetitionRule
from tests.conftest import write_suite
from tests.ollama_double import OllamaDouble


class Recorder(NullObserver):
    """Keeps the plan, the order requests start in and the phases finished."""

    def __init__(self) -> None:
        self.plan: dict[tuple[str, str], int | None] = {}
        self.started: list[tuple[str, str, str, bool]] = []
        self.phases: list[str] = []

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        self.plan = dict(plan)

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        self.started.append((mode, model, prompt_id, is_warmup))

    def phase_finished(self, mode: str, wall_s: float) -> None:
        self.phases.append(mode)


class Burst(Workload):
    """A kind of workload the runner has never heard of: every prompt to every model at once,
    `rounds` times, each row tagged with its round."""

    mode = "burst"
    rounds = 2

    def __init__(self, suite: Suite) -> None:
        super().__init__(suite)
        self.contexts: list[WorkloadContext] = []
        self.offsets_s: list[float] = []

    def planned(self) -> int:
        return self.rounds * len(self.prompts)

    async def run(self, ctx: WorkloadContext) -> WorkloadOutcome:
        self.contexts.append(ctx)
        self.offsets_s.append(ctx.now_offset_s())
        results: list[RequestResult] = []
        for number in range(self.rounds):
            sends = [
                ctx.send(target, prompt, number, load_level=number)
                for target in ctx.targets
                for prompt in self.prompts
            ]
            results += await asyncio.gather(*sends)
        self.offsets_s.append(ctx.now_offset_s())
        stop = RepetitionStop(
            mode=ctx.mode,
            model=ctx.targets[0].spec.name,
            host=ctx.targets[0].host,
            prompt_id=self.prompts[0].id,
            repetitions=self.rounds,
            reason="fixed",
            ci_half_width_ratio=None,
        )
        return WorkloadOutcome(len(results), [stop])


def _run(runner: SuiteRunner) -> str:
    outcome = asyncio.run(runner.run())
    return outcome.run_id


def test_a_new_workload_gets_the_plan_failed_rows_cold_start_warmup_and_phase(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s.yaml", ollama.url, models="[llama3.2, nope]", warmup=2)
    )
    store = Store(tmp_path / "db.duckdb")
    burst, observer = Burst(suite), Recorder()
    runner = SuiteRunner(suite, store, observer, cold_start=True, workloads=[burst])
    run_id = _run(runner)

    assert runner.outcome is not None and runner.outcome.status == "complete"
    # 2 rounds x 2 prompts, 2 warm-ups, 1 cold start; the missing model: one failed row a prompt
    assert observer.plan == {("burst", "llama3.2"): 7, ("burst", "nope"): 2}
    rows = store.results(run_id)
    assert {r["mode"] for r in rows} == {"burst"}
    llama = sorted((r for r in rows if r["model"] == "llama3.2"), key=lambda r: r["seq"])
    assert len(llama) == observer.plan[("burst", "llama3.2")]
    assert [(r["is_cold"], r["is_warmup"], r["prompt_id"]) for r in llama[:3]] == [
        (True, False, "p1"),
        (False, True, "p1"),
        (False, True, "p1"),
    ]
    measured = llama[3:]
    assert all(r["error"] is None and not r["is_warmup"] for r in measured)
    assert sorted((r["repetition"], r["load_level"], r["prompt_id"]) for r in measured) == [
        (0, 0, "p1"),
        (0, 0, "p2"),
        (1, 1, "p1"),
        (1, 1, "p2"),
    ]
    missing = [r for r in rows if r["model"] == "nope"]
    assert sorted(r["prompt_id"] for r in missing) == ["p1", "p2"]
    assert {r["error"] for r in missing} == {f"model 'nope' not found on {ollama.url}"}
    # cold start and warm-up go before the workload's first request
    assert [s[3] for s in observer.started] == [True, True, True, False, False, False, False]
    # the workload saw only the model it can send to, and the run's clock moving
    (ctx,) = burst.contexts
    assert ctx.mode == "burst" and [t.spec.name for t in ctx.targets] == ["llama3.2"]
    assert 0 < burst.offsets_s[0] < burst.offsets_s[1]
    # the phase row, its event, the closing record and the run row are the workload's
    (phase,) = store.phases(run_id)
    assert (phase["mode"], phase["requests"]) == ("burst", 4)
    assert observer.phases == ["burst"]
    (stop,) = store.repetition_stops(run_id)
    assert (stop["mode"], stop["model"], stop["repetitions"]) == ("burst", "llama3.2", 2)
    assert store.get_run(run_id)["modes"] == ["burst"]


class Interrupted(Burst):
    """Sends one round, then is interrupted as Ctrl-C interrupts a run (its task cancelled)."""

    mode = "interrupted"

    async def run(self, ctx: WorkloadContext) -> WorkloadOutcome:
        await asyncio.gather(*(ctx.send(t, self.prompts[0], 0) for t in ctx.targets))
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(60)
        never = RepetitionStop("sequential", "m", "h", "p1", 1, "fixed", None)
        return WorkloadOutcome(1, [never])


def test_an_interrupted_workload_keeps_its_requests_and_the_run_ends_interrupted(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, warmup=0))
    store = Store(tmp_path / "db.duckdb")
    runner = SuiteRunner(suite, store, workloads=[Interrupted(suite)])
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(runner.run())
    assert runner.outcome is not None
    run_id = runner.outcome.run_id
    assert store.get_run(run_id)["status"] == "interrupted"
    rows = store.results(run_id)
    assert sorted((r["mode"], r["model"]) for r in rows) == [
        ("interrupted", "llama3.2"),
        ("interrupted", "nemotron-mini"),
    ]
    assert store.phases(run_id) == [] and store.repetition_stops(run_id) == []


LOAD_CONCURRENCY = "{concurrency: [1, 3], requests_per_level: 6, early_stop: false}"
LOAD_RATE = "{rate: [40, 80], requests_per_level: 8, early_stop: false, prompts: [q]}"


@pytest.mark.parametrize(
    ("mode", "load"),
    [
        ("sequential", None),
        ("parallel", None),
        ("load", LOAD_CONCURRENCY),
        ("load", LOAD_RATE),
    ],
)
def test_each_workload_sends_what_it_plans(
    mode: str, load: str | None, ollama: OllamaDouble, tmp_path: Path
) -> None:
    path = write_suite(
        tmp_path / "s.yaml",
        ollama.url,
        models="[llama3.2, nemotron-mini, nope]",
        prompts='["Hi.", {id: q, text: "What?"}]',
        modes=f"[{mode}]",
        load=load,
        sample_interval_s=0,
    )
    suite = load_suite(path)
    store, observer = Store(tmp_path / "db.duckdb"), Recorder()
    run_id = _run(SuiteRunner(suite, store, observer))
    rows = store.results(run_id)
    for model in ("llama3.2", "nemotron-mini", "nope"):
        sent = [r for r in rows if r["model"] == model]
        assert len(sent) == observer.plan[(mode, model)], model
    (workload,) = workloads_of(suite)
    measured = [r for r in rows if r["model"] == "llama3.2" and not r["is_warmup"]]
    assert len(measured) == workload.planned()
    assert {r["prompt_id"] for r in measured} == {p.id for p in workload.prompts}
    failed = sorted((r["prompt_id"], r["repetition"]) for r in rows if r["model"] == "nope")
    assert failed == sorted((p.id, rep) for p, rep in workload.unavailable_rows())
    (phase,) = store.phases(run_id)
    assert phase["requests"] == 2 * workload.planned()


def _suite(**keys: Any) -> Suite:
    text = {
        "name": "w",
        "host": "http://127.0.0.1:1",
        "models": "[a, b, c]",
        "prompts": '["Hi.", {id: q, text: "What?"}]',
        **keys,
    }
    return parse_suite("".join(f"{k}: {v}\n" for k, v in text.items()))


def test_workloads_follow_the_suite_modes_and_size_the_connection_pools() -> None:
    suite = _suite(modes="[parallel, load, sequential]", load="{concurrency: [2, 16]}")
    workloads = workloads_of(suite)
    assert [type(w) for w in workloads] == [Parallel, LoadSweep, Sequential]
    assert [w.max_in_flight() for w in workloads] == [3, 16, 1]
    rate = workloads_of(_suite(modes="[load]", load="{rate: [1, 2], max_in_flight: 40}"))
    assert rate[0].max_in_flight() == 40


def test_plans_and_failed_rows_of_each_workload() -> None:
    repeated = Sequential(_suite(repetitions="auto", min_repetitions=2, max_repetitions=4))
    assert repeated.planned() == 2 * 4
    assert [(p.id, rep) for p, rep in repeated.unavailable_rows()] == [
        ("p1", 0),
        ("p1", 1),
        ("p1", 2),
        ("p1", 3),
        ("q", 0),
        ("q", 1),
        ("q", 2),
        ("q", 3),
    ]
    # requests_at: 4 per stream, at least 8 (8 + 12); one failed row per load prompt
    sweep = LoadSweep(_suite(modes="[load]", load="{concurrency: [1, 3], prompts: [q]}"))
    assert sweep.planned() == 20
    assert [(p.id, rep) for p, rep in sweep.unavailable_rows()] == [("q", 0)]
    timed = LoadSweep(_suite(modes="[load]", load="{concurrency: [1], duration_s: 2}"))
    assert timed.planned() is None


def test_the_repetition_rule_stops_at_its_count_its_target_or_its_cap() -> None:
    fixed = RepetitionRule.of(_suite(repetitions=3))
    assert (fixed.cap, fixed.describe()) == (3, 3)
    assert [fixed.stop_reason(n, []) for n in (1, 2, 3)] == [None, None, "fixed"]
    auto = RepetitionRule.of(
        _suite(repetitions="auto", min_repetitions=3, max_repetitions=5, target_cv=0.1)
    )
    assert auto.cap == 5
    assert auto.describe() == "auto (3..5, target ±10.0% on e2e_ms)"
    assert auto.stop_reason(2, [0.01, 0.01]) is None  # precise, but fewer than min_repetitions
    assert auto.stop_reason(3, [0.01, 0.1]) == "target_reached"
    assert auto.stop_reason(3, [0.01, 0.2]) is None  # every model of the group must be precise
    assert auto.stop_reason(4, [0.01, None]) is None  # a figure not known yet is not precise
    assert auto.stop_reason(5, [0.01, 0.2]) == "max_repetitions"
