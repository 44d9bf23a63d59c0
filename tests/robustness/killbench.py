"""How much a run killed outright (kill -9) loses, at a given request rate, against the double's
own record of which requests it finished.

    python -m tests.robustness.killbench --rates 100,300,1000

A load run (open loop: Poisson arrivals at the rate, 5-token answers with no delay, every request
its own prompt so a stored row names the request it measured) goes to a `novabench run`
subprocess; once the double has finished `--seconds` worth of requests the process gets SIGKILL.
The next command that opens the database (`novabench runs`) adds what the run's journal holds.
Then every request whose done line the double wrote before the kill is looked for in the
database: the ones missing are lost, and the loss window is how long before the kill the oldest
of them was finished by the server (the client read it a little later).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from novabench.storage.store import Store
from tests.ollama_double import FakeModel, OllamaDouble

MODEL = "kill"
# The promise: what finished this long before the kill is in the database.
SETTLED_MS = 100.0


@dataclass(frozen=True)
class KillFigures:
    """One kill: what the server finished before it, what the database kept."""

    rate: float  # requests/s asked for
    achieved_rate: float  # requests/s the server finished before the kill
    finished: int  # done lines written before the kill
    stored: int  # of those, rows in the database after recovery
    window_ms: float  # kill time minus the oldest lost request's done line (0: none lost)
    settled: int  # done lines written more than SETTLED_MS before the kill
    settled_stored: int  # of those, rows in the database (the promise: all of them)

    @property
    def lost(self) -> int:
        return self.finished - self.stored


def _suite(path: Path, url: str, rate: float, requests: int) -> Path:
    prompts = "\n".join(f"  - {{id: r{i}, text: r{i}}}" for i in range(requests))
    path.write_text(
        f"name: kill\nhost: {url}\nmodels: [{MODEL}]\nmodes: [load]\nwarmup: 0\n"
        "sample_interval_s: 0.25\ntimeout_s: 30\n"
        f"load: {{rate: [{rate:g}], requests_per_level: {requests}, max_in_flight: 512, "
        f"early_stop: false}}\nprompts:\n{prompts}\n"
    )
    return path


def measure(rate: float, seconds: float, folder: Path) -> KillFigures:
    """Kill a run at `rate` requests/s after the server finished `seconds` worth of them."""
    model = FakeModel(
        MODEL, reply="a b c d e", load_s=0.0, prompt_token_s=0.0, ttft_s=0.0, token_interval_s=0.0
    )
    requests = int(rate * (seconds + 10))
    db = folder / "db.duckdb"
    with OllamaDouble(models=[model], num_parallel=1024, max_queue=4096) as double:
        suite = _suite(folder / "kill.yaml", double.url, rate, requests)
        with open(folder / "stderr.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "novabench", "run", str(suite), "--db", str(db)],
                cwd=folder,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wanted = int(rate * seconds)
        deadline = time.monotonic() + seconds * 4 + 30
        first_ns = 0
        while True:
            done = [r.done_ns for r in list(double.requests) if r.done_ns]
            first_ns = first_ns or (min(done) if done else 0)
            if len(done) >= wanted:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the run did not reach {wanted} requests: {folder}")
            time.sleep(0.01)
        kill_ns = time.perf_counter_ns()
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        finished = {
            _user_text(r.json): r.done_ns
            for r in list(double.requests)
            if r.done_ns and r.done_ns < kill_ns
        }
    subprocess.run(
        [sys.executable, "-m", "novabench", "runs", "--db", str(db)],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    store = Store(db)
    (run,) = store.list_runs()
    stored_ids = {row["prompt_id"] for row in store.results(run["run_id"])}
    lost = [done_ns for prompt_id, done_ns in finished.items() if prompt_id not in stored_ids]
    span_s = (kill_ns - first_ns) / 1e9 if first_ns else 0.0
    cutoff_ns = kill_ns - SETTLED_MS * 1e6
    settled = [p for p, done_ns in finished.items() if done_ns < cutoff_ns]
    return KillFigures(
        rate=rate,
        achieved_rate=len(finished) / span_s if span_s else 0.0,
        finished=len(finished),
        stored=len(finished) - len(lost),
        window_ms=(kill_ns - min(lost)) / 1e6 if lost else 0.0,
        settled=len(settled),
        settled_stored=sum(1 for p in settled if p in stored_ids),
    )


def _user_text(body: object) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return str(messages[-1].get("content", ""))
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.robustness.killbench")
    parser.add_argument("--rates", default="100,300,1000", help="requests/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="run this long, then kill")
    parser.add_argument("--repeat", type=int, default=3, help="kills per rate")
    args = parser.parse_args(argv)
    rates = [float(part) for part in args.rates.split(",") if part.strip()]
    print(
        "rate req/s | achieved | finished | stored | lost | loss window ms | "
        + f"lost > {SETTLED_MS:g} ms"
    )
    for rate in rates:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="killbench-") as folder:
                f = measure(rate, args.seconds, Path(folder))
            print(
                f"{f.rate:10g} | {f.achieved_rate:8.0f} | {f.finished:8d} | {f.stored:6d} | "
                f"{f.lost:4d} | {f.window_ms:14.1f} | {f.settled - f.settled_stored}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
