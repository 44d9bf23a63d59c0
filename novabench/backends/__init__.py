"""Engines novabench can benchmark, behind one small interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from novabench.metrics import RequestResult

TextCallback = Callable[[str], None]


@dataclass
class ModelInfo:
    """What a host says about one installed model."""

    name: str
    digest: str | None = None
    size_bytes: int | None = None
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatRequest:
    """One chat completion to stream: the model, the messages and what to send with them."""

    model: str
    messages: list[dict[str, str]]
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: str | int | float | None = None
    timeout_s: float = 300.0


class Backend(Protocol):
    """An engine: reports its version and models, and streams chat completions into results."""

    host: str

    async def version(self) -> str: ...

    async def list_models(self) -> dict[str, ModelInfo]: ...

    async def chat(
        self, request: ChatRequest, result: RequestResult, on_text: TextCallback | None = None
    ) -> None: ...

    async def aclose(self) -> None: ...
