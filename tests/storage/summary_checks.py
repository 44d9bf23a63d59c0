"""Shared by the summary tests: stored runs of every kind of request, and the check that a run's
summaries are the figures analysis computes from its raw rows."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from novabench.analysis.figures import with_figures
from novabench.analysis.statistics import summarize
from novabench.records import GroupSummary, RequestResult, RunSummary
from novabench.storage.store import Store
from novabench.storage.summaries import SUMMARY_FIGURES

HOSTS = ("http://127.0.0.1:11434", "http://gpu-box:11434")
T0 = datetime(2026, 11, 27, 10, 0, 0)
STAT = {50: "median", 95: "p95"}


def make_run(
    store: Store,
    run_id: str,
    minute: int,
    *,
    suite: str = "mini",
    models: tuple[tuple[str, str, str | None], ...] = (("m", HOSTS[0], "d" * 64),),
    modes: tuple[str, ...] = ("sequential",),
    status: str | None = "complete",
    version: str = "0.12.6",
) -> str:
    """A run row with its models (name, host, digest); `status` None leaves it running."""
    store.create_run(
        {
            "run_id": run_id,
            "started_at": T0 + timedelta(minutes=minute),
            "status": "running",
            "suite_name": suite,
            "suite_text": f"name: {suite}\n",
            "suite_sha256": "0" * 64,
            "host": HOSTS[0],
            "ollama_version": version,
            "host_versions": {host: version for host in HOSTS},
            "novabench_version": "0.1.0",
            "modes": list(modes),
            "repetitions": 1,
            "warmup": 0,
            "models": [
                {"model": model, "host": host, "found": True, "digest": digest}
                for model, host, digest in models
            ],
            "prompts": [],
        }
    )
    if status is not None:
        store.finish_run(run_id, status)
    return run_id


def request(**fields: Any) -> RequestResult:
    """A successful measured request by default: the given fields, neutral ones for the rest."""
    base: dict[str, Any] = {
        "mode": "sequential",
        "model": "m",
        "host": HOSTS[0],
        "prompt_id": "p1",
        "repetition": 0,
        "is_warmup": False,
        "started_at": T0,
    }
    return RequestResult(**{**base, **fields})


def streamed(ttft_s: float, gap_s: float, tokens: int, **fields: Any) -> RequestResult:
    """A request whose `tokens` content chunks arrived `gap_s` apart after `ttft_s`."""
    offsets = [ttft_s + i * gap_s for i in range(tokens)]
    timed = {
        "ttft_s": ttft_s,
        "e2e_s": (offsets[-1] if offsets else ttft_s) + 0.003,
        "token_offsets_s": offsets,
        "chunk_count": tokens + 1,
    }
    return request(**{**timed, **fields})


def random_requests(seed: int, count: int) -> list[RequestResult]:
    """Requests of every kind the figures treat apart, drawn at random: failures, warm-ups, cold
    starts, prompts served from the KV cache, no server fields, one or no token, equal token
    times, zero and missing durations, several modes, models, hosts and prompts."""
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        model = rng.choice(("m", "m2"))
        fields: dict[str, Any] = {
            "mode": rng.choice(("sequential", "parallel", "load")),
            "model": model,
            "host": rng.choice(HOSTS) if model == "m2" else HOSTS[0],
            "prompt_id": rng.choice(("p1", "p2", "p3")),
            "is_warmup": rng.random() < 0.1,
            "is_cold": rng.random() < 0.05,
        }
        if fields["mode"] == "load":
            fields["load_level"] = rng.randrange(3)
        kind = rng.random()
        if kind < 0.08:
            found.append(request(error="HTTP 500: boom", http_status=500, **fields))
            continue
        tokens = rng.choice((0, 1, 2, 3, 17, 40))
        gap_s = rng.choice((0.0, 0.0125, rng.uniform(0.005, 0.05)))
        result = streamed(rng.uniform(0.05, 0.9), gap_s, tokens, **fields)
        result.eval_count = rng.choice((None, 0, tokens, tokens + 1))
        result.eval_duration_ns = rng.choice((None, 0, rng.randrange(1, 3_000_000_000)))
        result.prompt_eval_count = rng.choice((None, 0, 20, 21))
        prompt_ns = rng.choice((None, 0, 40_000_000, 41_000_000, 4_000_000))  # last: cached
        result.prompt_eval_duration_ns = prompt_ns
        if rng.random() < 0.05:
            result.ttft_s = None  # answered, but nothing came back as content
        found.append(result)
    return found


def assert_summaries_match_analysis(store: Store, run_id: str) -> int:
    """The run's stored summaries are analysis's figures of its raw rows, to the last bit;
    returns how many groups were compared."""
    requests = with_figures(store.results(run_id))
    compared = 0
    for by_prompt in (False, True):
        expected = summarize(requests, by_prompt=by_prompt)
        stored = {
            (s.mode, s.model, s.host, s.prompt_id): s
            for s in store.run_summaries([run_id], by_prompt=by_prompt)
        }
        assert sorted(stored, key=str) == sorted(
            ((g.mode, g.model, g.host, g.prompt_id) for g in expected), key=str
        )
        for group in expected:
            _assert_group(stored[(group.mode, group.model, group.host, group.prompt_id)], group)
            compared += 1
        for key, summary in stored.items():
            measured = [
                r
                for r in requests
                if r.ok
                and not r.is_warmup
                and not r.is_cold
                and (r.mode, r.model, r.host) == key[:3]
                and (key[3] is None or r.prompt_id == key[3])
            ]
            assert summary.output_tokens == sum(r.output_tokens for r in measured)
    return compared


def _assert_group(stored: RunSummary, expected: GroupSummary) -> None:
    where = f"{stored.run_id} {expected.mode} {expected.model} {expected.prompt_id}"
    assert (stored.n, stored.errors, stored.prompt_cached) == (
        expected.n,
        expected.errors,
        expected.prompt_cached,
    ), where
    for figure, percentiles in SUMMARY_FIGURES:
        for q in percentiles:
            want = expected.stat(figure, STAT[q])
            got = getattr(stored, f"{figure}_p{q}")
            assert _same(got, want), f"{where} {figure} p{q}: stored {got!r}, analysis {want!r}"


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a == b or (math.isnan(a) and math.isnan(b))
