"""Run a suite: warm-up, modes, repetitions; store every result as it finishes."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from novabench import __version__
from novabench.backends import ChatRequest, ModelInfo
from novabench.backends.ollama import OllamaBackend, canonical_name
from novabench.errors import HostUnreachableError
from novabench.metrics import RequestResult
from novabench.store import Store, utcnow
from novabench.suite import ModelSpec, PromptSpec, Suite
from novabench.system import system_info


class RunObserver(Protocol):
    """Receives progress events (the live display, log lines, or nothing)."""

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int]) -> None: ...

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None: ...

    def text_received(self, mode: str, model: str, piece: str) -> None: ...

    def request_finished(self, result: RequestResult) -> None: ...

    def phase_finished(self, mode: str, wall_s: float) -> None: ...


class NullObserver:
    """Observes nothing: the default for library use."""

    def run_started(self, run_id: str, plan: dict[tuple[str, str], int]) -> None:
        pass

    def request_started(self, mode: str, model: str, prompt_id: str, is_warmup: bool) -> None:
        pass

    def text_received(self, mode: str, model: str, piece: str) -> None:
        pass

    def request_finished(self, result: RequestResult) -> None:
        pass

    def phase_finished(self, mode: str, wall_s: float) -> None:
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
    host: str
    options: dict[str, object]
    info: ModelInfo | None
    unavailable: str | None  # why no request can be sent, or None


def new_run_id() -> str:
    """Sortable, readable and safe as a file name: 20261127T104500Z-3fa1."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


class _ResultSink:
    """Numbers results and writes them to the store from one thread, batching what piles up."""

    def __init__(self, store: Store, run_id: str) -> None:
        self._store = store
        self._run_id = run_id
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novabench-store")
        self._pending: list[tuple[int, RequestResult]] = []
        self._writer: asyncio.Task[None] | None = None
        self.results: list[RequestResult] = []

    def submit(self, result: RequestResult) -> None:
        self._pending.append((len(self.results), result))
        self.results.append(result)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            await loop.run_in_executor(self._executor, self._store.add_results, self._run_id, batch)

    async def flush(self) -> None:
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._writer is not None and self._writer.exception() is not None:
            raise self._writer.exception()  # type: ignore[misc]

    async def call(self, fn: Callable[..., object], *args: object) -> None:
        """Run a store write in the writer thread, after every result submitted so far."""
        await self.flush()
        await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)


