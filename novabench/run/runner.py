"""Run a suite: warm-up, modes, repetitions; store every result as it finishes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from novabench.analysis.figures import derive
from novabench.analysis.statistics import ci_half_width_ratio
from novabench.config.suite import ModelSpec, PromptSpec, Suite
from novabench.engines import (
    Backend,
    CallLimits,
    ChatRequest,
    ModelInfo,
    make_backend,
    unsent_options,
)
from novabench.engines.storable import make_storable
from novabench.errors import (
    HostUnreachableError,
    RequestError,
    ServerAnswerError,
    StorageFailure,
)
from novabench.records import LevelRecord, LevelSummary, RequestResult
from novabench.run.checker import CheckWorker
from novabench.run.machine import system_info
from novabench.run.provenance import git_info
from novabench.run.resources import ResourceSampler
from novabench.run.sink import ResultSink
from novabench.run.sweep import sweep
from novabench.storage.facts import run_facts
from novabench.storage.store import Store, utcnow
from novabench.version import __version__


class RunObserver(Protocol):
    """Receives progress events (the live display, log lines, or nothing)."""

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None: ...

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None: ...

    def text_received(self, mode: str, model: str, piece: str) -> None: ...

    def request_finished(self, result: RequestResult) -> None: ...

    def phase_finished(self, mode: str, wall_s: float) -> None: ...

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None: ...

    def server_warning(self, message: str) -> None:
        """A server answer cost a fact (show info, loaded size) but not the run."""


class NullObserver:
    """Observes nothing: the default for library use."""

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int | None]) -> None:
        pass

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        pass

    def text_received(self, mode: str, model: str, piece: str) -> None:
        pass

    def request_finished(self, result: RequestResult) -> None:
        pass

    def phase_finished(self, mode: str, wall_s: float) -> None:
        pass

    def level_finished(self, model: str, host: str, summary: LevelSummary) -> None:
        pass

    def server_warning(self, message: str) -> None:
        pass


@dataclass
class RunOutcome:
    """What a finished (or stopped) run produced."""

    run_id: str
    status: str
    db_path: Path
    results: list[RequestResult] = field(default_factory=list)
    wall_s_by_mode: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[RequestResult]:
        return [r for r in self.results if not r.ok]

    @property
    def speedup(self) -> float | None:
        """Sequential wall time over parallel wall time, when both modes ran."""
        parallel = self.wall_s_by_mode.get("parallel")
        sequential = self.wall_s_by_mode.get("sequential")
        return sequential / parallel if parallel and sequential else None

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.status != "complete" else 0


@dataclass
class _Target:
    """One model entry of the suite, resolved against its host."""

    spec: ModelSpec
    kind: str  # the engine: ollama, openai, llamacpp
    host: str
    engine_model: str  # the model id the engine is asked for
    options: dict[str, object]
    info: ModelInfo | None
    unavailable: str | None  # why no request can be sent, or None
    show: dict[str, Any] | None = None  # what /api/show says


def new_run_id() -> str:
    """Sortable, readable and safe as a file name: 20261127T104500Z-3fa1."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


