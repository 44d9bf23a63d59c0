"""Conformance tests for the Ollama double, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ollama_double import QUEUE_FULL_MESSAGE, FakeModel, Fault, OllamaDouble

METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)
REPLY = "I am fine, thank you."
REPLY_TOKENS = ["I", " am", " fine,", " thank", " you."]
UTC_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
LOCAL_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
NS = 1_000_000_000


@contextmanager
def serving(*models: FakeModel, **kwargs: Any) -> Iterator[tuple[OllamaDouble, httpx.Client]]:
    """A started double and a client bound to it."""
    double = OllamaDouble(models=list(models) or [FakeModel("llama3.2")], **kwargs)
    with double, httpx.Client(base_url=double.url, timeout=10) as client:
        yield double, client


def chat_body(model: str = "llama3.2", text: str = "How are you?", **extra: Any) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def stream_lines(client: httpx.Client, path: str, body: dict) -> tuple[httpx.Response, list[dict]]:
    """POST and collect the NDJSON lines of a streaming answer."""
    with client.stream("POST", path, json=body) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    return response, lines


def concurrently(count: int, call: Any) -> list[Any]:
    """Run `call()` in `count` threads that start together."""
    barrier = threading.Barrier(count)

    def run() -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(run) for _ in range(count)]
        return [future.result() for future in futures]


# ---- info routes ----------------------------------------------------------------------------


def test_root_version_and_tags() -> None:
    with serving(FakeModel("llama3.2"), FakeModel("nemotron-mini")) as (_, client):
        root = client.get("/")
        assert (root.status_code, root.text) == (200, "Ollama is running")
        assert root.headers["content-type"] == "text/plain; charset=utf-8"
        head = client.head("/")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len("Ollama is running"))
        assert client.get("/api/version").json() == {"version": "0.12.6"}
        assert client.head("/api/tags").status_code == 200

        tags = client.get("/api/tags").json()["models"]
        assert [tag["name"] for tag in tags] == ["llama3.2:latest", "nemotron-mini:latest"]
        for tag in tags:
            assert tag["model"] == tag["name"]
            assert isinstance(tag["size"], int)
            assert re.fullmatch(r"[0-9a-f]{64}", tag["digest"])
            assert LOCAL_TIMESTAMP.match(tag["modified_at"])
            assert tag["details"]["format"] == "gguf"
            assert tag["details"]["families"] == [tag["details"]["family"]]


def test_unknown_route_and_wrong_method_answer_plain_text() -> None:
    with serving() as (_, client):
        missing = client.get("/api/nope")
        assert (missing.status_code, missing.text) == (404, "404 page not found")
        assert missing.headers["content-type"].startswith("text/plain")
        wrong = client.get("/api/chat")
        assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")
        assert client.head("/api/ps").status_code == 405


def test_show_describes_the_model_and_normalises_not_found() -> None:
    model = FakeModel("llama3.2", context_length=8192, capabilities=["completion", "tools"])
    with serving(model) as (_, client):
        shown = client.post("/api/show", json={"model": "Llama3.2"}).json()
        assert shown["model_info"]["llama.context_length"] == 8192
        assert shown["model_info"]["general.architecture"] == "llama"
        assert shown["details"]["parameter_size"] == "3.2B"
        assert shown["capabilities"] == ["completion", "tools"]
        assert shown["parameters"].startswith('stop                           "<|')
        assert LOCAL_TIMESTAMP.match(shown["modified_at"])
        assert client.post("/api/show", json={"name": "llama3.2"}).status_code == 200

        missing = client.post("/api/show", json={"model": "llama9"})
        assert missing.status_code == 404
        assert missing.json() == {"error": "model 'llama9:latest' not found"}
        assert client.post("/api/show", json={}).json() == {"error": "model is required"}


# ---- chat and generate ----------------------------------------------------------------------


def test_chat_stream_shape() -> None:
    with serving() as (_, client):
        response, lines = stream_lines(client, "/api/chat", chat_body("LLAMA3.2"))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["transfer-encoding"] == "chunked"
        *chunks, final = lines
        assert [chunk["message"]["content"] for chunk in chunks] == REPLY_TOKENS
        for line in lines:
            assert line["model"] == "LLAMA3.2"  # echoed exactly as sent
            assert UTC_TIMESTAMP.match(line["created_at"])
        for chunk in chunks:
            assert chunk["done"] is False and chunk["message"]["role"] == "assistant"
            assert not set(METRICS) & set(chunk)
            assert "done_reason" not in chunk
        assert final["done"] is True and final["done_reason"] == "stop"
        assert final["message"] == {"role": "assistant", "content": ""}
        for name in METRICS:
            assert isinstance(final[name], int) and final[name] > 0, name
        assert final["eval_count"] == len(REPLY_TOKENS)
        assert final["total_duration"] >= (
            final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]
        )


def test_generate_stream_shape() -> None:
    with serving() as (_, client):
        _, lines = stream_lines(client, "/api/generate", {"model": "llama3.2", "prompt": "Hi"})
        *chunks, final = lines
        assert "".join(chunk["response"] for chunk in chunks) == REPLY
        assert all("message" not in line for line in lines)
        assert final["response"] == "" and final["done_reason"] == "stop"
        assert len(final["context"]) == final["prompt_eval_count"] + final["eval_count"]
        assert all(name in final for name in METRICS)

        _, raw_lines = stream_lines(
            client, "/api/generate", {"model": "llama3.2", "prompt": "Hi", "raw": True}
        )
        assert "context" not in raw_lines[-1]


def test_stream_false_returns_one_object_with_the_whole_text() -> None:
    with serving() as (_, client):
        chat = client.post("/api/chat", json=chat_body(stream=False))
        assert chat.headers["content-type"] == "application/json; charset=utf-8"
        body = chat.json()
        assert body["message"] == {"role": "assistant", "content": REPLY}
        assert body["done"] is True and body["done_reason"] == "stop"
        assert all(isinstance(body[name], int) for name in METRICS)

        generated = client.post(
            "/api/generate", json={"model": "llama3.2", "prompt": "Hi", "stream": False}
        ).json()
        assert generated["response"] == REPLY and "context" in generated


def test_callable_reply_gets_the_last_user_message() -> None:
    model = FakeModel("echo", reply=lambda text: f"You said: {text}")
    with serving(model) as (_, client):
        body = {
            "model": "echo",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "ping"},
            ],
            "stream": False,
        }
        assert client.post("/api/chat", json=body).json()["message"]["content"] == "You said: ping"


def test_num_predict_cuts_the_reply_with_length() -> None:
    with serving() as (_, client):
        _, lines = stream_lines(client, "/api/chat", chat_body(options={"num_predict": 2}))
        assert [line["message"]["content"] for line in lines[:-1]] == REPLY_TOKENS[:2]
        assert lines[-1]["done_reason"] == "length"
        assert lines[-1]["eval_count"] == 2


def test_thinking_model_streams_thinking_first() -> None:
    thinker = FakeModel("qwen3", thinking="Okay, the user greets me.")
    with serving(thinker, FakeModel("llama3.2")) as (_, client):
        _, lines = stream_lines(client, "/api/chat", chat_body("qwen3"))
        *chunks, final = lines
        thinking = [chunk for chunk in chunks if chunk["message"].get("thinking")]
        assert [chunk["message"]["content"] for chunk in thinking] == [""] * 5
        assert chunks[: len(thinking)] == thinking  # all thinking comes before the content
        content = "".join(chunk["message"]["content"] for chunk in chunks)
        assert content == REPLY
        assert final["eval_count"] == 5 + len(REPLY_TOKENS)

        off = client.post("/api/chat", json=chat_body("qwen3", think=False, stream=False)).json()
        assert "thinking" not in off["message"] and off["eval_count"] == len(REPLY_TOKENS)
        whole = client.post(
            "/api/generate", json={"model": "qwen3", "prompt": "Hi", "stream": False}
        )
        assert whole.json()["thinking"] == "Okay, the user greets me."

        refused = client.post("/api/chat", json=chat_body("llama3.2", think=True))
        assert refused.status_code == 400
        assert refused.json() == {"error": '"llama3.2" does not support thinking'}
        invalid = client.post("/api/chat", json=chat_body("qwen3", think="loud"))
        assert invalid.status_code == 400 and "invalid think value" in invalid.json()["error"]


def test_error_answers() -> None:
    with serving() as (_, client):
        cases = [
            ("/api/chat", chat_body("Llama9"), 404, "model 'Llama9' not found"),
            ("/api/generate", {"model": "llama9", "prompt": "x"}, 404, "model 'llama9' not found"),
            ("/api/generate", {"prompt": "x"}, 404, "model '' not found"),
            ("/api/chat", {"messages": []}, 400, "model is required"),
            (
                "/api/chat",
                chat_body(keep_alive="3600"),
                400,
                'time: missing unit in duration "3600"',
            ),
            ("/api/chat", chat_body(keep_alive=True), 400, "Unsupported type: 'bool'"),
            (
                "/api/chat",
                [1],
                400,
                "json: cannot unmarshal array into Go value of type api.ChatRequest",
            ),
            (
                "/api/chat",
                chat_body(options={"temperature": "hot"}),
                500,
                'option "temperature" must be of type float32',
            ),
        ]
        for path, body, status, message in cases:
            response = client.post(path, json=body)
            assert (response.status_code, response.json()) == (status, {"error": message}), body
        empty = client.post("/api/chat")
        assert (empty.status_code, empty.json()) == (400, {"error": "missing request body"})
        bad = client.post("/api/chat", content=b"x{")
        assert bad.status_code == 400
        assert bad.json() == {"error": "invalid character 'x' looking for beginning of value"}


def test_body_is_parsed_regardless_of_content_type_and_recorded() -> None:
    with serving() as (double, client):
        body = json.dumps(chat_body(stream=False)).encode()
        response = client.post("/api/chat", content=body, headers={"Content-Type": "text/plain"})
        assert response.status_code == 200
        recorded = double.requests[-1]
        assert (recorded.method, recorded.path) == ("POST", "/api/chat")
        assert recorded.json == chat_body(stream=False)
        assert recorded.headers["Content-Type"] == "text/plain"
        assert recorded.metrics is not None and recorded.metrics["eval_count"] == 5


# ---- timing and metrics ---------------------------------------------------------------------


def test_metrics_reflect_configured_timings_cold_then_warm() -> None:
    model = FakeModel(
        "llama3.2",
        reply=" ".join(["word"] * 10),
        load_s=0.15,
        prompt_token_s=0.002,
        ttft_s=0.05,
        token_interval_s=0.02,
    )
    with serving(model) as (_, client):
        started = time.perf_counter()
        with client.stream("POST", "/api/chat", json=chat_body(text="hello there")) as response:
            arrivals = []
            lines = []
            for line in response.iter_lines():
                arrivals.append(time.perf_counter())
                lines.append(json.loads(line))
        client_total_s = time.perf_counter() - started
        cold = lines[-1]
        assert 0.1 * NS <= cold["load_duration"] <= 1.0 * NS
        assert cold["prompt_eval_count"] == 10  # 2 words + 4 per message + 4 per prompt
        assert 0.01 * NS <= cold["prompt_eval_duration"] <= 0.5 * NS
        assert 0.15 * NS <= cold["eval_duration"] <= 1.0 * NS
        assert 25 <= cold["eval_count"] / cold["eval_duration"] * NS <= 55  # ~1/interval
        assert cold["total_duration"] >= (
            cold["load_duration"] + cold["prompt_eval_duration"] + cold["eval_duration"]
        )
        assert cold["total_duration"] <= client_total_s * NS
        # What the client sees from first chunk to done agrees with the server's eval_duration.
        client_eval_s = arrivals[-1] - arrivals[0]
        assert abs(client_eval_s - cold["eval_duration"] / NS) < 0.15

        warm = client.post("/api/chat", json=chat_body(text="other words", stream=False)).json()
        assert 0 < warm["load_duration"] < 0.1 * NS
        assert warm["total_duration"] < cold["total_duration"]


def test_token_schedule_does_not_drift() -> None:
    model = FakeModel("llama3.2", reply=" ".join(["w"] * 100), token_interval_s=0.003)
    with serving(model) as (_, client):
        final = client.post("/api/chat", json=chat_body(stream=False)).json()
        # Absolute target times: 100 tokens at 3 ms take ~0.3 s, not 100 x (3 ms + wake-up lag).
        assert 0.27 * NS <= final["eval_duration"] <= 0.37 * NS


def test_repeated_prompt_is_cached_but_fully_counted() -> None:
    model = FakeModel("llama3.2", prompt_token_s=0.005)
    text = " ".join(["token"] * 30)
    with serving(model) as (_, client):
        first = client.post("/api/chat", json=chat_body(text=text, stream=False)).json()
        again = client.post("/api/chat", json=chat_body(text=text, stream=False)).json()
        assert again["prompt_eval_count"] == first["prompt_eval_count"] == 38
        assert first["prompt_eval_duration"] >= 0.1 * NS
        assert again["prompt_eval_duration"] < first["prompt_eval_duration"] / 4


def test_one_slot_serialises_concurrent_requests() -> None:
    model = FakeModel("llama3.2", reply=" ".join(["w"] * 8), token_interval_s=0.015)
    with serving(model, num_parallel=1) as (double, client):
        client.post("/api/generate", json={"model": "llama3.2"})  # warm: no load in the race

        def ask() -> dict:
            with httpx.Client(base_url=double.url, timeout=10) as own:
                return own.post("/api/chat", json=chat_body(stream=False)).json()

        first, second = sorted(concurrently(2, ask), key=lambda r: r["total_duration"])
        # The second waited for the first's generation: in its total, not in its load or eval.
        assert second["total_duration"] >= first["eval_duration"] + 0.8 * second["eval_duration"]
        assert second["total_duration"] > 1.6 * second["eval_duration"]
        assert second["eval_duration"] < 0.5 * NS
        assert second["load_duration"] < 0.1 * NS


def test_two_slots_let_requests_overlap() -> None:
    model = FakeModel("llama3.2", reply=" ".join(["w"] * 8), token_interval_s=0.015)
    with serving(model, num_parallel=2) as (double, client):
        client.post("/api/generate", json={"model": "llama3.2"})

        def ask() -> dict:
            with httpx.Client(base_url=double.url, timeout=10) as own:
                return own.post("/api/chat", json=chat_body(stream=False)).json()

        for result in concurrently(2, ask):
            assert result["total_duration"] < 1.5 * result["eval_duration"]


def test_requests_queued_behind_a_cold_load_are_charged_the_load() -> None:
    with serving(FakeModel("llama3.2", load_s=0.2), num_parallel=2) as (double, _):

        def ask() -> dict:
            with httpx.Client(base_url=double.url, timeout=10) as own:
                return own.post("/api/chat", json=chat_body(stream=False)).json()

        loads = sorted(result["load_duration"] for result in concurrently(2, ask))
        # The later arrival waited for the rest of the load (minus its start skew), far above
        # the ~1 ms of a warm hand-off.
        assert loads[1] >= 0.15 * NS and loads[0] >= 0.03 * NS, loads
        assert ask()["load_duration"] < 0.05 * NS


def test_pending_queue_overflow_answers_503() -> None:
    with serving(FakeModel("llama3.2", load_s=0.3), max_queue=1) as (double, _):

        def ask() -> httpx.Response:
            with httpx.Client(base_url=double.url, timeout=10) as own:
                return own.post("/api/chat", json=chat_body(stream=False))

        with ThreadPoolExecutor(3) as pool:
            loading = pool.submit(ask)
            while not double.requests:
                time.sleep(0.005)
            time.sleep(0.05)  # the first request now holds the (serialised) load
            queued = [pool.submit(ask) for _ in range(2)]
            responses = [loading.result()] + [future.result() for future in queued]
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [200, 200, 503]
        rejected = next(response for response in responses if response.status_code == 503)
        assert rejected.json() == {"error": QUEUE_FULL_MESSAGE}


# ---- load, unload, keep_alive, ps -----------------------------------------------------------


def test_load_and_unload_shortcuts_and_ps() -> None:
    model = FakeModel("llama3.2", size_bytes=1000, size_vram=400, load_s=0.05)
    with serving(model) as (double, client):
        assert client.get("/api/ps").json() == {"models": []}
        loaded = client.post("/api/generate", json={"model": "llama3.2"})
        assert loaded.headers["content-type"] == "application/json; charset=utf-8"
        body = loaded.json()
        assert body["response"] == "" and body["done"] is True and body["done_reason"] == "load"
        assert not set(METRICS) & set(body)
        assert double.loaded_models() == ["llama3.2:latest"]

        (entry,) = client.get("/api/ps").json()["models"]
        assert entry["name"] == entry["model"] == "llama3.2:latest"
        assert (entry["size"], entry["size_vram"]) == (1000, 400)
        assert entry["context_length"] == 4096
        assert LOCAL_TIMESTAMP.match(entry["expires_at"])
        assert re.fullmatch(r"[0-9a-f]{64}", entry["digest"])

        unloaded = client.post(
            "/api/chat", json={"model": "llama3.2", "messages": [], "keep_alive": 0}
        ).json()
        assert unloaded["done_reason"] == "unload"
        assert unloaded["message"] == {"role": "assistant", "content": ""}
        assert client.get("/api/ps").json() == {"models": []}
        assert double.loaded_models() == []


def test_keep_alive_controls_expiry() -> None:
    with serving() as (double, client):
        client.post("/api/chat", json=chat_body(keep_alive=0, stream=False))
        assert double.loaded_models() == []  # unloaded right after the request

        client.post("/api/generate", json={"model": "llama3.2", "keep_alive": -1})
        (entry,) = client.get("/api/ps").json()["models"]
        assert int(entry["expires_at"][:4]) > 2300  # "forever"

        client.post("/api/generate", json={"model": "llama3.2", "keep_alive": "100ms"})
        assert double.loaded_models() == ["llama3.2:latest"]
        deadline = time.monotonic() + 3
        while double.loaded_models() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert double.loaded_models() == []

        client.post("/api/generate", json={"model": "llama3.2"})
        double.unload_all()
        assert double.loaded_models() == []


def test_changing_num_ctx_reloads_the_model() -> None:
    with serving(FakeModel("llama3.2", load_s=0.15)) as (_, client):
        client.post("/api/generate", json={"model": "llama3.2"})
        same = client.post("/api/chat", json=chat_body(stream=False)).json()
        assert same["load_duration"] < 0.075 * NS
        bigger = client.post(
            "/api/chat", json=chat_body(stream=False, options={"num_ctx": 8192})
        ).json()
        assert bigger["load_duration"] >= 0.1 * NS
        assert client.get("/api/ps").json()["models"][0]["context_length"] == 8192


# ---- faults ---------------------------------------------------------------------------------


def test_http_status_faults_are_consumed_in_order() -> None:
    busy = {"error": "server busy, please try again.  maximum pending requests exceeded"}
    with serving(FakeModel("llama3.2"), FakeModel("other")) as (double, client):
        double.add_fault("llama3.2", Fault.http_status(503, busy))
        double.add_fault("LLAMA3.2:latest", Fault.http_status(502, "bad gateway"))
        double.add_fault("llama3.2", Fault.http_status(500, None))

        client.post("/api/generate", json={"model": "llama3.2"})  # load shortcuts skip faults
        assert client.post("/api/chat", json=chat_body("other")).status_code == 200
        first = client.post("/api/chat", json=chat_body())
        assert (first.status_code, first.json()) == (503, busy)
        second = client.post("/api/generate", json={"model": "llama3.2", "prompt": "x"})
        assert (second.status_code, second.text) == (502, "bad gateway")
        third = client.post("/api/chat", json=chat_body())
        assert (third.status_code, third.content) == (500, b"")
        assert client.post("/api/chat", json=chat_body()).status_code == 200

        with pytest.raises(ValueError, match="no model 'nope'"):
            double.add_fault("nope", Fault.cut(1))


def test_error_line_fault() -> None:
    with serving() as (double, client):
        double.add_fault("llama3.2", Fault.error_line(2))
        response, lines = stream_lines(client, "/api/chat", chat_body())
        assert response.status_code == 200
        assert [line["message"]["content"] for line in lines[:2]] == REPLY_TOKENS[:2]
        assert lines[2:] == [{"error": "an error was encountered while running the model"}]

        double.add_fault("llama3.2", Fault.error_line(1, "boom"))
        whole = client.post("/api/chat", json=chat_body(stream=False))
        assert (whole.status_code, whole.json()) == (500, {"error": "boom"})


def test_cut_fault_closes_mid_body_or_ends_cleanly() -> None:
    with serving() as (double, client):
        double.add_fault("llama3.2", Fault.cut(2))
        received = []
        with (
            pytest.raises(httpx.RemoteProtocolError),
            client.stream("POST", "/api/chat", json=chat_body()) as response,
        ):
            for line in response.iter_lines():
                received.append(json.loads(line))
        assert [line["done"] for line in received] == [False, False]

        double.add_fault("llama3.2", Fault.cut(3, clean=True))
        _, lines = stream_lines(client, "/api/chat", chat_body())
        assert len(lines) == 3 and not any(line["done"] for line in lines)
        assert client.post("/api/chat", json=chat_body(stream=False)).status_code == 200


def test_malformed_fault_inserts_a_bad_line_then_continues() -> None:
    with serving() as (double, client):
        double.add_fault("llama3.2", Fault.malformed(1))
        with client.stream("POST", "/api/chat", json=chat_body()) as response:
            raw = list(response.iter_lines())
        assert raw[1] == "{not json"
        assert json.loads(raw[-1])["done"] is True
        assert len(raw) == len(REPLY_TOKENS) + 2


def test_stall_fault_pauses_mid_stream() -> None:
    with serving(FakeModel("llama3.2", token_interval_s=0.01)) as (double, client):
        double.add_fault("llama3.2", Fault.stall(2, 0.2))
        arrivals = []
        with client.stream("POST", "/api/chat", json=chat_body()) as response:
            for line in response.iter_lines():
                arrivals.append((time.perf_counter(), json.loads(line)))
        gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(arrivals)]
        assert gaps[1] >= 0.15  # between the 2nd and 3rd token
        assert max(gaps[:1] + gaps[2:]) < 0.12
        assert arrivals[-1][1]["eval_duration"] >= 0.2 * NS


def test_client_disconnect_cancels_the_request_and_frees_its_slot() -> None:
    with serving(num_parallel=1) as (double, client):
        double.add_fault("llama3.2", Fault.stall(1, 5.0))
        with client.stream("POST", "/api/chat", json=chat_body()) as response:
            next(response.iter_lines())
        # Closing the stream drops the connection; the stalled request must not hold the slot.
        with httpx.Client(base_url=double.url, timeout=10) as other:
            final = other.post("/api/chat", json=chat_body(stream=False)).json()
        assert final["total_duration"] < 2 * NS
        assert double.requests[0].metrics is None


def test_delay_headers_fault() -> None:
    with serving(FakeModel("llama3.2", load_s=0.01)) as (double, client):
        double.add_fault("llama3.2", Fault.delay_headers(0.2))
        started = time.perf_counter()
        with client.stream("POST", "/api/chat", json=chat_body()) as response:
            headers_after_s = time.perf_counter() - started
            lines = [json.loads(line) for line in response.iter_lines()]
        assert headers_after_s >= 0.15
        final = lines[-1]
        assert final["total_duration"] >= 0.2 * NS
        assert final["load_duration"] < 0.15 * NS


# ---- connections ----------------------------------------------------------------------------


def test_keep_alive_connection_serves_several_requests() -> None:
    with (
        serving() as (double, _),
        httpx.Client(base_url=double.url, limits=httpx.Limits(max_connections=1)) as client,
    ):
        stream_lines(client, "/api/chat", chat_body())
        client.post("/api/chat", json=chat_body(stream=False))
        client.get("/api/tags")
        stream_lines(client, "/api/generate", {"model": "llama3.2", "prompt": "again"})
        # A chunked request body (no Content-Length) is read too.
        chunked = client.post(
            "/api/chat", content=iter([b'{"model":"llama3.2",', b'"messages":[]}'])
        )
        assert chunked.json()["done_reason"] == "load"
        assert "content-length" not in double.requests[-1].headers
        assert len({request.connection_id for request in double.requests}) == 1


def test_raw_http_pipelined_requests_and_connection_close() -> None:
    with serving() as (double, _):
        with socket.create_connection(("127.0.0.1", double.port), timeout=5) as sock:
            sock.sendall(
                b"GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert data.endswith(b"Ollama is running")
        assert b"Connection: close" in data


def test_many_concurrent_streams_keep_their_schedule() -> None:
    model = FakeModel("llama3.2", reply=" ".join(["w"] * 20), token_interval_s=0.01)
    double = OllamaDouble(models=[model], num_parallel=64)

    async def one(client: httpx.AsyncClient) -> dict:
        async with client.stream("POST", "/api/chat", json=chat_body()) as response:
            lines = [json.loads(line) async for line in response.aiter_lines()]
        return lines[-1]

    async def run_all() -> list[dict]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=double.url, limits=limits, timeout=20) as client:
            return await asyncio.gather(*(one(client) for _ in range(64)))

    with double:
        finals = asyncio.run(run_all())
    assert all(final["done"] and final["eval_count"] == 20 for final in finals)
    assert max(final["eval_duration"] for final in finals) < 0.6 * NS  # 0.2 s nominal


def test_start_and_stop_are_idempotent() -> None:
    double = OllamaDouble()
    double.stop()
    double.start()
    double.start()
    assert httpx.get(double.url + "/").text == "Ollama is running"
    double.stop()
    double.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(double.url + "/", timeout=1)


# ---- /v1 and other endpoints ----------------------------------------------------------------


def sse_events(response: httpx.Response) -> list[Any]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_v1_chat_completions_stream() -> None:
    with serving() as (_, client):
        body = {**chat_body(), "stream": True, "stream_options": {"include_usage": True}}
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.headers["content-type"] == "text/event-stream"
            events = sse_events(response)
        *chunks, finish, usage, done = events
        assert done == "[DONE]"
        assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "I"}
        assert all("role" not in chunk["choices"][0]["delta"] for chunk in chunks[1:])
        assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == REPLY
        assert finish["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 5
        assert {event["created"] for event in events[:-1]} == {chunks[0]["created"]}
        assert chunks[0]["object"] == "chat.completion.chunk"

        without_usage = {**chat_body(), "stream": True}
        with client.stream("POST", "/v1/chat/completions", json=without_usage) as response:
            events = sse_events(response)
        assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1] == "[DONE]"


def test_v1_chat_completions_non_stream_errors_and_models() -> None:
    with serving(FakeModel("llama3.2", thinking="Hmm.")) as (_, client):
        body = client.post("/v1/chat/completions", json=chat_body()).json()
        assert body["object"] == "chat.completion"
        choice = body["choices"][0]
        assert choice["message"] == {"role": "assistant", "content": REPLY, "reasoning": "Hmm."}
        assert choice["finish_reason"] == "stop"
        assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}

        missing = client.post("/v1/chat/completions", json=chat_body("nope"))
        assert missing.status_code == 404
        assert missing.json() == {
            "error": {
                "message": "model 'nope' not found",
                "type": "not_found_error",
                "param": None,
                "code": None,
            }
        }
        empty = client.post("/v1/chat/completions", json={"model": "llama3.2", "messages": []})
        assert empty.json()["error"]["type"] == "invalid_request_error"

        models = client.get("/v1/models").json()
        assert models["object"] == "list"
        assert [entry["id"] for entry in models["data"]] == ["llama3.2:latest"]
        assert client.get("/v1/models/llama3.2").json()["id"] == "llama3.2"


def test_pull_and_embed() -> None:
    with serving() as (_, client):
        _, lines = stream_lines(client, "/api/pull", {"model": "llama3.2"})
        assert lines[0] == {"status": "pulling manifest"}
        assert lines[-1] == {"status": "success"}
        layer = lines[1]
        assert layer["status"] == "pulling " + layer["digest"][7:19]
        single = client.post("/api/pull", json={"model": "llama3.2", "stream": False})
        assert single.json() == {"status": "success"}
        _, failed = stream_lines(client, "/api/pull", {"model": "llama9"})
        assert failed[-1] == {"error": "pull model manifest: file does not exist"}

        embedded = client.post("/api/embed", json={"model": "llama3.2", "input": ["a", "b c"]})
        body = embedded.json()
        assert body["model"] == "llama3.2" and len(body["embeddings"]) == 2
        assert body["prompt_eval_count"] == 3 and body["total_duration"] >= body["load_duration"]


def test_cli_serves_until_interrupted() -> None:
    repo_root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.ollama_double", "--port", "0", "--models", "llama3.2"],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = re.search(r"http://[\d.]+:\d+", process.stdout.readline())
        assert url is not None
        assert httpx.get(url.group(0) + "/").text == "Ollama is running"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_timings_route_reports_what_the_double_did() -> None:
    model = FakeModel("llama3.2", ttft_s=0.02, token_interval_s=0.005)
    with serving(model) as (_, client):
        before = time.perf_counter_ns()
        stream_lines(client, "/api/chat", chat_body(text="timed"))
        client.get("/api/version")  # not a generation: not listed
        timings = client.get("/_double/timings").json()
        assert timings["clock"] == "perf_counter_ns"
        [entry] = timings["requests"]
        assert entry["user_text"] == "timed" and entry["completed"]
        writes = entry["token_write_ns"]
        assert len(writes) == len(REPLY_TOKENS)
        # Same clock as this process: received after we sent, first token after the TTFT.
        assert before < entry["received_ns"] < writes[0] <= time.perf_counter_ns()
        assert writes[0] - entry["received_ns"] >= 0.02 * NS
        assert writes == sorted(writes) and writes[-1] - writes[0] >= 4 * 0.005 * NS * 0.9
        assert entry["buffered_writes"] == 0

        assert len(client.get("/_double/timings?clear=1").json()["requests"]) == 1
        assert client.get("/_double/timings").json()["requests"] == []
