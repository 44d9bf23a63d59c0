"""`make perf` end to end at a tiny size: every client streams, and every figure is computed.

No timing assertions: the benchmark itself is `python -m tests.perf`, not a test.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from novabench.config.reading import parse_suite
from novabench.engines import ChatRequest
from novabench.engines.ollama import OllamaBackend
from novabench.engines.streaming import BODY_END_TIMEOUT_S
from novabench.records import RequestResult
from tests.ollama_double import FakeModel, OllamaDouble
from tests.perf.__main__ import main
from tests.perf.clients import CLIENT_NAMES
from tests.perf.loadmode import LoadConfig, load_suite_text, run_load_phase
from tests.perf.server import DoubleProcess, reply_text

TOKENS = 20
REQUESTS = 4
LEVELS = (1, 4)
FAST_LEVEL = 3
LOAD_STREAMS = 8
LOAD_REQUESTS = 2 * LOAD_STREAMS


def test_reply_splits_into_the_asked_number_of_tokens() -> None:
    assert len(reply_text(TOKENS).split()) == TOKENS


def test_double_process_is_reaped() -> None:
    with DoubleProcess(TOKENS, ttft_ms=5, interval_ms=1, num_parallel=2) as double:
        process = double.process
        assert process is not None and process.poll() is None
    assert process.poll() is not None


def test_harness_runs_every_client_at_each_level(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "perf.json"
    argv = [
        *("--levels", ",".join(map(str, LEVELS)), "--tokens", str(TOKENS)),
        *("--requests-per-level", str(REQUESTS), "--rounds", "1", "--no-pin"),
        *("--ttft-ms", "10", "--flood-streams", "2", "--flood-requests", "2"),
        *("--fast-levels", str(FAST_LEVEL), "--fast-interval-ms", "3"),
        *("--load-levels", "2", "--load-requests", "3", "--load-rounds", "1"),
        *("--lag-levels", "2", "--lag-rounds", "1"),
        *("--json", str(out)),
    ]
    assert main(argv) == 0

    printed = capsys.readouterr().out
    assert "novabench, live display on" in printed and "Targets" in printed
    document = json.loads(out.read_text())
    results = [run for run in document["results"] if not run["flood"] and not run["fast"]]
    assert [(r["client"], r["concurrency"]) for r in results] == [
        (name, level) for level in LEVELS for name in CLIENT_NAMES
    ]
    fast = [run for run in document["results"] if run["fast"]]
    assert [(r["client"], r["concurrency"], r["itl_cfg_ms"]) for r in fast] == [
        (name, FAST_LEVEL, 3.0) for name in CLIENT_NAMES
    ]
    # One request per stream per round at a fast level.
    assert all((r["requests"], r["failed"], r["mismatched"]) == (FAST_LEVEL, 0, 0) for r in fast)
    flood = [run for run in document["results"] if run["flood"]]
    assert [run["client"] for run in flood] == list(CLIENT_NAMES)
    assert all(run["failed"] == 0 and run["cpu_us_per_token"] > 0 for run in flood)
    for run in results:
        assert (run["requests"], run["failed"], run["mismatched"]) == (REQUESTS, 0, 0)
        assert run["tokens"] == REQUESTS * TOKENS
        for key in (
            "ttft_true_ms",
            "ttft_measured_ms",
            "ttft_error_ms",
            "ttft_error_pct",
            "itl_error_pct",
            "tps_error_pct",
            "lag_p50_ms",
            "lag_p95_ms",
        ):
            assert math.isfinite(run[key]), (run["client"], key)
        # Sanity only: the double's truth and the client's clock are the same clock.
        assert 0 < run["ttft_true_ms"] < 10_000 and run["ttft_measured_ms"] > 0
        assert abs(run["ttft_error_ms"]) < 1_000 and run["cpu_us_per_token"] > 0
    assert [
        (level["accuracy"]["concurrency"], level["stored_rows"], level["accuracy"]["failed"])
        for level in document["load_mode"]
    ] == [(2, 3, 0)]
    assert document["load_config"]["levels"] == [2]
    targets = {v["target"]: v["met"] for v in document["verdicts"]}
    assert len(targets) == 7
    assert any(
        target.startswith("load mode (runner, DuckDB, live display) sustains 2 streams")
        for target in targets
    )
    assert targets["TTFT error < 5% at 256 streams"] is None  # no 256 level in this run
    assert f"timing error < 5% (TTFT, ITL, tokens/s) at {FAST_LEVEL} streams, 3 ms/token" in (
        targets
    )


def test_load_suite_gives_every_request_its_own_prompt() -> None:
    suite = parse_suite(load_suite_text("http://127.0.0.1:1", 4, 10, LoadConfig(levels=(4,))))
    texts = [prompt.text for prompt in suite.load_prompts()]
    assert len(texts) == len(set(texts)) == 10
    assert suite.prompts[0].text not in texts  # the warm-up has its own
    assert suite.load is not None and suite.load.requests_at(4) == 10


def test_load_phase_matches_every_stored_request_to_its_truth() -> None:
    config = LoadConfig(
        levels=(LOAD_STREAMS,), tokens=TOKENS, ttft_ms=10, interval_ms=3, pin_cpus=False, rounds=1
    )
    [level] = run_load_phase(config)
    run = level.accuracy
    assert level.status == "complete" and level.errors == []
    assert (level.stored_rows, run.requests, run.failed) == (LOAD_REQUESTS, LOAD_REQUESTS, 0)
    assert (run.mismatched, level.unclaimed) == (0, 0)
    assert run.tokens == (LOAD_REQUESTS + 1) * TOKENS  # the warm-up's tokens count for CPU
    for value in (
        run.ttft_true_ms,
        run.ttft_measured_ms,
        run.ttft_error_pct,
        run.itl_error_pct,
        run.tps_error_pct,
        run.lag_p95_ms,
        run.cpu_us_per_token,
        level.level_tokens_per_s,
        level.true_tokens_per_s,
        level.level_tokens_per_s_error_pct,
        level.level_ttft_p95_ms,
        level.true_ttft_p95_ms,
    ):
        assert value is not None and math.isfinite(value)
    # Sanity only: the runner's send stamp and the double's writes share one clock.
    assert 0 < run.ttft_true_ms < 10_000 and abs(run.ttft_error_ms or 0.0) < 1_000
    assert level.run_wall_s >= level.phase_wall_s > 0


def test_unknown_client_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--clients", "curl"])
    assert "unknown client 'curl'" in capsys.readouterr().err


# The client under benchmark: its send path is part of every TTFT the harness reports.


def _result() -> RequestResult:
    return RequestResult("load", "m", "h", "p", 0, False, datetime.now(UTC))


def test_novabench_streams_reuse_one_connection() -> None:
    async def chat_three_times(url: str) -> list[RequestResult]:
        backend = OllamaBackend(url)
        results = []
        for _ in range(3):
            results.append(_result())
            request = ChatRequest("llama3.2", [{"role": "user", "content": "hi"}])
            await backend.chat(request, results[-1])
        await backend.aclose()
        return results

    with OllamaDouble([FakeModel("llama3.2", ttft_s=0.001, token_interval_s=0.001)]) as double:
        results = asyncio.run(chat_three_times(double.url))
        chats = [r for r in double.requests if r.path == "/api/chat"]
    assert all(result.ok and result.done_reason == "stop" for result in results)
    assert len({request.connection_id for request in chats}) == 1
    for result in results:  # end-to-end still ends at the done line
        assert result.e2e_s is not None and result.e2e_s >= result.token_offsets_s[-1]


def test_a_body_that_never_ends_after_done_does_not_fail_the_request() -> None:
    lines = (
        b'{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}\n',
        b'{"model":"m","message":{"role":"assistant","content":""},"done":true,'
        b'"done_reason":"stop","eval_count":1}\n',
    )

    async def serve_and_chat() -> tuple[RequestResult, float]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n")
            for line in lines:
                writer.write(b"%x\r\n%b\r\n" % (len(line), line))
            await asyncio.sleep(30)  # no terminating chunk

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        backend = OllamaBackend(f"http://127.0.0.1:{port}")
        result = _result()
        started = time.perf_counter()
        await backend.chat(ChatRequest("m", [{"role": "user", "content": "hi"}]), result)
        waited = time.perf_counter() - started
        await backend.aclose()
        server.close()
        return result, waited

    result, waited_s = asyncio.run(serve_and_chat())
    assert result.ok and result.response_text == "Hi" and result.eval_count == 1
    assert waited_s < BODY_END_TIMEOUT_S + 5
