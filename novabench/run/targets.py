"""The suite's models resolved against their hosts: which hosts answer, which models they hold.

Every workload sends to Targets; one that cannot be sent to carries the reason, which its
failed rows repeat.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from novabench.config.suite import ModelSpec, Suite
from novabench.engines import Backend, ModelInfo
from novabench.engines.registry import unsent_options
from novabench.errors import HostUnreachableError, RequestError, ServerAnswerError

# An endpoint: (engine, host).
Endpoint = tuple[str, str]
Versions = dict[str, str | None]


@dataclass
class Target:
    """One model entry of the suite, resolved against its host."""

    spec: ModelSpec
    kind: str  # the engine: ollama, openai, llamacpp
    host: str
    engine_model: str  # the model id the engine is asked for
    options: dict[str, object]
    info: ModelInfo | None
    unavailable: str | None  # why no request can be sent, or None
    show: dict[str, Any] | None = None  # what /api/show says

    def model_row(self) -> dict[str, Any]:
        """The run's row for this model: what was asked for and what the host said of it."""
        info = self.info
        return {
            "model": self.spec.name,
            "host": self.host,
            "found": info is not None,
            "digest": info.digest if info else None,
            "size_bytes": info.size_bytes if info else None,
            "family": info.family if info else None,
            "parameter_size": info.parameter_size if info else None,
            "quantization": info.quantization if info else None,
            "options": self.options,
            "backend": self.kind,
            "engine_model": self.engine_model,
            "context_length": (self.show or {}).get("context_length"),
            "show_info": self.show,
            "unsent_options": unsent_options(self.kind, self.options),
        }


def api_key(suite: Suite, kind: str, host: str) -> str | None:
    """The API key of an endpoint, from the environment variable its models name."""
    for spec in suite.models:
        variable = suite.api_key_env_for(spec)
        same = (suite.backend_for(spec), suite.host_for(spec)) == (kind, host)
        if same and variable:
            return os.environ.get(variable)
    return None


async def resolve_targets(
    suite: Suite, backends: Mapping[Endpoint, Backend], warn: Callable[[str], None]
) -> tuple[Versions, list[Target]]:
    """Ask every engine for its version and models; refuse to start if none answers.

    A host that cannot be reached, or whose version or model list is not what its engine
    answers, is unusable: its models fail their rows with the reason. `warn` hears of a
    server answer that costs a fact (show info) but not the run.
    """

    async def probe(
        endpoint: Endpoint,
    ) -> tuple[str, dict[str, ModelInfo]] | HostUnreachableError | ServerAnswerError:
        backend = backends[endpoint]
        try:
            return await backend.version(), await backend.list_models()
        except (HostUnreachableError, ServerAnswerError) as exc:
            return exc

    endpoints = list(backends)
    found = await asyncio.gather(*(probe(e) for e in endpoints))
    answers = dict(zip(endpoints, found, strict=True))
    unusable = [a for a in answers.values() if isinstance(a, Exception)]
    if len(unusable) == len(endpoints):
        raise unusable[0]
    versions: Versions = {}
    targets = []
    for spec in suite.models:
        kind, host = suite.backend_for(spec), suite.host_for(spec)
        engine_model = suite.engine_model(spec)
        answer = answers[(kind, host)]
        target = Target(spec, kind, host, engine_model, suite.options_for(spec), None, None)
        targets.append(target)
        if isinstance(answer, Exception):
            versions.setdefault(host, None)
            target.unavailable = _unusable_reason(kind, answer)
            continue
        if kind == "ollama" or versions.get(host) is None:  # Ollama's own /v1 says less
            versions[host] = answer[0]
        target.info = answer[1].get(backends[(kind, host)].model_key(engine_model))
        if target.info is None:
            target.unavailable = f"model {engine_model!r} not found on {host}"
        variable = suite.api_key_env_for(spec)
        if variable and not os.environ.get(variable):
            target.unavailable = f"environment variable {variable} (api_key_env) is not set"
    ready = [t for t in targets if t.unavailable is None]
    await asyncio.gather(*(_show(t, backends[(t.kind, t.host)], warn) for t in ready))
    return versions, targets


async def _show(target: Target, backend: Backend, warn: Callable[[str], None]) -> None:
    """What /api/show says of a target; a failure leaves it empty and the run goes on."""
    try:
        target.show = await backend.show(target.engine_model)
    except (RequestError, HostUnreachableError) as exc:
        target.show = None
        warn(f"{exc} ({target.spec.name}: no show info kept; the run goes on)")


def _unusable_reason(kind: str, error: HostUnreachableError | ServerAnswerError) -> str:
    """Why no request goes to a host, as each of its models' rows says it."""
    if isinstance(error, ServerAnswerError):
        return str(error)
    server = "Ollama at " if kind == "ollama" else ""
    return f"cannot reach {server}{error.url} ({error.reason})"
