"""The Ollama double in a child process, serving one model on a fixed token schedule.

Run as `python -m tests.perf.server --tokens 200 ...`: it prints `port N` once listening and serves
until its stdin closes or it gets SIGTERM. `DoubleProcess` starts it and always cleans it up.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from types import TracebackType

from tests.ollama_double import _WARM_LOAD_S, FakeModel, OllamaDouble

MODEL = "perf-model"
# A second model with no schedule: tokens as fast as the double can write them, so a client
# reads them in batches and its CPU per token is its parsing cost alone, without the wake-ups
# that a paced stream costs (those depend on how the streams' ticks happen to line up).
FLOOD_MODEL = "perf-flood"
FLOOD_TOKENS = 1000
# A third model for the big concurrency level: the same TTFT and answer length, a slower token
# interval (see PerfConfig.fast_interval_ms).
FAST_MODEL = "perf-fast"
START_TIMEOUT_S = 20.0
# Short words cycling, so each token line is the size of a real one (about 110 bytes).
_WORDS = ("the", "model", "answers", "in", "a", "steady", "stream", "of", "tokens,", "one")


def reply_text(tokens: int) -> str:
    """A reply the double splits into exactly `tokens` tokens."""
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(tokens))


def schedule_model(tokens: int, ttft_ms: float, interval_ms: float, name: str = MODEL) -> FakeModel:
    """A model whose first token comes `ttft_ms` after the request is read, then every interval.

    The double spends _WARM_LOAD_S handing out a warm runner before its own ttft_s, and prompt
    evaluation is made free, so the configured TTFT is exactly ttft_ms from the request's receipt.
    """
    return FakeModel(
        name,
        reply=reply_text(tokens),
        load_s=0.0,
        prompt_token_s=0.0,
        ttft_s=max(0.0, ttft_ms / 1000 - _WARM_LOAD_S),
        token_interval_s=interval_ms / 1000,
    )


def flood_model() -> FakeModel:
    """FLOOD_TOKENS tokens written back to back, right after the request is read."""
    return FakeModel(
        FLOOD_MODEL,
        reply=reply_text(FLOOD_TOKENS),
        load_s=0.0,
        prompt_token_s=0.0,
        ttft_s=0.0,
        token_interval_s=0.0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.server")
    parser.add_argument("--tokens", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, required=True)
    parser.add_argument("--interval-ms", type=float, required=True)
    parser.add_argument("--fast-interval-ms", type=float, required=True)
    parser.add_argument("--num-parallel", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    models = [
        schedule_model(args.tokens, args.ttft_ms, args.interval_ms),
        schedule_model(args.tokens, args.ttft_ms, args.fast_interval_ms, FAST_MODEL),
        flood_model(),
    ]
    double = OllamaDouble(models, num_parallel=args.num_parallel, host="127.0.0.1", port=0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    double.start()
    try:
        print(f"port {double.port}", flush=True)
        sys.stdin.read()  # the parent holds our stdin open; EOF means it is gone
    finally:
        double.stop()
    return 0


class DoubleProcess:
    """The double as a child process on 127.0.0.1; the context manager always reaps it."""

    def __init__(
        self,
        tokens: int,
        ttft_ms: float,
        interval_ms: float,
        num_parallel: int,
        cpu: int | None = None,
        fast_interval_ms: float = 20.0,
    ) -> None:
        self.command = [
            sys.executable,
            "-m",
            "tests.perf.server",
            f"--tokens={tokens}",
            f"--ttft-ms={ttft_ms}",
            f"--interval-ms={interval_ms}",
            f"--fast-interval-ms={fast_interval_ms}",
            f"--num-parallel={num_parallel}",
        ]
        if cpu is not None:
            self.command.append(f"--cpu={cpu}")
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> DoubleProcess:
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
        try:
            self.url = f"http://127.0.0.1:{self._read_port()}"
        except BaseException:
            self.stop()
            raise
        return self

    def _read_port(self) -> int:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.1)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith("port "):
                    return int(line.split()[1])
                if not line:
                    break
            if self.process.poll() is not None:
                break
        raise RuntimeError(f"the double did not start: {' '.join(self.command)}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        if process.stdin is not None:
            process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


if __name__ == "__main__":
    raise SystemExit(main())
