"""Engines novabench can benchmark, behind one small interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from novabench.records import RequestResult

TextCallback = Callable[[str], None]
# The calls around the chat (version, models, show, ps, unload) answer in milliseconds: they are
# bounded by the suite's timeout_s, and never wait longer than this.
INFO_TIMEOUT_S = 30.0


def _named_limit(value_s: float, *named: tuple[str, float]) -> str:
    """'timeout_s=3' when `value_s` is that setting, else '30 s'."""
    name = next((n for n, v in named if v == value_s), None)
    return f"{name}={value_s:g}" if name else f"{value_s:g} s"


@dataclass(frozen=True)
class CallLimits:
    """Bounds on one call around the chat, from the suite's timeout_s and connect_timeout_s."""

    timeout_s: float = 300.0
    connect_timeout_s: float = 10.0

    @property
    def total_s(self) -> float:
        """The whole call: connecting, waiting for the answer and reading it."""
        return min(self.timeout_s, INFO_TIMEOUT_S)

    @property
    def connect_s(self) -> float:
        return min(self.connect_timeout_s, self.total_s)

    def no_connection(self) -> str:
        limit = _named_limit(
            self.connect_s,
            ("connect_timeout_s", self.connect_timeout_s),
            ("timeout_s", self.timeout_s),
        )
        return f"no connection within {limit}"

    def no_answer(self, got_head: bool) -> str:
        """What a call that connected but ran out of time got: no answer, or only its start."""
        limit = _named_limit(self.total_s, ("timeout_s", self.timeout_s))
        if got_head:
            return f"connected, the answer did not end within {limit}"
        return f"connected, no answer within {limit}"


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
    timeout_s: float = 300.0  # the whole request
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float | None = None  # None: only timeout_s bounds the wait

    def deadlines(self, now: float) -> tuple[float, float]:
        """(first-token deadline, total deadline) on the clock `now` was read from."""
        total_by = now + self.timeout_s
        if self.first_token_timeout_s is None:
            return total_by, total_by
        return min(total_by, now + self.first_token_timeout_s), total_by

    def timeout_error(self, got_first_token: bool) -> str:
        """Why a request ran out of time: no first token, or no complete response."""
        first = self.first_token_timeout_s
        if not got_first_token and first is not None and first < self.timeout_s:
            return f"no first token within first_token_timeout_s={first:g}"
        return f"no complete response within timeout_s={self.timeout_s:g}"

    def connect_error(self) -> str:
        limit_s = min(self.connect_timeout_s, self.timeout_s)
        return f"cannot connect within connect_timeout_s={limit_s:g}"


class Backend(Protocol):
    """An engine: reports its version and models, and streams chat completions into results.

    `chat` never raises for a failed request: it records the failure in `result.error`.
    `list_models` is keyed by `model_key(engine model id)`. The optional extras (`show`,
    `loaded_models`, `unload`) may answer None / {} / raise RequestError where an engine has
    no such thing; the runner then records nothing for them.
    """

    kind: str  # "ollama", "openai", "llamacpp": stored with every result
    host: str

    async def version(self) -> str: ...

    async def list_models(self) -> dict[str, ModelInfo]: ...

    def model_key(self, model: str) -> str: ...

    async def chat(
        self, request: ChatRequest, result: RequestResult, on_text: TextCallback | None = None
    ) -> None: ...

    async def show(self, model: str) -> dict[str, Any] | None: ...

    async def loaded_models(self) -> dict[str, dict[str, Any]]: ...

    async def unload(self, model: str) -> None: ...

    async def aclose(self) -> None: ...