class SuiteRunner:
    """Runs one suite once against its hosts, writing to one store."""

    def __init__(
        self,
        suite: Suite,
        store: Store,
        observer: RunObserver | None = None,
        cold_start: bool | None = None,
    ) -> None:
        self.suite = suite
        self.store = store
        self.observer: RunObserver = observer or NullObserver()
        self.cold_start = suite.cold_start if cold_start is None else cold_start
        self._backends: dict[tuple[str, str], Backend] = {}
        self._t0 = 0.0
        self._checked_loaded: set[tuple[str, str]] = set()
        # Checks run off the event loop, where other streams' token times are being taken.
        self._checker = CheckWorker()
        # Server answers that cost a fact, not the run; those from before the run row is
        # written (/api/show) are stored in its manifest.
        self.server_warnings: list[str] = []
        # The run so far: set once the run row exists, so an interrupted run can be reported.
        self.outcome: RunOutcome | None = None

    async def run(self) -> RunOutcome:
        suite = self.suite
        endpoints = sorted({(suite.backend_for(m), suite.host_for(m)) for m in suite.models})
        max_streams = max(64, 4 * len(suite.models), self._max_load_streams)
        limits = CallLimits(suite.timeout_s, suite.connect_timeout_s)
        self._backends = {
            (kind, host): make_backend(kind, host, max_streams, self._api_key(kind, host), limits)
            for kind, host in endpoints
        }
        hosts = sorted({host for kind, host in endpoints if host.startswith("http")})
        try:
            versions, targets = await self._preflight(endpoints)
            if self.store.path.exists():
                self.store.check_health()  # a damaged file is refused before a run is added
            run_id = new_run_id()
            self._create_run(run_id, versions, targets)
            return await self._run_created(run_id, targets, hosts)
        finally:
            self._checker.close()
            await asyncio.gather(*(b.aclose() for b in self._backends.values()))

    async def _run_created(
        self, run_id: str, targets: list[_Target], hosts: list[str]
    ) -> RunOutcome:
        """The run once its row exists: the modes, then the run's end, whatever stops it."""
        loop = asyncio.get_running_loop()
        modes = asyncio.current_task()
        running = [True]  # while the modes run, a storage failure stops them

        def stop_modes() -> None:
            if running[0] and modes is not None:
                modes.cancel()

        def storage_failed(failure: StorageFailure) -> None:  # from the sink's threads
            loop.call_soon_threadsafe(stop_modes)

        sink = ResultSink(self.store, run_id, on_failure=storage_failed)
        outcome = RunOutcome(run_id, "running", self.store.path)
        self.outcome = outcome
        self._t0 = time.perf_counter()
        sampler = self._sampler(hosts, sink)
        try:
            await self._run_modes(run_id, targets, sink, outcome)
            outcome.status = "complete"
        except (asyncio.CancelledError, KeyboardInterrupt):
            outcome.status = "aborted" if sink.failure is not None else "interrupted"
            if sink.failure is None:
                raise
            if modes is not None:
                modes.uncancel()  # the stop was ours: the run ends below, as a storage failure
        except BaseException:
            outcome.status = "aborted"
            raise
        finally:
            running[0] = False
            if sampler is not None:
                sampler.stop()
            outcome.results = sink.results
            sink.record("finish_run", status=outcome.status, ended_at=utcnow())
            await self._end_sink(sink)
        return outcome

    async def _end_sink(self, sink: ResultSink) -> None:
        """Wait for the store to hold everything; after a storage failure, spill and raise."""
        with contextlib.suppress(StorageFailure):
            await asyncio.shield(sink.flush())
        if sink.failure is None:
            sink.close()
            return
        path, count = await asyncio.to_thread(sink.spill)
        if path is None:
            where = f"no spill file could be written ({sink.spill_error})"
            raise StorageFailure(f"{sink.failure}; the run stopped; {where}") from None
        raise StorageFailure(
            f"{sink.failure}; the run stopped; {count} results the database does not hold "
            f"are in {path}: 'novabench import {path}' adds them once it can be written"
        ) from None

    def _sampler(self, hosts: list[str], sink: ResultSink) -> ResourceSampler | None:
        """Start sampling resources for the run's lifetime (None when the suite turns it off)."""
        if not self.suite.sample_interval_s:
            return None
        sampler = ResourceSampler(
            interval_s=self.suite.sample_interval_s,
            server_hosts=hosts,
            t0=self._t0,
            on_sample=sink.add_sample,
        )
        sampler.start()
        return sampler

    def _api_key(self, kind: str, host: str) -> str | None:
        """The API key of an endpoint, from the environment variable its models name."""
        for spec in self.suite.models:
            variable = self.suite.api_key_env_for(spec)
            same = (self.suite.backend_for(spec), self.suite.host_for(spec)) == (kind, host)
            if same and variable:
                return os.environ.get(variable)
        return None

    async def _preflight(
        self, endpoints: list[tuple[str, str]]
    ) -> tuple[dict[str, str | None], list[_Target]]:
        """Ask every engine for its version and models; refuse to start if none answers.

        A host that cannot be reached, or whose version or model list is not what its engine
        answers, is unusable: its models fail their rows with the reason.
        """

        async def probe(
            endpoint: tuple[str, str],
        ) -> tuple[str, dict[str, ModelInfo]] | HostUnreachableError | ServerAnswerError:
            backend = self._backends[endpoint]
            try:
                return await backend.version(), await backend.list_models()
            except (HostUnreachableError, ServerAnswerError) as exc:
                return exc

        found = await asyncio.gather(*(probe(e) for e in endpoints))
        answers = dict(zip(endpoints, found, strict=True))
        unusable = [a for a in answers.values() if isinstance(a, Exception)]
        if len(unusable) == len(endpoints):
            raise unusable[0]
        versions: dict[str, str | None] = {}
        targets = []
        for spec in self.suite.models:
            kind, host = self.suite.backend_for(spec), self.suite.host_for(spec)
            engine_model = self.suite.engine_model(spec)
            answer = answers[(kind, host)]
            options = self.suite.options_for(spec)
            target = _Target(spec, kind, host, engine_model, options, None, None)
            targets.append(target)
            if isinstance(answer, Exception):
                versions.setdefault(host, None)
                target.unavailable = _unusable_reason(kind, answer)
                continue
            if kind == "ollama" or versions.get(host) is None:  # Ollama's own /v1 says less
                versions[host] = answer[0]
            target.info = answer[1].get(self._backends[(kind, host)].model_key(engine_model))
            if target.info is None:
                target.unavailable = f"model {engine_model!r} not found on {host}"
            variable = self.suite.api_key_env_for(spec)
            if variable and not os.environ.get(variable):
                target.unavailable = f"environment variable {variable} (api_key_env) is not set"
        await asyncio.gather(*(self._show(t) for t in targets if t.unavailable is None))
        return versions, targets

    def _backend(self, target: _Target) -> Backend:
        return self._backends[(target.kind, target.host)]

    async def _show(self, target: _Target) -> None:
        """What /api/show says of a target; a failure leaves it empty and the run goes on."""
        try:
            target.show = await self._backend(target).show(target.engine_model)
        except (RequestError, HostUnreachableError) as exc:
            target.show = None
            self._warn(f"{exc} ({target.spec.name}: no show info kept; the run goes on)")

    def _warn(self, message: str) -> None:
        """A server problem that costs a fact, not the run: told to the observer, and kept for
        the run's manifest when it comes before the run row is written (/api/show)."""
        self.server_warnings.append(message)
        self.observer.server_warning(message)

    def _create_run(
        self, run_id: str, versions: dict[str, str | None], targets: list[_Target]
    ) -> None:
        suite = self.suite
        system = system_info()
        repetitions = (
            suite.repetitions
            if isinstance(suite.repetitions, int)
            else f"auto ({suite.min_repetitions}..{suite.max_repetitions}, target "
            f"±{suite.target_cv:.1%} on {suite.target_metric})"
        )
        self.store.create_run(
            {
                "run_id": run_id,
                "started_at": utcnow(),
                "status": "running",
                "suite_name": suite.name,
                "suite_path": str(suite.path) if suite.path else None,
                "suite_text": suite.text,
                "suite_sha256": suite.sha256,
                "host": suite.host,
                "ollama_version": versions.get(suite.host)
                or next((v for v in versions.values() if v), None),
                "host_versions": versions,
                "novabench_version": __version__,
                "modes": list(suite.modes),
                "repetitions": self._max_repetitions,
                "warmup": suite.warmup,
                "options": {
                    "options": suite.options.to_request(),
                    "keep_alive": suite.keep_alive,
                    "timeout_s": suite.timeout_s,
                    "connect_timeout_s": suite.connect_timeout_s,
                    "first_token_timeout_s": suite.first_token_timeout_s,
                },
                "system": system,
                "hostname": system["hostname"],
                "pid": os.getpid(),
                "facts": run_facts(suite.facts()),
                "manifest": {
                    "git": git_info(suite.path),
                    "repetitions": repetitions,
                    "cold_start": self.cold_start,
                    "sample_interval_s": suite.sample_interval_s,
                    "load": suite.load.model_dump() if suite.load else None,
                    "server_warnings": list(self.server_warnings),
                },
                "models": [
                    {
                        "model": t.spec.name,
                        "host": t.host,
                        "found": t.info is not None,
                        "digest": t.info.digest if t.info else None,
                        "size_bytes": t.info.size_bytes if t.info else None,
                        "family": t.info.family if t.info else None,
                        "parameter_size": t.info.parameter_size if t.info else None,
                        "quantization": t.info.quantization if t.info else None,
                        "options": t.options,
                        "backend": t.kind,
                        "engine_model": t.engine_model,
                        "context_length": (t.show or {}).get("context_length"),
                        "show_info": t.show,
                        "unsent_options": unsent_options(t.kind, t.options),
                    }
                    for t in targets
                ],
                "prompts": [
                    {"prompt_id": p.id, "text": p.text, "system": p.system} for p in suite.prompts
                ],
            }
        )

    @property
    def _max_load_streams(self) -> int:
        """The most requests a load sweep has in flight at once on one host."""
        load = self.suite.load
        if load is None or "load" not in self.suite.modes:
            return 0
        return int(max(load.levels)) if load.kind == "concurrency" else load.max_in_flight

    def _planned(self, mode: str) -> int | None:
        """Measured requests per model in a mode; None when a load level lasts a duration."""
        load = self.suite.load
        if mode != "load" or load is None:
            return len(self.suite.prompts) * self._max_repetitions
        counts = [load.requests_at(level) for level in load.levels]
        return None if None in counts else sum(c for c in counts if c is not None)

    @property
    def _max_repetitions(self) -> int:
        reps = self.suite.repetitions
        return reps if isinstance(reps, int) else self.suite.max_repetitions

    async def _run_modes(
        self, run_id: str, targets: list[_Target], sink: ResultSink, outcome: RunOutcome
    ) -> None:
        suite = self.suite
        ready = [t for t in targets if t.unavailable is None]
        plan: dict[tuple[str, str], int | None] = {}
        for mode in suite.modes:
            planned = self._planned(mode)
            for t in targets:
                extra = 0 if t.unavailable else suite.warmup
                if self.cold_start and t.unavailable is None and mode == suite.modes[0]:
                    extra += 1
                if mode == "load" and t.unavailable:
                    planned_here: int | None = len(suite.load_prompts())
                else:
                    planned_here = None if planned is None else planned + extra
                plan[(mode, t.spec.name)] = planned_here
        self.observer.run_started(run_id, plan)
        stops: list[dict[str, object]] = []
        for mode in suite.modes:
            for target in targets:
                if target.unavailable is not None:
                    prompts = suite.load_prompts() if mode == "load" else suite.prompts
                    for prompt in prompts:
                        for rep in range(1 if mode == "load" else self._max_repetitions):
                            sink.submit(self._failed(mode, target, prompt, rep))
                            if rep % 256 == 255:
                                await asyncio.sleep(0)  # signals and the sink get their turn
            if self.cold_start and mode == suite.modes[0]:
                for target in ready:
                    await self._cold_request(mode, target, sink)
            for target in ready:
                for rep in range(suite.warmup):
                    await self._request(mode, target, suite.prompts[0], rep, sink, is_warmup=True)
            phase_started_at = utcnow()
            phase_t0 = time.perf_counter()
            requests = 0
            if mode == "load":
                requests = await self._load(run_id, ready, sink)
            elif mode == "sequential":
                for target in ready:
                    for prompt in suite.prompts:
                        requests += await self._repeat(mode, [target], prompt, sink, stops)
            else:
                for prompt in suite.prompts:
                    requests += await self._repeat(mode, ready, prompt, sink, stops)
            wall_s = time.perf_counter() - phase_t0
            if ready:
                outcome.wall_s_by_mode[mode] = wall_s
                sink.record(
                    "phase",
                    mode=mode,
                    started_at=phase_started_at,
                    wall_s=wall_s,
                    requests=requests,
                )
            self.observer.phase_finished(mode, wall_s)
        for stop in stops:
            sink.record("repetition_stop", **stop)

    async def _repeat(
        self,
        mode: str,
        group: list[_Target],
        prompt: PromptSpec,
        sink: ResultSink,
        stops: list[dict[str, object]],
    ) -> int:
        """Repeat one prompt on a group of models (all at once in parallel mode) until done.

        A fixed count stops at that count; `repetitions: auto` stops once the median of the
        target figure is known to within target_cv for every model of the group, or at the cap.
        Returns how many requests were sent.
        """
        suite = self.suite
        auto = not isinstance(suite.repetitions, int)
        rep = 0
        while True:
            await asyncio.gather(*(self._request(mode, t, prompt, rep, sink) for t in group))
            rep += 1
            ratios = {t.spec.name: self._precision(sink, mode, t, prompt) for t in group}
            if not auto:
                if rep >= self._max_repetitions:
                    reason = "fixed"
                    break
                continue
            if rep >= suite.min_repetitions and all(
                r is not None and r <= suite.target_cv for r in ratios.values()
            ):
                reason = "target_reached"
                break
            if rep >= suite.max_repetitions:
                reason = "max_repetitions"
                break
        for target in group:
            stops.append(
                {
                    "mode": mode,
                    "model": target.spec.name,
                    "host": target.host,
                    "prompt_id": prompt.id,
                    "repetitions": rep,
                    "reason": reason,
                    "ci_half_width_ratio": ratios[target.spec.name],
                }
            )
        return rep * len(group)

    def _precision(
        self, sink: ResultSink, mode: str, target: _Target, prompt: PromptSpec
    ) -> float | None:
        values = [
            getattr(derive(r), self.suite.target_metric)
            for r in sink.results
            if r.ok
            and not r.is_warmup
            and not r.is_cold
            and r.mode == mode
            and r.model == target.spec.name
            and r.host == target.host
            and r.prompt_id == prompt.id
        ]
        return ci_half_width_ratio(values)

    async def _cold_request(self, mode: str, target: _Target, sink: ResultSink) -> None:
        """Unload the model, then time the request that has to load it again."""
        try:
            await self._backend(target).unload(target.engine_model)
        except RequestError as exc:
            result = self._new_result(mode, target, self.suite.prompts[0], 0, is_cold=True)
            result.error = f"could not unload before the cold start: {exc}"
            sink.submit(result)
            self.observer.request_finished(result)
            return
        await self._request(mode, target, self.suite.prompts[0], 0, sink, is_cold=True)

    def _new_result(
        self,
        mode: str,
        target: _Target,
        prompt: PromptSpec,
        repetition: int,
        is_warmup: bool = False,
        is_cold: bool = False,
    ) -> RequestResult:
        return RequestResult(
            mode=mode,
            model=target.spec.name,
            host=target.host,
            prompt_id=prompt.id,
            repetition=repetition,
            is_warmup=is_warmup,
            is_cold=is_cold,
            backend=target.kind,
            started_at=utcnow(),
            start_offset_s=time.perf_counter() - self._t0,
        )

    def _failed(
        self, mode: str, target: _Target, prompt: PromptSpec, repetition: int
    ) -> RequestResult:
        result = self._new_result(mode, target, prompt, repetition)
        result.error = target.unavailable
        self.observer.request_finished(result)
        return result

    async def _request(
        self,
        mode: str,
        target: _Target,
        prompt: PromptSpec,
        repetition: int,
        sink: ResultSink,
        is_warmup: bool = False,
        is_cold: bool = False,
        load_level: int | None = None,
    ) -> RequestResult:
        messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
        messages.append({"role": "user", "content": prompt.text})
        request = ChatRequest(
            model=target.engine_model,
            messages=messages,
            options=target.options,
            keep_alive=self.suite.keep_alive,
            timeout_s=self.suite.timeout_s,
            connect_timeout_s=self.suite.connect_timeout_s,
            first_token_timeout_s=self.suite.first_token_timeout_s,
        )
        result = self._new_result(mode, target, prompt, repetition, is_warmup, is_cold)
        result.load_level = load_level
        name = target.spec.name
        self.observer.request_started(mode, name, prompt.id, is_warmup or is_cold)
        await self._backend(target).chat(
            request, result, lambda piece: self.observer.text_received(mode, name, piece)
        )
        make_storable(result)  # what the engine recorded, held to what the store can keep
        checks = self.suite.checks_for(prompt)
        if checks is not None and result.ok:
            try:
                result.checks = await self._checker.evaluate(checks, result.response_text)
            except asyncio.CancelledError:
                sink.submit(result)  # interrupted while checking: the timed answer is kept
                raise
        sink.submit(result)
        self.observer.request_finished(result)
        if result.ok and (target.host, name) not in self._checked_loaded:
            self._checked_loaded.add((target.host, name))
            await self._record_loaded(sink, target)
        return result

    async def _load(self, run_id: str, ready: list[_Target], sink: ResultSink) -> int:
        """Sweep every model's load levels: hosts at once, the models of one host in turn.

        Models sharing a host are swept one after the other, so that one curve is not bent by
        another model's requests; separate hosts are independent machines, swept together.
        Returns how many requests were sent.
        """
        spec = self.suite.load
        assert spec is not None  # the suite's validator requires it with modes: [load]
        prompts = self.suite.load_prompts()
        by_host: dict[str, list[_Target]] = {}
        for target in ready:
            by_host.setdefault(target.host, []).append(target)

        async def sweep_one(target: _Target) -> int:
            async def send(prompt: PromptSpec, number: int, level_index: int) -> RequestResult:
                return await self._request(
                    "load", target, prompt, number, sink, load_level=level_index
                )

            async def record(level: LevelRecord, summary: LevelSummary) -> None:
                sink.record("load_level", **level.as_dict())
                self.observer.level_finished(target.spec.name, target.host, summary)

            summaries = await sweep(
                spec,
                prompts,
                send,
                lambda: time.perf_counter() - self._t0,
                record,
                target.spec.name,
                target.host,
            )
            return sum(s.requests for s in summaries)

        async def sweep_host(targets: list[_Target]) -> int:
            return sum([await sweep_one(target) for target in targets])

        return sum(await asyncio.gather(*(sweep_host(ts) for ts in by_host.values())))

    async def _record_loaded(self, sink: ResultSink, target: _Target) -> None:
        """After a model's first request: how much of it /api/ps says sits in GPU memory."""
        try:
            loaded = await self._backend(target).loaded_models()
        except (RequestError, HostUnreachableError) as exc:
            self._warn(f"{exc} ({target.spec.name}: no loaded size recorded; the run goes on)")
            return
        entry = loaded.get(self._backend(target).model_key(target.engine_model))
        if entry is None:
            return
        sink.record(
            "update_model",
            model=target.spec.name,
            host=target.host,
            fields={
                "loaded_size_bytes": entry.get("size"),
                "loaded_vram_bytes": entry.get("size_vram"),
            },
        )


def _unusable_reason(kind: str, error: HostUnreachableError | ServerAnswerError) -> str:
    """Why no request goes to a host, as each of its models' rows says it."""
    if isinstance(error, ServerAnswerError):
        return str(error)
    server = "Ollama at " if kind == "ollama" else ""
    return f"cannot reach {server}{error.url} ({error.reason})"


def run_suite(
    suite: Suite,
    store: Store | str | Path | None = None,
    observer: RunObserver | None = None,
    cold_start: bool | None = None,
) -> RunOutcome:
    """Run `suite` once, appending to `store` (default reports/novabench.duckdb).

    `cold_start` overrides the suite's own setting when given.
    """
    if not isinstance(store, Store):
        store = Store() if store is None else Store(store)
    return asyncio.run(SuiteRunner(suite, store, observer, cold_start).run())
