"""Measurement you can trust: cold starts, auto repetitions, checks, spill, samples, manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner

from novabench import Store, load_suite, run_suite
from novabench.analysis.figures import with_figures
from novabench.analysis.statistics import summarize
from novabench.cli import cli
from tests.conftest import write_suite
from tests.ollama_double import FakeModel, OllamaDouble


def test_cold_start_unloads_first_and_is_kept_apart(tmp_path: Path) -> None:
    models = [FakeModel("llama3.2", load_s=0.3), FakeModel("nemotron-mini", load_s=0.3)]
    with OllamaDouble(models=models) as double:
        suite = load_suite(write_suite(tmp_path / "s.yaml", double.url, modes="[sequential]"))
        # a request before the run loads llama3.2: the cold start must unload it again
        import httpx

        httpx.post(f"{double.url}/api/generate", json={"model": "llama3.2"}, timeout=5)
        assert "llama3.2:latest" in double.loaded_models()
        store = Store(tmp_path / "db.duckdb")
        outcome = run_suite(suite, store, cold_start=True)
        sent = [(r.path, r.json) for r in double.requests if r.method == "POST"]

    unloads = [
        body for path, body in sent if path == "/api/generate" and body.get("keep_alive") == 0
    ]
    assert {b["model"] for b in unloads} == {"llama3.2", "nemotron-mini"}
    # each unload is followed by that model's cold chat request
    for model in ("llama3.2", "nemotron-mini"):
        unload_at = next(
            i
            for i, (p, b) in enumerate(sent)
            if p == "/api/generate" and b.get("keep_alive") == 0 and b["model"] == model
        )
        assert sent[unload_at + 1][0] == "/api/chat" and sent[unload_at + 1][1]["model"] == model
    rows = store.results(outcome.run_id)
    cold = [r for r in rows if r["is_cold"]]
    assert len(cold) == 2 and not any(r["is_warmup"] for r in cold)
    assert all(r["load_duration_ns"] >= 0.25e9 for r in cold)  # paid the 300 ms load
    warm = [r for r in rows if not r["is_cold"] and not r["is_warmup"]]
    assert max(r["load_duration_ns"] for r in warm) < 0.1e9
    summary = {s.model: s for s in summarize(with_figures(rows))}
    assert summary["llama3.2"].n == 4  # 2 prompts x 2 repetitions; the cold one is not counted
    assert summary["llama3.2"].stat("load_ms", "max") < 100
    assert store.get_run(outcome.run_id)["manifest"]["cold_start"] is True


def test_auto_repetitions_stop_at_the_target(ollama: OllamaDouble, tmp_path: Path) -> None:
    # The double is steady: the median e2e is known to within 20% after the minimum.
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            ollama.url,
            modes="[sequential]",
            models="[llama3.2]",
            prompts='["Hi."]',
            repetitions="auto",
            min_repetitions=3,
            max_repetitions=12,
            target_cv=0.2,
            warmup=1,
        )
    )
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)
    (stop,) = store.repetition_stops(outcome.run_id)
    assert stop["reason"] == "target_reached"
    assert 3 <= stop["repetitions"] < 12
    assert stop["ci_half_width_ratio"] <= 0.2
    measured = [r for r in store.results(outcome.run_id) if not r["is_warmup"]]
    assert len(measured) == stop["repetitions"]


def test_auto_repetitions_stop_at_the_cap(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(
            tmp_path / "s.yaml",
            ollama.url,
            modes="[parallel]",
            prompts='["Hi."]',
            repetitions="auto",
            min_repetitions=2,
            max_repetitions=4,
            target_cv="0.000001",
            warmup=0,
        )
    )
    store = Store(tmp_path / "db.duckdb")
    outcome = run_suite(suite, store)
    stops = store.repetition_stops(outcome.run_id)
    assert {(s["model"], s["reason"], s["repetitions"]) for s in stops} == {
        ("llama3.2", "max_repetitions", 4),
        ("nemotron-mini", "max_repetitions", 4),
    }
    assert store.get_run(outcome.run_id)["manifest"]["repetitions"].startswith("auto (2..4")


def test_fixed_repetitions_record_their_precision(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s.yaml", ollama.url, modes="[sequential]"))
    store = Store(tmp_path / "db.duckdb")
    stops = store.repetition_stops(run_suite(suite, store).run_id)
    assert len(stops) == 4 and {s["reason"] for s in stops} == {"fixed"}
    assert {s["repetitions"] for s in stops} == {2}


def test_checks_are_stored_per_result_with_a_pass_rate(tmp_path: Path) -> None:
    models = [
        FakeModel("good", reply="Two plus two is 4."),
        FakeModel("chatty", reply="Well. Two plus two is 4. Obviously."),
    ]
    with OllamaDouble(models=models) as double:
        path = tmp_path / "s.yaml"
        path.write_text(
            f"name: checks\nhost: {double.url}\nmodels: [good, chatty]\n"
            "checks: {max_sentences: 1}\n"
            "prompts:\n  - {id: sum, text: 'What is 2+2?', checks: {contains: '4'}}\n"
            "modes: [sequential]\nrepetitions: 2\nwarmup: 0\n"
        )
        store = Store(tmp_path / "db.duckdb")
        outcome = run_suite(load_suite(path), store)
    rows = store.results(outcome.run_id)
    by_model = {r["model"]: r["checks"] for r in rows}
    assert by_model["good"] == {"contains": True, "max_sentences": True}
    assert by_model["chatty"] == {"contains": True, "max_sentences": False}
    summary = {s.model: s for s in summarize(with_figures(rows))}
    assert summary["good"].check_pass_rate == 1.0
    assert (summary["chatty"]["checks_passed"], summary["chatty"]["checks_total"]) == (0, 2)


def test_spill_to_cpu_is_recorded_from_api_ps(tmp_path: Path) -> None:
    models = [
        FakeModel("big", size_bytes=8_000_000_000, size_vram=2_000_000_000),
        FakeModel("fits"),
    ]
    with OllamaDouble(models=models) as double:
        suite = load_suite(
            write_suite(
                tmp_path / "s.yaml",
                double.url,
                models="[big, fits]",
                modes="[sequential]",
                repetitions=1,
            )
        )
        store = Store(tmp_path / "db.duckdb")
        outcome = run_suite(suite, store)
        ps_calls = [r for r in double.requests if r.path == "/api/ps"]
    models_by_name = {m["model"]: m for m in store.models(outcome.run_id)}
    assert (
        models_by_name["big"]["loaded_size_bytes"],
        models_by_name["big"]["loaded_vram_bytes"],
    ) == (8_000_000_000, 2_000_000_000)
    assert (
        models_by_name["fits"]["loaded_vram_bytes"] == models_by_name["fits"]["loaded_size_bytes"]
    )
    assert len(ps_calls) == 2  # once per model, after its first request
    assert models_by_name["big"]["context_length"] == 131072  # from /api/show


def test_resource_samples_are_stored_during_the_run(tmp_path: Path) -> None:
    models = [FakeModel("slow", token_interval_s=0.02, reply=" ".join(["word"] * 15))]
    with OllamaDouble(models=models) as double:
        suite = load_suite(
            write_suite(
                tmp_path / "s.yaml",
                double.url,
                models="[slow]",
                modes="[sequential]",
                repetitions=3,
                sample_interval_s=0.05,
            )
        )
        store = Store(tmp_path / "db.duckdb")
        outcome = run_suite(suite, store)
    samples = store.samples(outcome.run_id)
    rows = store.results(outcome.run_id)
    run_span = max(r["start_offset_s"] + r["e2e_s"] for r in rows)
    assert len(samples) >= run_span / 0.05 * 0.5  # about one per interval, allowing slack
    offsets = [s["offset_s"] for s in samples]
    assert offsets == sorted(offsets)
    assert all(0 <= s["cpu_percent"] <= 100 for s in samples)
    assert all(s["ram_used_bytes"] > 0 for s in samples)
    # the double listens on this machine, so the server process is found (it is this process)
    assert any(s["server_rss_bytes"] for s in samples)


def test_sampling_can_be_turned_off(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s.yaml", ollama.url, modes="[sequential]", sample_interval_s=0)
    )
    store = Store(tmp_path / "db.duckdb")
    assert store.samples(run_suite(suite, store).run_id) == []


def test_manifest_has_git_state_and_runs_show_prints_it(
    ollama: OllamaDouble, isolated: Path
) -> None:
    repo = isolated / "bench"
    repo.mkdir()
    suite_path = write_suite(repo / "s.yaml", ollama.url, modes="[sequential]", repetitions=1)
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "s.yaml"], check=True)
    subprocess.run([*git, "commit", "-qm", "suite"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (repo / "notes.txt").write_text("uncommitted")

    result = CliRunner().invoke(cli, ["run", str(suite_path), "-q", "--no-report"])
    assert result.exit_code == 0, result.output
    store = Store(isolated / "reports" / "novabench.duckdb")
    run_id = store.latest_run_id()
    git_info = store.get_run(run_id)["manifest"]["git"]
    assert git_info["commit"] == commit and git_info["dirty"] is True
    assert git_info["suite_file_changed"] is False

    shown = CliRunner().invoke(cli, ["runs", "--show", run_id])
    assert shown.exit_code == 0, shown.output
    for expected in (
        run_id,
        commit[:12] + " dirty",
        "0.12.6",
        store.get_run(run_id)["suite_sha256"],
        "model llama3.2",
        "ctx 131072",
        "Q4_K_M",
    ):
        assert expected in shown.stdout, expected


def test_suite_outside_git_has_no_git_manifest(ollama: OllamaDouble, tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s.yaml", ollama.url, modes="[sequential]", repetitions=1)
    )
    store = Store(tmp_path / "db.duckdb")
    assert store.get_run(run_suite(suite, store).run_id)["manifest"]["git"] is None
