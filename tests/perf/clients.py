"""The four clients that stream the same tokens: novabench (live display on and off), the
official `ollama` AsyncClient (the peer), and a bare httpx + json.loads loop (the floor).

Each records the same raw facts, in RequestResult's field names, so `derive()` reads them all
alike: the client clock when the call started (`sent_ns`, time.perf_counter_ns), the arrival
offset of every content line (`token_offsets_s`), TTFT and end-to-end time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import ollama
from rich.console import Console

from novabench.console.live import LiveObserver
from novabench.engines import ChatRequest
from novabench.engines.ollama import OllamaBackend
from novabench.records import RequestResult

MODE = "load"
REQUEST_TIMEOUT_S = 120.0
# The same connection limits as OllamaBackend's own, so no client is pool-bound where another
# is not: enough connections for every stream, keep-alive for the first 64.
LIMITS = httpx.Limits(max_connections=1024, max_keepalive_connections=64)


@dataclass
class Sample:
    """One streamed request as a client saw it."""

    user_text: str
    sent_ns: int  # time.perf_counter_ns() just before the client was called
    row: dict[str, Any] = field(default_factory=dict)  # RequestResult fields, for derive()
    error: str | None = None


class PerfClient(Protocol):
    name: str
    title: str

    async def open(self, url: str, model: str, planned_requests: int) -> None: ...

    async def stream(self, user_text: str) -> Sample: ...

    async def close(self) -> None: ...


def _messages(user_text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user_text}]


class NovabenchClient:
    """novabench's own OllamaBackend.chat, optionally feeding a real rich live display."""

    def __init__(self, live_display: bool) -> None:
        self.live_display = live_display
        self.name = "novabench-live" if live_display else "novabench"
        self.title = "novabench, live display on" if live_display else "novabench, display off"
        self.backend: OllamaBackend | None = None
        self.observer: LiveObserver | None = None
        self._devnull: Any = None
        self.model = ""

    async def open(self, url: str, model: str, planned_requests: int) -> None:
        self.model = model
        self.backend = OllamaBackend(url)
        if self.live_display:
            # A terminal that discards its output: rich really renders, 8 times a second.
            self._devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in close()
            console = Console(file=self._devnull, force_terminal=True, width=120)
            self.observer = LiveObserver(console).__enter__()
            self.observer.run_started("perf", {(MODE, model): planned_requests})

    async def stream(self, user_text: str) -> Sample:
        assert self.backend is not None
        request = ChatRequest(self.model, _messages(user_text), timeout_s=REQUEST_TIMEOUT_S)
        result = RequestResult(
            mode=MODE,
            model=self.model,
            host=self.backend.host,
            prompt_id=user_text,
            repetition=0,
            is_warmup=False,
            started_at=datetime.now(UTC),
        )
        observer = self.observer
        if observer is None:
            sent_ns = time.perf_counter_ns()
            await self.backend.chat(request, result)
        else:
            # As the runner wires it: request_started, text through on_text, request_finished.
            model = self.model
            observer.request_started(MODE, model, user_text, False)
            sent_ns = time.perf_counter_ns()
            await self.backend.chat(
                request, result, lambda piece: observer.text_received(MODE, model, piece)
            )
            observer.request_finished(result)
        return Sample(user_text, sent_ns, vars(result), result.error)

    async def close(self) -> None:
        if self.observer is not None:
            self.observer.__exit__(None, None, None)
            self.observer = None
        if self._devnull is not None:
            self._devnull.close()
            self._devnull = None
        if self.backend is not None:
            await self.backend.aclose()
            self.backend = None


class OllamaPythonClient:
    """The official `ollama` package's AsyncClient.chat(stream=True): the peer."""

    name = "ollama"
    title = "ollama AsyncClient (peer)"

    def __init__(self) -> None:
        self.client: ollama.AsyncClient | None = None
        self.model = ""

    async def open(self, url: str, model: str, planned_requests: int) -> None:
        self.model = model
        self.client = ollama.AsyncClient(host=url, limits=LIMITS, trust_env=False)

    async def stream(self, user_text: str) -> Sample:
        assert self.client is not None
        offsets: list[float] = []
        row: dict[str, Any] = {"token_offsets_s": offsets}
        sent_ns = time.perf_counter_ns()
        sent = sent_ns / 1e9
        error = None
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                parts = await self.client.chat(self.model, _messages(user_text), stream=True)
                async for part in parts:
                    arrived = time.perf_counter() - sent
                    if part.message.content:
                        offsets.append(arrived)
                    if part.done:
                        row["eval_count"] = part.eval_count
                        row["eval_duration_ns"] = part.eval_duration
        except Exception as exc:  # a failed request is reported, not raised
            error = f"{type(exc).__name__}: {exc}"
        row["e2e_s"] = time.perf_counter() - sent
        row["ttft_s"] = offsets[0] if offsets else None
        return Sample(user_text, sent_ns, row, error)

    async def close(self) -> None:
        if self.client is not None:
            await self.client._client.aclose()
            self.client = None


class BareHttpxClient:
    """httpx streaming and json.loads per line, nothing else: the floor."""

    name = "httpx"
    title = "bare httpx + json.loads (floor)"

    def __init__(self) -> None:
        self.client: httpx.AsyncClient | None = None
        self.model = ""

    async def open(self, url: str, model: str, planned_requests: int) -> None:
        self.model = model
        self.client = httpx.AsyncClient(
            base_url=url, limits=LIMITS, timeout=REQUEST_TIMEOUT_S, trust_env=False
        )

    async def stream(self, user_text: str) -> Sample:
        assert self.client is not None
        offsets: list[float] = []
        row: dict[str, Any] = {"token_offsets_s": offsets}
        body = {"model": self.model, "messages": _messages(user_text), "stream": True}
        sent_ns = time.perf_counter_ns()
        sent = sent_ns / 1e9
        error = None
        try:
            async with self.client.stream("POST", "/api/chat", json=body) as response:
                async for line in response.aiter_lines():
                    arrived = time.perf_counter() - sent
                    chunk = json.loads(line)
                    if chunk["message"]["content"]:
                        offsets.append(arrived)
                    if chunk["done"]:
                        row["eval_count"] = chunk.get("eval_count")
                        row["eval_duration_ns"] = chunk.get("eval_duration")
        except Exception as exc:  # a failed request is reported, not raised
            error = f"{type(exc).__name__}: {exc}"
        row["e2e_s"] = time.perf_counter() - sent
        row["ttft_s"] = offsets[0] if offsets else None
        return Sample(user_text, sent_ns, row, error)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None


CLIENT_NAMES = ("novabench-live", "novabench", "ollama", "httpx")


def make_client(name: str) -> PerfClient:
    """A fresh client by its short name (CLIENT_NAMES)."""
    if name == "novabench-live":
        return NovabenchClient(live_display=True)
    if name == "novabench":
        return NovabenchClient(live_display=False)
    if name == "ollama":
        return OllamaPythonClient()
    if name == "httpx":
        return BareHttpxClient()
    raise ValueError(f"unknown client {name!r} (choose from {', '.join(CLIENT_NAMES)})")
