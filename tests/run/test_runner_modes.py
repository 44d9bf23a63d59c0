"""Running suites against the Ollama double: modes, warm-up, timings, failures, what is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from novabench import Store, load_suite, run_suite
from novabench.errors import HostUnreachableError
from tests.conftest import free_port, write_suite
from tests.ollama_double import FakeModel, Fault, OllamaDouble


def test_both_modes_store_every_request(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url))
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)

    assert outcome.status == "complete" and outcome.exit_code == 0
    rows = store.results(outcome.run_id)
    measured = [r for r in rows if not r["is_warmup"]]
    warmups = [r for r in rows if r["is_warmup"]]
    # 2 modes x 2 models x 2 prompts x 2 repetitions, plus 1 warm-up per model per mode
    assert len(measured) == 16
    assert len(warmups) == 4
    assert all(r["error"] is None for r in rows)
    assert {(r["mode"], r["model"]) for r in measured} == {
        (m, n) for m in ("parallel", "sequential") for n in ("llama3.2", "nemotron-mini")
    }
    assert store.get_run(outcome.run_id)["status"] == "complete"
    assert {p["mode"] for p in store.phases(outcome.run_id)} == {"parallel", "sequential"}


def test_result_rows_hold_client_timings_and_server_fields(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, modes="[sequential]"))
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)
    row = next(r for r in store.results(outcome.run_id) if not r["is_warmup"])

    tokens = len(["I", "am", "doing", "well,", "thank", "you", "for", "asking."])
    assert row["model"] == "llama3.2"
    assert row["response_text"] == "I am doing well, thank you for asking."
    assert row["eval_count"] == tokens
    assert len(row["token_offsets_s"]) == tokens
    assert row["token_offsets_s"] == sorted(row["token_offsets_s"])
    assert row["ttft_s"] == row["token_offsets_s"][0]
    assert 0 < row["ttft_s"] < row["e2e_s"]
    assert row["done_reason"] == "stop"
    assert row["chunk_count"] == tokens + 1  # the done line carries no content
    for field in (
        "prompt_eval_count",
        "prompt_eval_duration_ns",
        "eval_duration_ns",
        "load_duration_ns",
        "total_duration_ns",
    ):
        assert row[field] and row[field] > 0, field
    # 7 gaps of 4 ms between tokens: the server cannot send the last token sooner after the
    # request, so its arrival is at least that late (gaps themselves can shrink on a busy client)
    assert row["token_offsets_s"][-1] >= (tokens - 1) * 0.004


def test_warmup_requests_are_flagged_and_run_first(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, modes="[sequential]", warmup=2))
    store = Store(tmp_path / "db.duckdb")
    rows = store.results(run_suite(suite, store).run_id)
    llama = [r for r in rows if r["model"] == "llama3.2"]
    assert [r["is_warmup"] for r in llama[:2]] == [True, True]
    assert not any(r["is_warmup"] for r in llama[2:])
    # the first request loads the model: its load time is charged there, not to measured rows
    assert llama[0]["load_duration_ns"] > max(r["load_duration_ns"] for r in llama[2:])


def test_parallel_mode_overlaps_models_and_speedup_is_measured(tmp_path: Path) -> None:
    models = [
        FakeModel(n, reply=" ".join(["word"] * 20), token_interval_s=0.01) for n in ("a", "b", "c")
    ]
    with OllamaDouble(models=models) as double:
        suite = load_suite(
            write_suite(
                tmp_path / "s.yaml",
                double.url,
                models="[a, b, c]",
                prompts='["Hi."]',
                repetitions=3,
                warmup=1,
            )
        )
        outcome = run_suite(suite, Store(tmp_path / "db.duckdb"))
    # three models streaming 200 ms each: at once they take about a third of the time
    assert outcome.speedup is not None and outcome.speedup > 1.5
    assert outcome.wall_s_by_mode["sequential"] >= 9 * 0.19


def test_sequential_mode_sends_one_request_at_a_time(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, modes="[sequential]"))
    store = Store(tmp_path / "db.duckdb")
    rows = sorted(store.results(run_suite(suite, store).run_id), key=lambda r: r["start_offset_s"])
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["start_offset_s"] >= before["start_offset_s"] + before["e2e_s"] - 1e-3


def test_missing_model_fails_its_rows_and_others_still_run(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, models="[llama3.2, nope]"))
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)
    rows = store.results(outcome.run_id)
    missing = [r for r in rows if r["model"] == "nope"]
    assert len(missing) == 8 and not any(r["is_warmup"] for r in missing)
    assert {r["error"] for r in missing} == {f"model 'nope' not found on {ollama.url}"}
    assert all(r["error"] is None for r in rows if r["model"] == "llama3.2")
    assert outcome.exit_code == 1
    models = {m["model"]: m for m in store.models(outcome.run_id)}
    assert models["nope"]["found"] is False and models["llama3.2"]["digest"]
    # no request for the missing model ever reached the server
    assert not any((r.json or {}).get("model") == "nope" for r in ollama.requests)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (
            Fault.http_status(
                503, {"error": "server busy, please try again.  maximum pending requests exceeded"}
            ),
            "HTTP 503: server busy, please try again.  maximum pending requests exceeded",
        ),
        (Fault.http_status(500, "oops"), "HTTP 500: oops"),
        (
            Fault.error_line(after_tokens=2, message="runner crashed"),
            "server error mid-stream: runner crashed",
        ),
        (Fault.cut(after_tokens=3), "connection lost after 3 chunks: "),
        (Fault.malformed(after_tokens=1), "malformed line from server: '{not json'"),
    ],
)
def test_server_faults_become_error_rows(
    ollama: OllamaDouble, tmp_path: Path, fault: Fault, reason: str
) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml", ollama.url, modes="[sequential]", warmup=0, models="[llama3.2]"
        )
    )
    ollama.add_fault("llama3.2", fault)
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)
    rows = store.results(outcome.run_id)
    assert len(rows) == 4
    assert rows[0]["error"].startswith(reason)
    assert all(r["error"] is None for r in rows[1:])  # the run went on
    assert outcome.exit_code == 1


def test_mid_stream_error_keeps_the_partial_text(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            ollama.url,
            modes="[sequential]",
            warmup=0,
            models="[llama3.2]",
            repetitions=1,
        )
    )
    ollama.add_fault("llama3.2", Fault.error_line(after_tokens=2))
    store = Store(tmp_path / "db.duckdb")
    row = store.results(run_suite(suite, store).run_id)[0]
    assert row["response_text"] == "I am"
    assert len(row["token_offsets_s"]) == 2


def test_request_timeout_is_an_error_row(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            ollama.url,
            modes="[sequential]",
            warmup=0,
            models="[llama3.2]",
            repetitions=1,
            timeout_s=0.5,
        )
    )
    ollama.add_fault("llama3.2", Fault.stall(after_tokens=1, seconds=3))
    store = Store(tmp_path / "db.duckdb")
    row = store.results(run_suite(suite, store).run_id)[0]
    assert row["error"] == "no complete response within timeout_s=0.5"
    assert 0.45 < row["e2e_s"] < 2.5


def test_options_and_messages_reach_the_server(ollama: OllamaDouble, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        f"name: opts\nhost: {ollama.url}\n"
        "models:\n  - llama3.2\n  - {name: nemotron-mini, options: {temperature: 0.5}}\n"
        "prompts:\n  - {id: q, text: 'What is 2+2?', system: 'Be terse.'}\n"
        "modes: [sequential]\nrepetitions: 1\nwarmup: 0\nkeep_alive: 5m\n"
        "options: {temperature: 0, seed: 42, num_predict: 64}\n"
    )
    run_suite(load_suite(path), Store(tmp_path / "db.duckdb"))
    chats = {r.json["model"]: r.json for r in ollama.requests if r.path == "/api/chat"}
    assert chats["llama3.2"]["options"] == {"temperature": 0, "seed": 42, "num_predict": 64}
    assert chats["nemotron-mini"]["options"] == {"temperature": 0.5, "seed": 42, "num_predict": 64}
    assert chats["llama3.2"]["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert chats["llama3.2"]["keep_alive"] == "5m"
    assert chats["llama3.2"]["stream"] is True


def test_unreachable_host_raises_before_anything_is_written(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    suite = load_suite(write_suite(tmp_path / "s.yaml", url))
    db = tmp_path / "db.duckdb"
    with pytest.raises(HostUnreachableError) as caught:
        run_suite(suite, Store(db))
    assert str(caught.value) == (
        f"cannot reach Ollama at {url} (connection refused): "
        "start it with 'ollama serve' or set OLLAMA_HOST"
    )
    assert not db.exists()


def test_one_unreachable_host_among_several_fails_only_its_models(
    ollama: OllamaDouble, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    models = f"[llama3.2, {{name: nemotron-mini, host: '{dead}'}}]"
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, models=models))
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)
    rows = store.results(outcome.run_id)
    assert {r["error"] for r in rows if r["model"] == "nemotron-mini"} == {
        f"cannot reach Ollama at {dead} (connection refused)"
    }
    assert all(r["error"] is None for r in rows if r["model"] == "llama3.2")
