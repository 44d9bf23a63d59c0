"""Stored runs for the tests: a run row, request results, and runs of known TTFTs in a Store."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from novabench.records import RequestResult
from novabench.storage.store import Store, utcnow

HOST = "http://127.0.0.1:11434"
T0 = datetime(2026, 11, 27, 10, 0, 0)
FAST = [100.0 + i for i in range(8)]
SLOW = [200.0 + i for i in range(8)]
RUN_A, RUN_B = "20261127T100000Z-aaaa", "20261127T100100Z-bbbb"


def make_run(store: Store, run_id: str = "20261127T100000Z-aaaa", **overrides: object) -> str:
    """Create a running run of suite 'mini' (one model 'm', one prompt 'p1'); `overrides` win."""
    run = {
        "run_id": run_id,
        "started_at": utcnow(),
        "status": "running",
        "suite_name": "mini",
        "suite_path": "suites/mini.yaml",
        "suite_text": "name: mini\n",
        "suite_sha256": "0" * 64,
        "host": "http://127.0.0.1:11434",
        "ollama_version": "0.12.6",
        "host_versions": {"http://127.0.0.1:11434": "0.12.6"},
        "novabench_version": "0.1.0",
        "modes": ["sequential"],
        "repetitions": 1,
        "warmup": 0,
        "options": {"options": {"seed": 1}},
        "system": {"os": "Linux"},
        "models": [
            {
                "model": "m",
                "host": "http://127.0.0.1:11434",
                "found": True,
                "digest": "d" * 64,
                "options": {"seed": 1},
            }
        ],
        "prompts": [{"prompt_id": "p1", "text": "Hi.", "system": None}],
    }
    run.update(overrides)
    store.create_run(run)
    return run_id


def result(**fields: object) -> RequestResult:
    """A sequential request of 'm' to 'p1', repetition 0, measured; `fields` win."""
    base: dict[str, object] = dict(
        mode="sequential",
        model="m",
        host="http://127.0.0.1:11434",
        prompt_id="p1",
        repetition=0,
        is_warmup=False,
        started_at=utcnow(),
    )
    base.update(fields)
    return RequestResult(**base)  # type: ignore[arg-type]


def add_run(
    store: Store,
    run_id: str,
    minute: int,
    ttft_ms: list[float],
    tokens_per_s: list[float] | None = None,
    suite: str = "mini",
    status: str = "complete",
    digest: str = "d" * 64,
    version: str = "0.12.6",
    model: str = "m",
) -> str:
    """A stored run of one model, prompt 'p1': one measured request per TTFT value."""
    make_run(
        store,
        run_id,
        started_at=T0 + timedelta(minutes=minute),
        suite_name=suite,
        ollama_version=version,
        host_versions={HOST: version},
        models=[{"model": model, "host": HOST, "found": True, "digest": digest}],
    )
    rates = tokens_per_s or [50.0] * len(ttft_ms)
    rows = []
    for rep, (ttft, rate) in enumerate(zip(ttft_ms, rates, strict=True)):
        stream_s = 100 / rate  # 100 tokens at `rate`: client and server agree
        rows.append(
            result(
                model=model,
                repetition=rep,
                ttft_s=ttft / 1000,
                e2e_s=ttft / 1000 + stream_s,
                token_offsets_s=[ttft / 1000, ttft / 1000 + stream_s],
                eval_count=100,
                eval_duration_ns=int(stream_s * 1e9),
            )
        )
    # never counted: a warm-up, a cold start and a failure with absurd values
    rows += [
        result(model=model, is_warmup=True, ttft_s=99.0),
        result(model=model, is_cold=True, ttft_s=99.0),
        result(model=model, error="HTTP 500: boom", ttft_s=99.0),
    ]
    store.add_results(run_id, list(enumerate(rows)))
    if status != "running":
        store.finish_run(run_id, status)
    return run_id


def two_runs(tmp_path: Path, model: str = "m") -> Store:
    """Run A, then run B of the same suite: TTFT twice as slow, generation 20% faster."""
    db = Store(tmp_path / "db.duckdb")
    add_run(db, RUN_A, 0, FAST, [50.0] * 8, model=model)
    add_run(db, RUN_B, 1, SLOW, [60.0 + i for i in range(8)], model=model)
    return db
