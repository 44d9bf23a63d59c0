"""Resource samples beside a run: CPU, RAM, swap, the local Ollama server's processes, GPUs.

A daemon thread samples on a fixed cadence. Each sample's CPU figures cover the interval that
ends at it; memory, RSS and GPU figures are read at the sample's time.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import psutil

from novabench.records import ResourceSample
from novabench.run.gpus import Gpus
from novabench.run.server_processes import ServerProcesses, local_endpoint

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.25
# The first sample waits this long (at most one interval) so its CPU figures span some ticks.
FIRST_WINDOW_S = 0.05
JOIN_TIMEOUT_S = 5.0


class ResourceSampler:
    """Samples resources every `interval_s` in a background thread, from start() to stop()."""

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        server_hosts: Sequence[str] = (),
        t0: float | None = None,
        on_sample: Callable[[ResourceSample], None] | None = None,
    ) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be a positive number of seconds, not {interval_s!r}")
        self.interval_s = interval_s
        self.server_hosts = list(server_hosts)
        self.t0 = t0
        self.on_sample = on_sample
        self._samples: list[ResourceSample] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._first_taken = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: ServerProcesses | None = None
        self._gpus: Gpus | None = None
        self._cost_s = 0.0
        self._failures = 0

    @property
    def samples(self) -> list[ResourceSample]:
        """The samples so far, in time order (a copy)."""
        with self._lock:
            return list(self._samples)

    @property
    def server_pids(self) -> list[int]:
        """The server processes being measured (server and runners); [] when none was found."""
        return list(self._server.pids) if self._server else []

    @property
    def cost_us_per_sample(self) -> float | None:
        """The sampler thread's own CPU time per sample, in µs (None before the first sample)."""
        count = len(self._samples)
        return self._cost_s / count * 1e6 if count else None

    def start(self) -> None:
        """Find the server, start the thread and return once the first sample is in."""
        if self._thread is not None:
            raise RuntimeError("this ResourceSampler was already started; make a new one")
        if self.t0 is None:
            self.t0 = time.perf_counter()
        ports = sorted({e[1] for h in self.server_hosts if (e := local_endpoint(h)) is not None})
        self._server = ServerProcesses.find(ports) if ports else None
        self._gpus = Gpus.open()
        self._thread = threading.Thread(target=self._run, name="novabench-sampler", daemon=True)
        self._thread.start()
        self._first_taken.wait(FIRST_WINDOW_S + JOIN_TIMEOUT_S)

    def stop(self) -> list[ResourceSample]:
        """Stop sampling and return all samples; calling it again returns them again."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(JOIN_TIMEOUT_S)
        if self._gpus is not None and not (thread and thread.is_alive()):
            self._gpus.close()
            self._gpus = None
        return self.samples

    def __enter__(self) -> ResourceSampler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            self._sample_on_cadence()
        finally:
            self._first_taken.set()  # never leave start() waiting

    def _sample_on_cadence(self) -> None:
        cost_started = time.thread_time()
        started_at = time.perf_counter()
        try:
            # cpu_percent(None) measures since this thread's previous call: these set it up.
            psutil.cpu_percent(None)
            psutil.cpu_percent(None, percpu=True)
            if self._server:
                self._server.read(started_at)
        except Exception:  # as in _sample_once: the samples will say what they can
            self._log_failure("resource sampler set-up failed")
        next_at = started_at + min(self.interval_s, FIRST_WINDOW_S)
        self._cost_s += time.thread_time() - cost_started
        while not self._stopping.wait(max(0.0, next_at - time.perf_counter())):
            cost_started = time.thread_time()
            self._sample_once()
            self._first_taken.set()
            # Fixed cadence against absolute targets; after a stall, skip the missed ticks.
            next_at += self.interval_s
            behind_s = time.perf_counter() - next_at
            if behind_s > 0:
                next_at += math.ceil(behind_s / self.interval_s) * self.interval_s
            self._cost_s += time.thread_time() - cost_started

    def _sample_once(self) -> None:
        try:
            sample = self._read()
        except Exception:  # a sampler bug must not take the run down; the sample is lost
            self._log_failure("resource sample failed")
            return
        with self._lock:
            self._samples.append(sample)
        if self.on_sample is not None:
            try:
                self.on_sample(sample)
            except Exception:
                self._log_failure("on_sample callback failed")

    def _read(self) -> ResourceSample:
        now = time.perf_counter()
        taken_at = datetime.now(UTC).replace(tzinfo=None)
        cpu_percent = psutil.cpu_percent(None)
        per_core_percent = psutil.cpu_percent(None, percpu=True)
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        server_cpu, server_rss = self._server.read(now) if self._server else (None, None)
        gpu_util, gpu_mem, gpu_power = self._gpus.read() if self._gpus else (None, None, None)
        assert self.t0 is not None  # set in start()
        return ResourceSample(
            offset_s=now - self.t0,
            taken_at=taken_at,
            cpu_percent=cpu_percent,
            per_core_percent=per_core_percent,
            ram_used_bytes=memory.used,
            ram_percent=memory.percent,
            swap_used_bytes=swap.used,
            server_cpu_percent=server_cpu,
            server_rss_bytes=server_rss,
            gpu_util_percent=gpu_util,
            gpu_mem_used_bytes=gpu_mem,
            gpu_power_w=gpu_power,
        )

    def _log_failure(self, what: str) -> None:
        # Once with the traceback; repeating it every 250 ms would bury the run's output.
        self._failures += 1
        if self._failures == 1:
            logger.exception("%s (sampling goes on; further failures are not logged)", what)