class SuiteRunner:
    """Runs one suite once against its hosts, writing to one store."""

    def __init__(self, suite: Suite, store: Store, observer: RunObserver | None = None) -> None:
        self.suite = suite
        self.store = store
        self.observer: RunObserver = observer or NullObserver()
        self._backends: dict[str, OllamaBackend] = {}
        self._t0 = 0.0

    async def run(self) -> RunOutcome:
        hosts = sorted({self.suite.host_for(m) for m in self.suite.models})
        max_streams = max(64, 4 * len(self.suite.models))
        self._backends = {h: OllamaBackend(h, max_connections=max_streams) for h in hosts}
        try:
            versions, targets = await self._preflight(hosts)
            run_id = new_run_id()
            self._create_run(run_id, versions, targets)
            sink = _ResultSink(self.store, run_id)
            outcome = RunOutcome(run_id, "running", self.store.path)
            try:
                await self._run_modes(run_id, targets, sink, outcome)
                outcome.status = "complete"
            except (asyncio.CancelledError, KeyboardInterrupt):
                outcome.status = "interrupted"
                raise
            except BaseException:
                outcome.status = "aborted"
                raise
            finally:
                await asyncio.shield(sink.flush())
                sink.close()
                outcome.results = sink.results
                self.store.finish_run(run_id, outcome.status)
            return outcome
        finally:
            await asyncio.gather(*(b.aclose() for b in self._backends.values()))

    async def _preflight(self, hosts: list[str]) -> tuple[dict[str, str | None], list[_Target]]:
        """Ask every host for its version and models; refuse to start if no host answers."""

        async def probe(host: str) -> tuple[str, dict[str, ModelInfo]] | HostUnreachableError:
            backend = self._backends[host]
            try:
                return await backend.version(), await backend.list_models()
            except HostUnreachableError as exc:
                return exc

        answers = dict(zip(hosts, await asyncio.gather(*(probe(h) for h in hosts)), strict=True))
        unreachable = [a for a in answers.values() if isinstance(a, HostUnreachableError)]
        if len(unreachable) == len(hosts):
            raise unreachable[0]
        versions: dict[str, str | None] = {}
        targets = []
        for spec in self.suite.models:
            host = self.suite.host_for(spec)
            answer = answers[host]
            options = self.suite.options_for(spec)
            if isinstance(answer, HostUnreachableError):
                versions[host] = None
                reason = f"cannot reach Ollama at {answer.url} ({answer.reason})"
                targets.append(_Target(spec, host, options, None, reason))
                continue
            versions[host] = answer[0]
            info = answer[1].get(canonical_name(spec.name))
            missing = None if info else f"model {spec.name!r} not found on {host}"
            targets.append(_Target(spec, host, options, info, missing))
        return versions, targets

    def _create_run(
        self, run_id: str, versions: dict[str, str | None], targets: list[_Target]
    ) -> None:
        suite = self.suite
        system = system_info()
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
                "repetitions": suite.repetitions,
                "warmup": suite.warmup,
                "options": {
                    "options": suite.options.to_request(),
                    "keep_alive": suite.keep_alive,
                    "timeout_s": suite.timeout_s,
                },
                "system": system,
                "hostname": system["hostname"],
                "pid": os.getpid(),
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
                    }
                    for t in targets
                ],
                "prompts": [
                    {"prompt_id": p.id, "text": p.text, "system": p.system} for p in suite.prompts
                ],
            }
        )

    async def _run_modes(
        self, run_id: str, targets: list[_Target], sink: _ResultSink, outcome: RunOutcome
    ) -> None:
        suite = self.suite
        per_mode = len(suite.prompts) * suite.repetitions
        plan: dict[tuple[str, str], int] = {
            (mode, t.spec.name): per_mode + (0 if t.unavailable else suite.warmup)
            for mode in suite.modes
            for t in targets
        }
        self.observer.run_started(run_id, plan)
        self._t0 = time.perf_counter()
        for mode in suite.modes:
            ready = [t for t in targets if t.unavailable is None]
            for target in targets:
                if target.unavailable is not None:
                    for prompt in suite.prompts:
                        for rep in range(suite.repetitions):
                            sink.submit(self._failed(mode, target, prompt, rep))
            for target in ready:
                for rep in range(suite.warmup):
                    await self._request(mode, target, suite.prompts[0], rep, True, sink)
            phase_started_at = utcnow()
            phase_t0 = time.perf_counter()
            if mode == "sequential":
                for target in ready:
                    for prompt in suite.prompts:
                        for rep in range(suite.repetitions):
                            await self._request(mode, target, prompt, rep, False, sink)
            else:
                for prompt in suite.prompts:
                    for rep in range(suite.repetitions):
                        await asyncio.gather(
                            *(self._request(mode, t, prompt, rep, False, sink) for t in ready)
                        )
            wall_s = time.perf_counter() - phase_t0
            if ready:
                outcome.wall_s_by_mode[mode] = wall_s
                requests = per_mode * len(ready)
                await sink.call(
                    self.store.add_phase, run_id, mode, phase_started_at, wall_s, requests
                )
            self.observer.phase_finished(mode, wall_s)

    def _failed(
        self, mode: str, target: _Target, prompt: PromptSpec, repetition: int
    ) -> RequestResult:
        result = RequestResult(
            mode=mode,
            model=target.spec.name,
            host=target.host,
            prompt_id=prompt.id,
            repetition=repetition,
            is_warmup=False,
            started_at=utcnow(),
            start_offset_s=time.perf_counter() - self._t0,
            error=target.unavailable,
        )
        self.observer.request_finished(result)
        return result

    async def _request(
        self,
        mode: str,
        target: _Target,
        prompt: PromptSpec,
        repetition: int,
        is_warmup: bool,
        sink: _ResultSink,
    ) -> None:
        messages = [{"role": "system", "content": prompt.system}] if prompt.system else []
        messages.append({"role": "user", "content": prompt.text})
        request = ChatRequest(
            model=target.spec.name,
            messages=messages,
            options=target.options,
            keep_alive=self.suite.keep_alive,
            timeout_s=self.suite.timeout_s,
        )
        result = RequestResult(
            mode=mode,
            model=target.spec.name,
            host=target.host,
            prompt_id=prompt.id,
            repetition=repetition,
            is_warmup=is_warmup,
            started_at=utcnow(),
            start_offset_s=time.perf_counter() - self._t0,
        )
        name = target.spec.name
        self.observer.request_started(mode, name, prompt.id, is_warmup)
        await self._backends[target.host].chat(
            request, result, lambda piece: self.observer.text_received(mode, name, piece)
        )
        sink.submit(result)
        self.observer.request_finished(result)


def run_suite(
    suite: Suite, store: Store | str | Path | None = None, observer: RunObserver | None = None
) -> RunOutcome:
    """Run `suite` once, appending to `store` (default reports/novabench.duckdb)."""
    if not isinstance(store, Store):
        store = Store() if store is None else Store(store)
    return asyncio.run(SuiteRunner(suite, store, observer).run())
