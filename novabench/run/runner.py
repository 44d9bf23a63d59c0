"""Run a suite: preflight, the run row, then each workload with its warm-up; store every result.

The runner does what every workload needs the same way (plan, failed rows for models that
cannot be sent to, cold starts, warm-up, phase rows) and lends each one `send` for its
measured requests (run/workloads/).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, Unpack

from novabench.config.suite import PromptSpec, Suite
from novabench.engines import Backend, CallLimits, ChatRequest
from novabench.engines.registry import make_backend
from novabench.engines.storable import make_storable
from novabench.errors import HostUnreachableError, RequestError, StorageFailure
from novabench.records import LevelSummary, RepetitionStop, RequestResult
from novabench.run.checker import CheckWorker
from novabench.run.provenance import run_row
from novabench.run.resources import ResourceSampler
from novabench.run.sink import ResultSink
from novabench.run.targets import Target, Versions, api_key, resolve_targets
from novabench.run.workloads import RequestTags, Workload, WorkloadContext, workloads_of
from novabench.storage.store import Store, utcnow


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
        workloads: list[Workload] | None = None,
    ) -> None:
        self.suite = suite
        # What the run measures, in order: by default one workload per mode of the suite.
        self.workloads = workloads_of(suite) if workloads is None else workloads
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
        most_in_flight = max((w.max_in_flight() for w in self.workloads), default=0)
        max_streams = max(64, 4 * len(suite.models), most_in_flight)
        limits = CallLimits(suite.timeout_s, suite.connect_timeout_s)
        self._backends = {
            (kind, host): make_backend(kind, host, max_streams, api_key(suite, kind, host), limits)
            for kind, host in endpoints
        }
        hosts = sorted({host for kind, host in endpoints if host.startswith("http")})
        try:
            versions, targets = await resolve_targets(suite, self._backends, self._warn)
            if self.store.path.exists():
                self.store.check_health()  # a damaged file is refused before a run is added
            run_id = new_run_id()
            self._create_run(run_id, versions, targets)
            return await self._run_created(run_id, targets, hosts)
        finally:
            self._checker.close()
            await asyncio.gather(*(b.aclose() for b in self._backends.values()))

    async def _run_created(
        self, run_id: str, targets: list[Target], hosts: list[str]
    ) -> RunOutcome:
        """The run once its row exists: the workloads, then the run's end, whatever stops it."""
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
            await self._run_workloads(run_id, targets, sink, outcome)
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

    def _backend(self, target: Target) -> Backend:
        return self._backends[(target.kind, target.host)]

    def _warn(self, message: str) -> None:
        """A server problem that costs a fact, not the run: told to the observer, and kept for
        the run's manifest when it comes before the run row is written (/api/show)."""
        self.server_warnings.append(message)
        self.observer.server_warning(message)

    def _create_run(self, run_id: str, versions: Versions, targets: list[Target]) -> None:
        modes = [w.mode for w in self.workloads]
        self.store.create_run(
            run_row(
                self.suite, run_id, versions, targets, modes, self.cold_start, self.server_warnings
            )
        )

    async def _run_workloads(
        self, run_id: str, targets: list[Target], sink: ResultSink, outcome: RunOutcome
    ) -> None:
        """Each workload in turn, with what comes before its measured requests and after."""
        self.observer.run_started(run_id, self._plan(targets))
        stops: list[RepetitionStop] = []
        for index, workload in enumerate(self.workloads):
            mode, prompt = workload.mode, workload.warmup_prompt
            await self._fail_unavailable(workload, targets, sink)
            ready = [t for t in targets if t.unavailable is None]
            if self.cold_start and index == 0:
                for target in ready:
                    await self._cold_request(mode, target, prompt, sink)
            for target in ready:
                for rep in range(self.suite.warmup):
                    await self._request(mode, target, prompt, rep, sink, is_warmup=True)
            phase_started_at = utcnow()
            phase_t0 = time.perf_counter()
            done = await workload.run(self._context(mode, ready, sink))
            wall_s = time.perf_counter() - phase_t0
            stops += done.repetition_stops
            if ready:
                outcome.wall_s_by_mode[mode] = wall_s
                sink.record(
                    "phase",
                    mode=mode,
                    started_at=phase_started_at,
                    wall_s=wall_s,
                    requests=done.requests,
                )
            self.observer.phase_finished(mode, wall_s)
        for stop in stops:
            sink.record("repetition_stop", **stop.as_dict())

    def _plan(self, targets: list[Target]) -> dict[tuple[str, str], int | None]:
        """Requests per (mode, model): measured, warm-up and cold, or the failed rows."""
        plan: dict[tuple[str, str], int | None] = {}
        for index, workload in enumerate(self.workloads):
            measured = workload.planned()
            extra = self.suite.warmup + (1 if self.cold_start and index == 0 else 0)
            sent = None if measured is None else measured + extra
            failed = sum(1 for _ in workload.unavailable_rows())
            for t in targets:
                plan[(workload.mode, t.spec.name)] = sent if t.unavailable is None else failed
        return plan

    async def _fail_unavailable(
        self, workload: Workload, targets: list[Target], sink: ResultSink
    ) -> None:
        """The rows of a model that cannot be sent to, each saying why."""
        for target in targets:
            if target.unavailable is None:
                continue
            for number, (prompt, rep) in enumerate(workload.unavailable_rows()):
                sink.submit(self._failed(workload.mode, target, prompt, rep))
                if number % 256 == 255:
                    await asyncio.sleep(0)  # signals and the sink get their turn

    def _context(self, mode: str, ready: list[Target], sink: ResultSink) -> WorkloadContext:
        """What a workload's measured requests go through: this run's send, sink and clock."""

        async def send(
            target: Target, prompt: PromptSpec, repetition: int, **tags: Unpack[RequestTags]
        ) -> RequestResult:
            return await self._request(mode, target, prompt, repetition, sink, **tags)

        return WorkloadContext(
            mode=mode,
            targets=ready,
            send=send,
            record=sink.record,
            observer=self.observer,
            now_offset_s=lambda: time.perf_counter() - self._t0,
        )

    async def _cold_request(
        self, mode: str, target: Target, prompt: PromptSpec, sink: ResultSink
    ) -> None:
        """Unload the model, then time the request that has to load it again."""
        try:
            await self._backend(target).unload(target.engine_model)
        except RequestError as exc:
            result = self._new_result(mode, target, prompt, 0, is_cold=True)
            result.error = f"could not unload before the cold start: {exc}"
            sink.submit(result)
            self.observer.request_finished(result)
            return
        await self._request(mode, target, prompt, 0, sink, is_cold=True)

    def _new_result(
        self,
        mode: str,
        target: Target,
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
        self, mode: str, target: Target, prompt: PromptSpec, repetition: int
    ) -> RequestResult:
        result = self._new_result(mode, target, prompt, repetition)
        result.error = target.unavailable
        self.observer.request_finished(result)
        return result

    async def _request(
        self,
        mode: str,
        target: Target,
        prompt: PromptSpec,
        repetition: int,
        sink: ResultSink,
        is_warmup: bool = False,
        is_cold: bool = False,
        **tags: Unpack[RequestTags],
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
        for name, value in tags.items():
            setattr(result, name, value)
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

    async def _record_loaded(self, sink: ResultSink, target: Target) -> None:
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
