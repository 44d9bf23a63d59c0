"""Which engine serves which backend name: each imported on first use (engines are optional)."""

from __future__ import annotations

from typing import Any

from novabench.engines import Backend, CallLimits


def make_backend(
    kind: str,
    host: str,
    max_connections: int = 1024,
    api_key: str | None = None,
    limits: CallLimits | None = None,
) -> Backend:
    """The backend of one engine at one host (imported on first use: engines are optional).

    `limits` bound the calls around the chat (the chat itself is bounded by its ChatRequest).
    """
    limits = limits or CallLimits()
    if kind == "ollama":
        from novabench.engines.ollama import OllamaBackend

        return OllamaBackend(host, max_connections=max_connections, limits=limits)
    if kind == "openai":
        from novabench.engines.openai import OpenAIBackend

        return OpenAIBackend(host, max_connections=max_connections, api_key=api_key, limits=limits)
    if kind == "llamacpp":
        from novabench.engines.llamacpp import LlamaCppBackend

        return LlamaCppBackend(host)
    raise ValueError(f"backend {kind!r} is not available in this novabench")


def unsent_options(kind: str, options: dict[str, Any]) -> list[str]:
    """A model's options that its engine does not send (the OpenAI API has no num_ctx, top_k...)."""
    if kind != "openai":
        return []
    from novabench.engines.openai import OPENAI_OPTIONS

    return sorted(name for name in options if name not in OPENAI_OPTIONS)
