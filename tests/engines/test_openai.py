"""The openai backend: suites against the double's /v1, exact SSE edge cases, the API key."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest

from novabench import Store, load_suite, run_suite
from novabench.analysis.figures import derive
from novabench.engines import ChatRequest
from novabench.engines.openai import OpenAIBackend, api_base, request_body
from novabench.engines.registry import make_backend
from novabench.errors import HostUnreachableError
from novabench.records import RequestResult
from novabench.report import render_all
from tests.conftest import free_port, write_suite
from tests.ollama_double import OllamaDouble
from tests.report.pages import summary_cells, table_html

REPLY = "I am doing well, thank you for asking."
REPLY_TOKENS = len(REPLY.split())
KEY = "sk-novabench-test-9b1f07c2e4"


# ---- a scripted SSE server: answers with exact bytes ------------------------------------------


class ScriptedServer:
    """A loopback HTTP server answering chat with scripted bytes and /v1/models with a list."""

    def __init__(self) -> None:
        self.status = 200
        self.content_type = "text/event-stream"
        self.chat_body = b""
        self.models_body = b'{"object":"list","data":[{"id":"m","object":"model"}]}'
        self.server_header = "llama.cpp"
        self.requests: list[dict[str, Any]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                scripted.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers),
                     "json": json.loads(body) if body else None}
                )  # fmt: skip
                if self.path.endswith("/models"):
                    status, kind, payload = 200, "application/json", scripted.models_body
                else:
                    status, kind, payload = (
                        scripted.status,
                        scripted.content_type,
                        scripted.chat_body,
                    )
                head = f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nConnection: close\r\n"
                if scripted.server_header:
                    head += f"Server: {scripted.server_header}\r\n"
                self.wfile.write(head.encode() + b"\r\n")
                # In small pieces: events and lines must survive being split across reads.
                for start in range(0, len(payload), 7):
                    self.wfile.write(payload[start : start + 7])
                    self.wfile.flush()
                self.close_connection = True

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


def event(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    *,
    choices: bool = True,
) -> bytes:
    """One SSE chat.completion.chunk event."""
    chunk: dict[str, Any] = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "model": "m"}
    chunk["choices"] = (
        [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    )
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


USAGE = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
DONE = b"data: [DONE]\n\n"
# v0.32.6+ and OpenAI: role first, an empty-delta finish chunk, then the usage chunk.
NEW_FORM = (
    event({"role": "assistant", "content": "The"})
    + event({"content": " sky"})
    + event({"content": " is"})
    + event({}, "stop")
    + event(usage=USAGE, choices=False)
    + DONE
)
# Before v0.32.6: role on every chunk, finish_reason on the last content chunk (content "").
OLD_FORM = (
    event({"role": "assistant", "content": "The"})
    + event({"role": "assistant", "content": " sky"})
    + event({"role": "assistant", "content": " is"})
    + event({"role": "assistant", "content": ""}, "length")
    + event(usage=USAGE, choices=False)
    + DONE
)


def chat(
    host: str, model: str = "m", options: dict[str, Any] | None = None, api_key: str | None = None
) -> RequestResult:
    """One request through the backend, as the runner sends it."""

    async def go() -> RequestResult:
        backend = OpenAIBackend(host, api_key=api_key)
        result = RequestResult("sequential", model, host, "p1", 0, False, datetime.now())
        request = ChatRequest(model, [{"role": "user", "content": "Hi"}], options or {}, None, 5.0)
        try:
            await backend.chat(request, result)
        finally:
            await backend.aclose()
        return result

    return asyncio.run(go())


# ---- suites against the double's /v1 ----------------------------------------------------------


def test_openai_suite_runs_against_the_double(ollama: OllamaDouble, tmp_path: Path) -> None:
    path = write_suite(tmp_path / "s.yaml", f"{ollama.url}/v1", backend="openai", repetitions=1)
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(load_suite(path), store)

    assert outcome.status == "complete" and outcome.exit_code == 0
    rows = store.results(outcome.run_id)
    assert rows and all(r["backend"] == "openai" and r["error"] is None for r in rows)
    assert {r.path for r in ollama.requests if r.method == "POST"} == {"/v1/chat/completions"}
    for row in (r for r in rows if r["model"] == "llama3.2"):
        assert row["response_text"] == REPLY
        assert row["eval_count"] == REPLY_TOKENS  # usage.completion_tokens
        assert row["prompt_eval_count"] and row["prompt_eval_count"] > 0
        assert row["eval_duration_ns"] is None and row["total_duration_ns"] is None
        assert row["done_reason"] == "stop"
        offsets = row["token_offsets_s"]
        assert len(offsets) == REPLY_TOKENS and offsets == sorted(offsets)
        assert 0 < row["ttft_s"] == offsets[0] <= offsets[-1] <= row["e2e_s"]
        figures = derive(row)
        assert figures["eval_tokens_per_s"] is None and figures["client_tokens_per_s"] > 0
    assert store.models(outcome.run_id)[0]["backend"] == "openai"
    assert store.get_run(outcome.run_id)["host_versions"] == {
        f"{ollama.url}/v1": "openai-compatible"
    }

    page = render_all(store, outcome.run_id, tmp_path / "reports")[0].read_text()
    models = table_html(page, "models-table")
    assert models.count('data-col="backend">openai') == 2
    assert "no server durations: tokens/s is the client figure" in models
    assert {model for _, model in summary_cells(page)} == {"llama3.2", "nemotron-mini"}


def test_one_suite_compares_ollama_native_and_its_v1(ollama: OllamaDouble, tmp_path: Path) -> None:
    models = "[{name: llama3.2}, {name: llama3.2-v1, model: llama3.2, backend: openai}]"
    path = write_suite(tmp_path / "s.yaml", ollama.url, models=models)
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(load_suite(path), store)

    assert outcome.status == "complete" and outcome.exit_code == 0
    rows = [r for r in store.results(outcome.run_id) if not r["is_warmup"]]
    assert {(r["model"], r["backend"]) for r in rows} == {
        ("llama3.2", "ollama"),
        ("llama3.2-v1", "openai"),
    }
    assert {r["mode"] for r in rows} == {"parallel", "sequential"}
    native = [r for r in rows if r["backend"] == "ollama"]
    v1 = [r for r in rows if r["backend"] == "openai"]
    assert all(r["eval_duration_ns"] for r in native)
    assert all(r["eval_duration_ns"] is None for r in v1)
    assert {r["eval_count"] for r in native} == {r["eval_count"] for r in v1} == {REPLY_TOKENS}
    assert {r["response_text"] for r in rows} == {REPLY}
    paths = {r.path for r in ollama.requests if r.method == "POST"}
    assert {"/api/chat", "/v1/chat/completions"} <= paths
    # The Ollama version of the host, not what its /v1 can say of itself.
    assert store.get_run(outcome.run_id)["host_versions"] == {ollama.url: ollama.version}
    engine_models = {m["model"]: m["engine_model"] for m in store.models(outcome.run_id)}
    assert engine_models == {"llama3.2": "llama3.2", "llama3.2-v1": "llama3.2"}

    page = render_all(store, outcome.run_id, tmp_path / "reports")[0].read_text()
    assert set(summary_cells(page)) == {
        (mode, model)
        for mode in ("parallel", "sequential")
        for model in ("llama3.2", "llama3.2-v1")
    }
    backends = re.findall(r'data-col="backend">(\w+)', table_html(page, "models-table"))
    assert sorted(backends) == ["ollama", "openai"]


def test_options_outside_the_openai_api_are_not_sent(ollama: OllamaDouble, tmp_path: Path) -> None:
    path = write_suite(
        tmp_path / "s.yaml",
        ollama.url,
        backend="openai",
        models="[llama3.2]",
        prompts="[Hi]",
        modes="[sequential]",
        repetitions=1,
        warmup=0,
        options="{num_predict: 5, temperature: 0.2, seed: 7, num_ctx: 2048, top_k: 3}",
    )
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(load_suite(path), store)
    assert outcome.exit_code == 0
    sent = next(r.json for r in ollama.requests if r.path == "/v1/chat/completions")
    assert sent["max_tokens"] == 5 and sent["temperature"] == 0.2 and sent["seed"] == 7
    assert "num_ctx" not in sent and "top_k" not in sent and "options" not in sent
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    page = render_all(store, outcome.run_id, tmp_path / "reports")[0].read_text()
    assert "num_ctx=2048 (not sent)" in table_html(page, "models-table")
    assert "temperature=0.2 (not sent)" not in page


def test_cold_start_is_an_error_row_on_the_openai_backend(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    path = write_suite(
        tmp_path / "s.yaml", ollama.url, backend="openai", models="[llama3.2]", cold_start="true"
    )
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(load_suite(path), store)
    cold = [r for r in store.results(outcome.run_id) if r["is_cold"]]
    assert [r["error"] for r in cold] == [
        "could not unload before the cold start: the openai backend cannot unload a model"
    ]
    assert all(r["error"] is None for r in store.results(outcome.run_id) if not r["is_cold"])


def test_unknown_model_and_unreachable_server(ollama: OllamaDouble, tmp_path: Path) -> None:
    path = write_suite(tmp_path / "s.yaml", ollama.url, backend="openai", models="[nope]")
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(load_suite(path), store)
    assert {r["error"] for r in store.results(outcome.run_id)} == {
        f"model 'nope' not found on {ollama.url}"
    }

    host = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(HostUnreachableError) as caught:
        run_suite(load_suite(write_suite(tmp_path / "u.yaml", host, backend="openai")), store)
    assert str(caught.value).startswith(
        f"cannot reach an OpenAI-compatible server at {host} (connection refused)"
    )


# ---- SSE edge cases against exact bytes ---------------------------------------------------------


@pytest.mark.parametrize("body", [NEW_FORM, OLD_FORM], ids=["new-form", "old-form"])
def test_both_finish_chunk_forms(scripted: ScriptedServer, body: bytes) -> None:
    scripted.chat_body = body
    result = chat(scripted.url)
    assert result.error is None
    assert result.response_text == "The sky is"
    assert result.done_reason == ("stop" if body is NEW_FORM else "length")
    assert (result.prompt_eval_count, result.eval_count) == (12, 3)
    assert result.chunk_count == 5  # every JSON event; [DONE] is not a chunk
    assert len(result.token_offsets_s) == 3  # the chunks that carried text
    assert result.ttft_s == result.token_offsets_s[0]
    assert result.e2e_s is not None and result.e2e_s >= result.token_offsets_s[-1]
    assert result.http_status == 200


def test_host_with_or_without_v1_posts_to_one_path(scripted: ScriptedServer) -> None:
    scripted.chat_body = NEW_FORM
    assert chat(scripted.url).ok and chat(scripted.url + "/v1/").ok
    assert [r["path"] for r in scripted.requests] == ["/v1/chat/completions"] * 2
    assert api_base("http://h:8080/v1") == api_base("http://h:8080") == "http://h:8080"


def test_a_stream_without_done_is_an_error(scripted: ScriptedServer) -> None:
    scripted.chat_body = NEW_FORM.removesuffix(DONE)
    result = chat(scripted.url)
    assert result.error == "stream ended without [DONE]"
    assert result.done_reason is None and result.response_text == "The sky is"


def test_ollama_mid_stream_error_shape_is_an_error(scripted: ScriptedServer) -> None:
    # What Ollama's /v1 sends for a native mid-stream error: an empty chunk, then the end.
    scripted.chat_body = event({"role": "assistant", "content": "The"}) + event({"content": ""})
    assert chat(scripted.url).error == "stream ended without [DONE]"


def test_an_error_event_mid_stream_is_an_error(scripted: ScriptedServer) -> None:
    error = {"error": {"message": "the model crashed", "type": "api_error", "code": None}}
    scripted.chat_body = (
        event({"role": "assistant", "content": "The"})
        + b"data: "
        + json.dumps(error).encode()
        + b"\n\n"
        + DONE
    )
    result = chat(scripted.url)
    assert result.error == "server error mid-stream: the model crashed"
    assert result.response_text == "The"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": {"message": "Invalid API key"}}, "HTTP 401: Invalid API key"),
        (404, {"error": {"message": "model 'm' not found", "type": "not_found_error"}}, None),
        (404, {"error": {"message": "The model `m` does not exist.", "code": 404}}, None),
        (500, {"error": {"message": "out of memory"}}, "HTTP 500: out of memory"),
        (500, b"", "HTTP 500: (empty body)"),
        (401, b"", "HTTP 401: (empty body)"),
        (503, {"error": "server busy"}, "HTTP 503: server busy"),
    ],
)  # fmt: skip
def test_http_errors(
    scripted: ScriptedServer, status: int, body: dict[str, Any] | bytes, expected: str | None
) -> None:
    scripted.status = status
    scripted.content_type = "application/json"
    scripted.chat_body = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = chat(scripted.url)
    assert result.error == (expected or f"model 'm' not found on {scripted.url}")
    assert result.http_status == status


def test_comments_fields_multi_line_events_and_crlf(scripted: ScriptedServer) -> None:
    # One JSON object over two data lines, split between tokens (the newline joins them).
    head, tail = '{"choices": [{"index": 0,', '"delta": {"content": "Hello"}}]}'
    scripted.chat_body = (
        b": keep-alive comment\n\n"
        + b"event: message\nid: 1\ndata: "
        + head.encode()
        + b"\ndata:"
        + tail.encode()  # no space after the colon: nothing to strip
        + b"\n\n"
        + b'data: {"choices":[{"index":0,"delta":{"content":" world"}}]}\r\n\r\n'
        + b":another comment\n"
        + event({}, "stop")
        + b"data: [DONE]\n"  # the last blank line is missing
    )
    result = chat(scripted.url)
    assert result.error is None
    assert result.response_text == "Hello world"
    assert result.done_reason == "stop"
    assert result.chunk_count == 3


def test_without_usage_tokens_are_the_content_chunks(scripted: ScriptedServer) -> None:
    scripted.chat_body = (
        event({"role": "assistant", "content": "The"})
        + event({"content": " sky"})
        + event({}, "stop")
        + DONE
    )
    result = chat(scripted.url)
    assert result.error is None and result.eval_count is None
    assert result.prompt_eval_count is None
    figures = derive(result)
    assert figures["output_tokens"] == 2
    assert figures["eval_tokens_per_s"] is None


def test_reasoning_counts_for_ttft_and_is_kept_apart(scripted: ScriptedServer) -> None:
    scripted.chat_body = (
        event({"role": "assistant", "reasoning_content": "Hmm."})
        + event({"reasoning": " Sure."})
        + event({"content": "Yes"})
        + event({}, "stop")
        + DONE
    )
    result = chat(scripted.url)
    assert result.error is None
    assert result.thinking_text == "Hmm. Sure." and result.response_text == "Yes"
    assert len(result.token_offsets_s) == 3 and result.ttft_s == result.token_offsets_s[0]


@pytest.mark.parametrize(
    ("data", "shown"),
    [(b"null", "'null'"), (b"{not json", "'{not json'"), (b"[1, 2]", "'[1, 2]'")],
)
def test_data_that_is_not_a_chunk_is_an_error(
    scripted: ScriptedServer, data: bytes, shown: str
) -> None:
    scripted.chat_body = event({"content": "The"}) + b"data: " + data + b"\n\n" + DONE
    assert chat(scripted.url).error == f"malformed SSE data from server: {shown}"


def test_version_and_model_list(scripted: ScriptedServer) -> None:
    async def ask(host: str) -> tuple[str, list[str]]:
        backend = make_backend("openai", host)
        try:
            return await backend.version(), sorted(await backend.list_models())
        finally:
            await backend.aclose()

    assert asyncio.run(ask(scripted.url)) == ("llama.cpp (openai-compatible)", ["m"])
    scripted.server_header = ""
    scripted.models_body = b'{"object":"list","data":null}'
    assert asyncio.run(ask(scripted.url + "/v1")) == ("openai-compatible", [])
    scripted.models_body = b'{"data":[{"id":"qwen3:latest"},{"id":"a"},{"id":"a:latest"}]}'
    _, models = asyncio.run(ask(scripted.url))
    assert models == ["a", "a:latest", "qwen3", "qwen3:latest"]


def test_options_mapping() -> None:
    request = ChatRequest(
        "m",
        [],
        {
            "num_predict": -1,
            "temperature": 0.0,
            "top_p": 0.9,
            "stop": ["\n"],
            "num_ctx": 4096,
            "repeat_penalty": 1.1,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
        },
    )
    body = request_body(request)
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == {
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "top_p": 0.9,
        "stop": ["\n"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
    }
    assert request_body(ChatRequest("m", [], {"num_predict": 64}))["max_tokens"] == 64


# ---- the API key ------------------------------------------------------------------------------


def test_the_key_is_sent_and_stored_nowhere(
    ollama: OllamaDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOVABENCH_TEST_KEY", KEY)
    path = write_suite(
        tmp_path / "s.yaml", ollama.url, backend="openai", api_key_env="NOVABENCH_TEST_KEY"
    )
    db = tmp_path / "db.duckdb"
    store = Store(db)
    outcome = run_suite(load_suite(path), store)
    assert outcome.exit_code == 0
    v1 = [r for r in ollama.requests if r.path.startswith("/v1/")]
    assert v1 and {r.headers.get("authorization") for r in v1} == {f"Bearer {KEY}"}

    pages = render_all(store, outcome.run_id, tmp_path / "reports")
    stored = db.read_bytes()
    assert b"api_key_env: NOVABENCH_TEST_KEY" in stored  # the suite text: the grep can see
    assert KEY.encode() not in stored
    for page in pages:
        assert KEY not in html.unescape(page.read_text())
    with duckdb.connect(str(db), read_only=True) as con:
        tables = [
            t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        ]
        for table in tables:
            assert KEY not in str(con.execute(f'SELECT * FROM "{table}"').fetchall()), table


def test_no_key_no_authorization_header(scripted: ScriptedServer) -> None:
    scripted.chat_body = NEW_FORM
    assert chat(scripted.url).ok
    assert chat(scripted.url, api_key=KEY).ok
    sent = [r["headers"].get("Authorization") for r in scripted.requests]
    assert sent == [None, f"Bearer {KEY}"]


def test_a_key_echoed_in_an_error_is_redacted(scripted: ScriptedServer) -> None:
    scripted.status = 401
    scripted.chat_body = json.dumps({"error": {"message": f"bad key {KEY}"}}).encode()
    result = chat(scripted.url, api_key=KEY)
    assert result.error == "HTTP 401: bad key [api key]"


def test_a_missing_key_variable_fails_the_rows(
    ollama: OllamaDouble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOVABENCH_TEST_KEY", raising=False)
    path = write_suite(
        tmp_path / "s.yaml", ollama.url, backend="openai", api_key_env="NOVABENCH_TEST_KEY"
    )
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(load_suite(path), store)
    assert outcome.exit_code == 1
    assert {r["error"] for r in store.results(outcome.run_id)} == {
        "environment variable NOVABENCH_TEST_KEY (api_key_env) is not set"
    }
    assert not [r for r in ollama.requests if r.path == "/v1/chat/completions"]
