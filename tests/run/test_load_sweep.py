"""Load sweeps against the Ollama double: saturation found where the slots run out, early stop,
Poisson arrivals, duration-bound levels, failures, several hosts at once, the CLI."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from novabench import Store, load_suite, run_suite
from novabench.analysis.sweeps import limits_of, saturated_at, sweeps, verdict
from novabench.cli import cli
from novabench.run.workloads.sweep import arrival_offsets_s
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, Fault, OllamaDouble

# 20 tokens 4 ms apart: a request streams for about 90 ms, so queueing behind a busy slot
# shows plainly against the client's own noise.
REPLY = " ".join(["word"] * 20)


def slow_model(name: str = "llama3.2") -> FakeModel:
    return FakeModel(name, reply=REPLY, token_interval_s=0.004, ttft_s=0.01)


def load_suite_file(tmp_path: Path, host: str, load: str, **overrides: object) -> Path:
    keys: dict[str, object] = {
        "models": "[llama3.2]",
        "prompts": '["Hi.", {id: q, text: "What?"}]',
        "modes": "[load]",
        "warmup": 1,
        "load": load,
    }
    keys.update(overrides)
    return write_suite(tmp_path / "load.yaml", host, **keys)


def run_sweep(path: Path, tmp_path: Path) -> tuple[Store, str]:
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(load_suite(path), store)
    assert outcome.status == "complete", outcome.failed[:1]
    return store, outcome.run_id


def stored_sweep(store: Store, run_id: str) -> list[dict[str, object]]:
    found = sweeps(store.load_levels(run_id), store.results(run_id))
    assert len(found) == 1
    return next(iter(found.values()))


@pytest.mark.parametrize("num_parallel", [1, 4])
def test_the_sweep_saturates_where_the_servers_slots_run_out(
    num_parallel: int, tmp_path: Path
) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=num_parallel) as double:
        path = load_suite_file(
            tmp_path, double.url, "{concurrency: [1, 2, 4, 8, 16], requests_per_level: 8}"
        )
        store, run_id = run_sweep(path, tmp_path)
    summaries = stored_sweep(store, run_id)
    found = saturated_at(summaries)
    assert found is not None
    assert summaries[found.knee_index]["level"] == num_parallel
    # early stop: the level that showed saturation is the last one run, and says why
    assert len(summaries) == found.seen_index + 1 == [1, 2, 4, 8].index(num_parallel) + 2
    assert summaries[-1]["stop_reason"] == "saturated"
    assert all(s["stop_reason"] is None for s in summaries[:-1])
    # past the knee, requests wait for a slot inside the server: Ollama's queue wait grows
    assert summaries[-1]["queue_ms_p50"] > 20
    assert summaries[found.knee_index]["queue_ms_p50"] < summaries[-1]["queue_ms_p50"]
    text = verdict(summaries, "ollama")
    assert f"OLLAMA_NUM_PARALLEL is probably {num_parallel}." in text


def test_without_early_stop_every_level_runs(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=1) as double:
        path = load_suite_file(
            tmp_path,
            double.url,
            "{concurrency: [1, 2, 4], requests_per_level: 8, early_stop: false}",
        )
        store, run_id = run_sweep(path, tmp_path)
    summaries = stored_sweep(store, run_id)
    assert [s["level"] for s in summaries] == [1, 2, 4]
    assert all(s["stop_reason"] is None for s in summaries)
    assert saturated_at(summaries) is not None  # still found, only not acted upon


def test_levels_send_what_they_say_and_streams_overlap(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=4) as double:
        path = load_suite_file(
            tmp_path, double.url, "{concurrency: [1, 3], requests_per_level: 9, early_stop: false}"
        )
        store, run_id = run_sweep(path, tmp_path)
        served = list(double.requests)
    rows = [r for r in store.results(run_id) if not r["is_warmup"]]
    assert len(rows) == 18 and all(r["error"] is None for r in rows)
    assert {r["load_level"] for r in rows} == {0, 1}
    for level, streams in ((0, 1), (1, 3)):
        spans = sorted(
            (r["start_offset_s"], r["start_offset_s"] + r["e2e_s"])
            for r in rows
            if r["load_level"] == level
        )
        most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
        assert most == streams, (level, most)
    # prompts are drawn in turn, and the sequence number is the repetition
    level0 = sorted((r for r in rows if r["load_level"] == 0), key=lambda r: r["repetition"])
    assert [r["prompt_id"] for r in level0[:4]] == ["p1", "q", "p1", "q"]
    assert [r["repetition"] for r in level0] == list(range(9))
    chats = [r for r in served if r.path == "/api/chat"]
    assert len(chats) == 18 + 1  # and the warm-up
    levels = store.load_levels(run_id)
    assert [(lv["kind"], lv["level"], lv["requests"]) for lv in levels] == [
        ("concurrency", 1.0, 9),
        ("concurrency", 3.0, 9),
    ]
    for level in levels:
        mine = [r for r in rows if r["load_level"] == level["level_index"]]
        first = min(r["start_offset_s"] for r in mine)
        last = max(r["start_offset_s"] + r["e2e_s"] for r in mine)
        assert level["started_offset_s"] == pytest.approx(first)
        assert level["wall_s"] == pytest.approx(last - first)


def test_load_prompts_restrict_the_draw(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()]) as double:
        path = load_suite_file(
            tmp_path, double.url, "{concurrency: [2], requests_per_level: 4, prompts: [q]}"
        )
        store, run_id = run_sweep(path, tmp_path)
    rows = [r for r in store.results(run_id) if r["mode"] == "load" and not r["is_warmup"]]
    assert {r["prompt_id"] for r in rows} == {"q"} and len(rows) == 4


def test_duration_bounds_a_level_instead_of_a_count(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=2) as double:
        path = load_suite_file(tmp_path, double.url, "{concurrency: [2], duration_s: 0.5}")
        store, run_id = run_sweep(path, tmp_path)
    (level,) = store.load_levels(run_id)
    rows = [r for r in store.results(run_id) if r["load_level"] == 0]
    # two streams of ~90 ms requests for half a second: several rounds, none begun after it
    assert len(rows) >= 4 and level["requests"] == len(rows)
    assert max(r["start_offset_s"] for r in rows) - level["started_offset_s"] < 0.5
    assert level["wall_s"] >= 0.5


def test_poisson_arrivals_are_seeded_and_have_the_right_rate() -> None:
    first = arrival_offsets_s(5.0, seed=0, level_index=0, count=4000, duration_s=None)
    assert first == arrival_offsets_s(5.0, seed=0, level_index=0, count=4000, duration_s=None)
    assert first != arrival_offsets_s(5.0, seed=1, level_index=0, count=4000, duration_s=None)
    assert first[0] == 0.0
    gaps = [b - a for a, b in zip(first, first[1:], strict=False)]
    assert statistics.mean(gaps) == pytest.approx(0.2, rel=0.05)
    # exponential gaps: the standard deviation equals the mean
    assert statistics.stdev(gaps) == pytest.approx(0.2, rel=0.1)
    bounded = arrival_offsets_s(5.0, seed=0, level_index=0, count=None, duration_s=10.0)
    assert bounded == [t for t in first if t < 10.0]


def test_rate_levels_send_at_poisson_times_and_count_delayed_arrivals(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=1) as double:
        path = load_suite_file(
            tmp_path,
            double.url,
            "{rate: [5, 200], requests_per_level: 10, max_in_flight: 2, early_stop: false}",
        )
        store, run_id = run_sweep(path, tmp_path)
    levels = store.load_levels(run_id)
    assert [(lv["kind"], lv["level"]) for lv in levels] == [("rate", 5.0), ("rate", 200.0)]
    rows = [r for r in store.results(run_id) if r["mode"] == "load" and not r["is_warmup"]]
    slow = sorted(r["start_offset_s"] for r in rows if r["load_level"] == 0)
    planned = arrival_offsets_s(5.0, 0, 0, 10, None)
    # at 5 requests/s a 90 ms request rarely overlaps the next: sent on schedule (±50 ms)
    for sent, due in zip(slow, planned, strict=True):
        assert sent - slow[0] == pytest.approx(due, abs=0.05)
    # 200 requests/s against one 90 ms slot: arrivals pile up beyond max_in_flight and wait
    assert levels[1]["delayed_arrivals"] >= 5
    fast = sorted(
        (r["start_offset_s"], r["start_offset_s"] + r["e2e_s"]) for r in rows if r["load_level"]
    )
    assert max(sum(1 for s, e in fast if s <= start < e) for start, _ in fast) <= 2


def test_a_failing_level_ends_the_sweep(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=2) as double:
        path = load_suite_file(
            tmp_path, double.url, "{concurrency: [1, 2], requests_per_level: 8}", warmup=0
        )
        for _ in range(6):
            double.add_fault("llama3.2", Fault.http_status(500, {"error": "out of memory"}))
        store = Store(tmp_path / "db.duckdb")
        outcome = run_suite(load_suite(path), store)
    assert outcome.exit_code == 1
    levels = store.load_levels(outcome.run_id)
    assert len(levels) == 1 and levels[0]["stop_reason"] == "failing"
    summaries = stored_sweep(store, outcome.run_id)
    assert summaries[0]["errors"] == 6 and summaries[0]["error_rate"] == pytest.approx(0.75)
    assert verdict(summaries).endswith("75% of its requests failed.")


def test_several_hosts_are_swept_at_once_and_one_hosts_models_in_turn(tmp_path: Path) -> None:
    with (
        OllamaDouble(models=[slow_model("a"), slow_model("b")]) as first,
        OllamaDouble(models=[slow_model("c")]) as second,
    ):
        models = f"[a, b, {{name: c, host: '{second.url}'}}]"
        path = load_suite_file(
            tmp_path,
            first.url,
            "{concurrency: [1, 2], requests_per_level: 4, early_stop: false}",
            models=models,
        )
        store, run_id = run_sweep(path, tmp_path)

    def span(model: str) -> tuple[float, float]:
        rows = [r for r in store.results(run_id) if r["model"] == model and not r["is_warmup"]]
        return (
            min(r["start_offset_s"] for r in rows),
            max(r["start_offset_s"] + r["e2e_s"] for r in rows),
        )

    a, b, c = span("a"), span("b"), span("c")
    assert a[1] <= b[0] + 1e-3  # a and b share a host: b starts once a's sweep is over
    assert c[0] < a[1] and a[0] < c[1]  # c is on another host: swept while a is
    assert {(lv["model"], lv["host"]) for lv in store.load_levels(run_id)} == {
        ("a", first.url),
        ("b", first.url),
        ("c", second.url),
    }


def test_slos_are_kept_with_the_run(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=1) as double:
        path = load_suite_file(
            tmp_path,
            double.url,
            "{concurrency: [1, 2], requests_per_level: 6, early_stop: false, "
            "slo: {ttft_ms: 60, e2e_ms: 100000}}",
        )
        store, run_id = run_sweep(path, tmp_path)
    limits = limits_of(store.get_run(run_id)["facts"]["load"])
    assert limits == {"ttft_ms": 60.0, "e2e_ms": 100000.0}
    one, two = next(iter(sweeps(store.load_levels(run_id), store.results(run_id), limits).values()))
    # one stream: every TTFT is ~10 ms; two streams on one slot: about half wait ~90 ms first
    assert one["slo_met"] == 6
    assert two["slo_met"] < 6
    assert two["goodput_rps"] == pytest.approx(two["slo_met"] / two["wall_s"])


def test_cli_prints_each_level_and_the_verdict(tmp_path: Path) -> None:
    with OllamaDouble(models=[slow_model()], num_parallel=1) as double:
        path = load_suite_file(
            tmp_path, double.url, "{concurrency: [1, 2, 4], requests_per_level: 6}"
        )
        result = CliRunner().invoke(cli, ["run", str(path), "--no-report"])
        logged = CliRunner().invoke(cli, ["run", str(path), "--no-report", "--log-json"])
    assert result.exit_code == 0, result.output
    assert "load: llama3.2 on " in result.output
    assert "1 concurrent request " in result.output
    assert "Throughput stops growing at 1 concurrent request" in result.output
    assert "OLLAMA_NUM_PARALLEL is probably 1." in result.output
    assert logged.exit_code == 0, logged.output
    events = [json.loads(line) for line in logged.output.splitlines() if line.startswith("{")]
    levels = [e for e in events if e["event"] == "level_finished"]
    assert [e["level"] for e in levels] == [1.0, 2.0]
    assert levels[-1]["stop_reason"] == "saturated" and levels[0]["model"] == "llama3.2"
    started = next(e for e in events if e["event"] == "run_started")
    assert started["planned_requests"] == 6 + 6 + 6 + 1  # every level, and the warm-up


def test_a_compute_bound_server_saturates_without_queueing(tmp_path: Path) -> None:
    # eight slots, but every extra generation slows all the others as much (batch_slowdown 1):
    # no request waits for a slot, yet the aggregate does not grow
    model = FakeModel("llama3.2", reply=REPLY, token_interval_s=0.004, batch_slowdown=1.0)
    with OllamaDouble(models=[model], num_parallel=8) as double:
        path = load_suite_file(
            tmp_path, double.url, "{concurrency: [1, 2, 4], requests_per_level: 8}"
        )
        store, run_id = run_sweep(path, tmp_path)
    summaries = stored_sweep(store, run_id)
    found = saturated_at(summaries)
    assert found is not None and summaries[found.knee_index]["level"] == 1
    # the double's fixed 10 ms before the first token shows as queue wait at every level; a
    # wait for a slot would add most of a 90 ms generation to it
    assert summaries[found.seen_index]["queue_ms_p50"] < summaries[0]["queue_ms_p50"] + 10
    assert summaries[found.seen_index]["itl_ms_p50"] > 1.5 * summaries[0]["itl_ms_p50"]
    text = verdict(summaries, "ollama")
    assert "the hardware, not the number of slots, is the limit" in text
    assert "OLLAMA_NUM_PARALLEL" not in text


@pytest.mark.timeout(120)
def test_an_interrupted_level_keeps_its_finished_requests_and_says_so(tmp_path: Path) -> None:
    model = FakeModel("slow", reply=" ".join(["word"] * 10), token_interval_s=0.05)
    with OllamaDouble(models=[model], num_parallel=2) as double:
        path = load_suite_file(
            tmp_path,
            double.url,
            "{concurrency: [2, 4], requests_per_level: 40}",
            models="[slow]",
            warmup=0,
            sample_interval_s=0,
        )
        log = tmp_path / "stderr.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "novabench", "run", str(path), "--db", "db.duckdb"],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 60
        while log.read_text().count(" load slow ") < 4:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130, log.read_text()
    store = Store(tmp_path / "db.duckdb")
    (run,) = store.list_runs()
    (level,) = store.load_levels(run["run_id"])
    rows = [r for r in store.results(run["run_id"]) if r["mode"] == "load"]
    assert level["stop_reason"] == "interrupted"
    assert level["requests"] == len(rows) >= 4 and len(rows) < 40
    summaries = stored_sweep(store, run["run_id"])
    assert verdict(summaries).endswith(
        "The run was interrupted during 2 concurrent requests: "
        "that level is partial and not judged."
    )


def test_the_public_api_reads_a_runs_sweeps_back(tmp_path: Path) -> None:
    import novabench

    with OllamaDouble(models=[slow_model()], num_parallel=1) as double:
        path = load_suite_file(
            tmp_path, double.url, "{concurrency: [1, 2, 4], requests_per_level: 6}"
        )
        store, run_id = run_sweep(path, tmp_path)
    found = novabench.load_sweeps(store, run_id)
    assert list(found) == [("llama3.2", double.url)]
    levels = found[("llama3.2", double.url)]
    assert [lv["level"] for lv in levels] == [1.0, 2.0]
    assert novabench.sweep_verdict(levels).endswith("OLLAMA_NUM_PARALLEL is probably 1.")
    assert {"load_sweeps", "sweep_verdict"} <= set(novabench.__all__)
