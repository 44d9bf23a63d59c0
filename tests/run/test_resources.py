"""Resource sampling: cadence, sane figures, the local server's processes, GPUs via NVML."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from novabench.analysis.resources import RESOURCE_FIGURES, WindowStats, window_stats
from novabench.records import ResourceSample
from novabench.run import server_processes as sampling
from novabench.run.machine import gpu_info, system_info
from novabench.run.resources import ResourceSampler
from novabench.run.server_processes import find_server_processes, is_local_host
from tests.conftest import free_port

INTERVAL_S = 0.05
REMOTE = "http://192.0.2.1:11434"  # TEST-NET-1: only ever parsed, never reached

# A stand-in server: listens on a loopback port and prints it; after DELAY seconds it starts a
# chain of DEPTH descendants, the last of which burns CPU like an `ollama runner` at work.
# Arguments: ROLE DEPTH DELAY CODE.
SERVER_CODE = """
import socket, subprocess, sys, time
role, depth, delay, code = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
if role == "server":
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    print(listener.getsockname()[1], flush=True)
    time.sleep(delay)
if depth:
    subprocess.Popen([sys.executable, "-c", code, "child", str(depth - 1), "0", code])
elif role == "child":
    deadline = time.time() + 30
    while time.time() < deadline:
        pass
time.sleep(60)
"""


class StandIn:
    """A stand-in server process and the processes it starts."""

    def __init__(self, descendants: int = 0, delay_s: float = 0.0) -> None:
        args = ["server", str(descendants), str(delay_s), SERVER_CODE]
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER_CODE, *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"
        self.descendants = descendants
        self.descendant_pids: list[int] = []
        if not delay_s:
            self.wait_for_descendants()

    def wait_for_descendants(self) -> None:
        deadline = time.monotonic() + 10
        while len(self.descendant_pids) < self.descendants and time.monotonic() < deadline:
            time.sleep(0.05)
            children = psutil.Process(self.process.pid).children(recursive=True)
            self.descendant_pids = [c.pid for c in children]
        assert len(self.descendant_pids) == self.descendants

    def kill(self) -> None:
        if self.process.poll() is not None:
            return
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        self.process.kill()
        self.process.wait()


@pytest.fixture
def server() -> Iterator[StandIn]:
    stand_in = StandIn()
    yield stand_in
    stand_in.kill()


@pytest.fixture
def busy_server() -> Iterator[StandIn]:
    """A server whose grandchild keeps one core busy."""
    stand_in = StandIn(descendants=2)
    yield stand_in
    stand_in.kill()


def sample_for(seconds: float, **kwargs: Any) -> tuple[ResourceSampler, list[ResourceSample]]:
    with ResourceSampler(interval_s=INTERVAL_S, **kwargs) as sampler:
        time.sleep(seconds)
    return sampler, sampler.stop()


# --- cadence and figures -------------------------------------------------------------------


def test_samples_come_on_a_fixed_cadence() -> None:
    _, samples = sample_for(0.6)
    assert 5 <= len(samples) <= 16  # ~12 expected; a loaded machine may skip a few ticks
    offsets = [s.offset_s for s in samples]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    gaps = [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    assert 0.7 * INTERVAL_S < statistics.median(gaps) < 1.5 * INTERVAL_S
    # Absolute targets: samples stay on the grid that starts at the first one (no drift).
    phases = [((o - offsets[0]) / INTERVAL_S) % 1 for o in offsets]
    assert statistics.median(min(p, 1 - p) for p in phases) < 0.25


def test_figures_are_in_sane_ranges() -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    _, samples = sample_for(0.3)
    after = datetime.now(UTC).replace(tzinfo=None)
    cores = psutil.cpu_count()
    total_ram = psutil.virtual_memory().total
    for sample in samples:
        assert 0 <= sample.cpu_percent <= 100
        assert len(sample.per_core_percent) == cores
        assert all(0 <= p <= 100 for p in sample.per_core_percent)
        assert 0 < sample.ram_used_bytes <= total_ram
        assert 0 < sample.ram_percent <= 100
        assert sample.swap_used_bytes >= 0
        assert sample.taken_at.tzinfo is None
        assert before - timedelta(seconds=1) <= sample.taken_at <= after + timedelta(seconds=1)
        assert sample.server_cpu_percent is None and sample.server_rss_bytes is None


def test_offsets_count_from_the_given_t0() -> None:
    t0 = time.perf_counter() - 10.0
    _, samples = sample_for(0.15, t0=t0)
    assert 10.0 <= samples[0].offset_s < 11.0


def test_a_busy_thread_raises_cpu_percent() -> None:
    stop = threading.Event()
    block = os.urandom(1 << 20)

    def burn() -> None:
        while not stop.is_set():
            hashlib.sha256(block).digest()  # releases the GIL: the sampler still runs on time

    burner = threading.Thread(target=burn, daemon=True)
    burner.start()
    try:
        time.sleep(0.1)
        _, samples = sample_for(0.6)
    finally:
        stop.set()
        burner.join()
    one_core_percent = 100 / psutil.cpu_count()
    assert statistics.mean(s.cpu_percent for s in samples[1:]) >= 0.6 * one_core_percent
    assert max(max(s.per_core_percent) for s in samples[1:]) >= 60


def test_start_returns_after_the_first_sample() -> None:
    sampler = ResourceSampler(interval_s=10.0)
    sampler.start()
    try:
        assert len(sampler.samples) == 1
    finally:
        sampler.stop()


def test_stop_is_quick_and_idempotent() -> None:
    sampler = ResourceSampler(interval_s=30.0)
    assert sampler.stop() == []  # never started
    sampler = ResourceSampler(interval_s=30.0)
    sampler.start()
    started = time.monotonic()
    first = sampler.stop()
    assert time.monotonic() - started < 2.0  # wakes from its 30 s wait at once
    assert sampler.stop() == first and len(first) == 1
    with pytest.raises(RuntimeError, match="already started"):
        sampler.start()


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="interval_s must be a positive number"):
        ResourceSampler(interval_s=0)


def test_on_sample_sees_every_sample_and_its_failures_do_not_stop_sampling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[ResourceSample] = []

    def keep_then_fail(sample: ResourceSample) -> None:
        seen.append(sample)
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR, logger="novabench.run.resources"):
        _, samples = sample_for(0.3, on_sample=keep_then_fail)
    assert len(samples) >= 3 and seen == samples
    assert len(caplog.records) == 1 and "on_sample callback failed" in caplog.text


def test_sampler_reports_its_own_cost() -> None:
    sampler, _ = sample_for(0.2)
    cost = sampler.cost_us_per_sample
    assert cost is not None and 0 < cost < 50_000


# --- the server's processes ----------------------------------------------------------------


def test_the_process_listening_on_the_host_port_is_found(server: StandIn) -> None:
    for url in (server.url, f"localhost:{server.port}", f"http://[::ffff:127.0.0.1]:{server.port}"):
        assert server.process.pid in [p.pid for p in find_server_processes(url)], url


def test_the_sampler_reports_the_server_cpu_and_rss(server: StandIn) -> None:
    sampler, samples = sample_for(0.3, server_hosts=[server.url, REMOTE])
    assert sampler.server_pids == [server.process.pid]
    rss = psutil.Process(server.process.pid).memory_info().rss
    for sample in samples:
        assert sample.server_cpu_percent is not None and sample.server_cpu_percent >= 0
        assert sample.server_rss_bytes is not None
        assert 0.5 * rss <= sample.server_rss_bytes <= 2 * rss
    assert statistics.mean(s.server_cpu_percent or 0 for s in samples) < 50  # it only sleeps


def test_runner_descendants_are_summed(busy_server: StandIn) -> None:
    expected = {busy_server.process.pid, *busy_server.descendant_pids}
    assert {p.pid for p in find_server_processes(busy_server.url)} == expected
    processes = [psutil.Process(pid) for pid in expected]

    def cpu_s() -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in processes)

    used_before_s = cpu_s()
    sampler, samples = sample_for(0.6, server_hosts=[busy_server.url])
    used_s = cpu_s() - used_before_s
    assert set(sampler.server_pids) == expected
    # The samples account for the CPU time the three used (the grandchild spins; how much it
    # gets depends on the machine's load). Sample 0 covers the time before, so it is left out.
    sampled_s = sum(
        (b.server_cpu_percent or 0) / 100 * (b.offset_s - a.offset_s)
        for a, b in zip(samples, samples[1:], strict=False)
    )
    assert used_s > 0.1
    assert 0.5 * used_s <= sampled_s <= 1.1 * used_s + 0.02
    own_rss = psutil.Process(busy_server.process.pid).memory_info().rss
    assert all((s.server_rss_bytes or 0) > own_rss for s in samples)


def test_runners_started_mid_run_are_picked_up_without_a_spike() -> None:
    stand_in = StandIn(descendants=1, delay_s=0.4)
    try:
        sampler, samples = sample_for(2.0, server_hosts=[stand_in.url])
        stand_in.wait_for_descendants()
    finally:
        stand_in.kill()
    assert stand_in.descendant_pids[0] in sampler.server_pids
    late = [s.server_cpu_percent or 0 for s in samples if s.offset_s > 1.6]
    assert late and statistics.mean(late) >= 10  # it spins, as far as the machine's load lets it
    # Found up to a second late, the runner's CPU time is spread over its life, not dumped
    # into one sample (that would read ~1000 % for a runner busy on one core).
    assert max(s.server_cpu_percent or 0 for s in samples) <= 200


def test_descendants_without_proc_children_files(
    busy_server: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sampling, "_proc_children_files", lambda: False)
    found = {p.pid for p in find_server_processes(busy_server.url)}
    assert found == {busy_server.process.pid, *busy_server.descendant_pids}


def test_a_server_that_goes_away_mid_run_leaves_samples_without_server_figures(
    server: StandIn,
) -> None:
    with ResourceSampler(interval_s=INTERVAL_S, server_hosts=[server.url]) as sampler:
        time.sleep(0.2)
        server.kill()
        killed_at = time.perf_counter() - (sampler.t0 or 0)
        time.sleep(0.3)
    samples = sampler.stop()
    assert samples[0].server_rss_bytes is not None
    after = [s for s in samples if s.offset_s > killed_at + INTERVAL_S]
    assert after and all(s.server_rss_bytes is None for s in after)
    assert all(s.server_cpu_percent is None for s in after)
    assert sampler.server_pids == []


def test_access_denied_leaves_that_sample_without_server_figures(
    server: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    denied = threading.Event()
    real_cpu_times = psutil.Process.cpu_times

    def cpu_times(self: psutil.Process) -> Any:
        if denied.is_set():
            raise psutil.AccessDenied(self.pid)
        return real_cpu_times(self)

    monkeypatch.setattr(psutil.Process, "cpu_times", cpu_times)
    with ResourceSampler(interval_s=INTERVAL_S, server_hosts=[server.url]) as sampler:
        time.sleep(0.15)
        denied.set()
        time.sleep(0.2)
        denied.clear()
        time.sleep(0.2)
    samples = sampler.stop()
    assert any(s.server_rss_bytes is None for s in samples)
    assert samples[-1].server_rss_bytes is not None  # readable again: figures are back


def test_a_remote_host_gives_no_server_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a remote host must not be looked for on this machine")

    monkeypatch.setattr(psutil, "net_connections", never)
    monkeypatch.setattr(psutil, "process_iter", never)
    assert find_server_processes(REMOTE) == []
    sampler, samples = sample_for(0.15, server_hosts=[REMOTE])
    assert sampler.server_pids == []
    assert all(s.server_cpu_percent is None and s.server_rss_bytes is None for s in samples)


@pytest.mark.parametrize(
    ("hostname", "local"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", True),
        ("::", True),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
    ],
)
def test_local_host_names(hostname: str, local: bool) -> None:
    assert is_local_host(hostname) is local


def test_this_machines_interface_addresses_are_local() -> None:
    addresses = [
        a.address
        for nic in psutil.net_if_addrs().values()
        for a in nic
        if a.family.name in ("AF_INET", "AF_INET6")
    ]
    assert addresses and all(is_local_host(a) for a in addresses)


def hidden_listener(port: int) -> list[types.SimpleNamespace]:
    """What net_connections shows of a socket owned by another user: no pid."""
    address = types.SimpleNamespace(ip="127.0.0.1", port=port)
    return [types.SimpleNamespace(status=psutil.CONN_LISTEN, laddr=address, pid=None)]


def test_ollama_is_found_by_name_when_the_listener_is_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Python interpreter under the name `ollama`, run as `ollama serve` and `ollama run x`,
    # where `serve` and `run` are script files: the same name and cmdline as the real thing.
    ollama = tmp_path / "ollama"
    ollama.symlink_to(os.path.realpath(sys.executable))
    for script in ("serve", "run"):
        (tmp_path / script).write_text("import time\ntime.sleep(60)\n")
    serve = subprocess.Popen([str(ollama), "serve"], cwd=tmp_path)
    client = subprocess.Popen([str(ollama), "run", "llama3.2"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            names = {psutil.Process(serve.pid).name(), psutil.Process(client.pid).name()}
            if names == {"ollama"}:
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{free_port()}"
        # Nothing listens there: no server, whatever runs under the name.
        assert serve.pid not in [p.pid for p in find_server_processes(url)]
        port = int(url.rsplit(":", 1)[1])
        monkeypatch.setattr(psutil, "net_connections", lambda kind: hidden_listener(port))
        found = [p.pid for p in find_server_processes(url)]
        assert serve.pid in found
        assert client.pid not in found  # `ollama run` is a client, not the server
    finally:
        serve.kill()
        client.kill()
        serve.wait()
        client.wait()


def test_the_name_search_stands_in_when_connections_cannot_be_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def denied(kind: str) -> None:
        raise psutil.AccessDenied()  # macOS without root

    monkeypatch.setattr(psutil, "net_connections", denied)
    monkeypatch.setattr(sampling, "_ollama_by_name", lambda: [psutil.Process()])
    assert [p.pid for p in find_server_processes("localhost:11434")] == [os.getpid()]


def test_name_search_prefers_serve_and_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    def proc(pid: int, name: str, *cmdline: str) -> types.SimpleNamespace:
        return types.SimpleNamespace(pid=pid, info={"name": name, "cmdline": list(cmdline)})

    everything = [
        proc(1, "ollama", "/usr/bin/ollama", "run", "llama3.2"),
        proc(2, "ollama", "/usr/bin/ollama", "serve"),
        proc(3, "ollama", "/usr/bin/ollama", "runner", "--model", "x"),
        proc(4, "ollama.exe", "C:\\ollama.exe", "serve"),
        proc(5, "ollama app.exe", "C:\\ollama app.exe"),
        proc(6, "python", "python", "-m", "http.server"),
        proc(7, "sh", "sh", "-c", "ollama serve"),
        types.SimpleNamespace(pid=8, info={"name": "bash", "cmdline": None}),  # AccessDenied
    ]
    monkeypatch.setattr(psutil, "process_iter", lambda attrs: iter(everything))
    assert [p.pid for p in sampling._ollama_by_name()] == [2, 3, 4]
    monkeypatch.setattr(psutil, "process_iter", lambda attrs: iter(everything[:1] + everything[5:]))
    assert [p.pid for p in sampling._ollama_by_name()] == [1, 7]


# --- GPUs ----------------------------------------------------------------------------------


def test_without_pynvml_gpu_figures_are_none(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    with caplog.at_level(logging.INFO):
        _, samples = sample_for(0.15)
        assert gpu_info() == []
        assert system_info()["gpus"] == []
    assert all(s.gpu_util_percent is None for s in samples)
    assert all(s.gpu_mem_used_bytes is None and s.gpu_power_w is None for s in samples)
    assert not caplog.records


class FakeNVMLError(Exception):
    pass


def fake_nvml(gpus: list[dict[str, Any]], init_fails: bool = False) -> types.ModuleType:
    """A pynvml stand-in over `gpus` (util, used, total, power_mw or None, name)."""
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError  # type: ignore[attr-defined]
    module.inits = 0  # type: ignore[attr-defined]

    def init() -> None:
        if init_fails:
            raise FakeNVMLError("NVML Shared Library Not Found")
        module.inits += 1  # type: ignore[attr-defined]

    def shutdown() -> None:
        module.inits -= 1  # type: ignore[attr-defined]

    def power(handle: dict[str, Any]) -> int:
        if handle["power_mw"] is None:
            raise FakeNVMLError("Not Supported")
        return int(handle["power_mw"])

    functions = {
        "nvmlInit": init,
        "nvmlShutdown": shutdown,
        "nvmlDeviceGetCount": lambda: len(gpus),
        "nvmlDeviceGetHandleByIndex": lambda i: gpus[i],
        "nvmlDeviceGetUtilizationRates": lambda h: types.SimpleNamespace(gpu=h["util"], memory=0),
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(
            used=h["used"], total=h["total"]
        ),
        "nvmlDeviceGetPowerUsage": power,
        "nvmlDeviceGetName": lambda h: h["name"],
        "nvmlSystemGetDriverVersion": lambda: b"550.54.14",
    }
    for name, function in functions.items():
        setattr(module, name, function)
    return module


GIB = 1 << 30
TWO_GPUS: list[dict[str, Any]] = [
    {"util": 30, "used": 1 * GIB, "total": 24 * GIB, "power_mw": 100_000, "name": "RTX 4090"},
    {"util": 50, "used": 2 * GIB, "total": 8 * GIB, "power_mw": None, "name": b"RTX 3060 Ti"},
]


def test_gpu_figures_aggregate_over_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml(TWO_GPUS)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    _, samples = sample_for(0.15)
    for sample in samples:
        assert sample.gpu_util_percent == 40  # mean
        assert sample.gpu_mem_used_bytes == 3 * GIB  # sum
        assert sample.gpu_power_w == 100  # the GPU without a power reading is left out
    assert nvml.inits == 0  # shut down again on stop


def test_gpu_info_describes_each_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml(TWO_GPUS)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert gpu_info() == [
        {
            "index": 0,
            "name": "RTX 4090",
            "driver_version": "550.54.14",
            "memory_total_bytes": 24 * GIB,
        },
        {
            "index": 1,
            "name": "RTX 3060 Ti",
            "driver_version": "550.54.14",
            "memory_total_bytes": 8 * GIB,
        },
    ]
    assert nvml.inits == 0


@pytest.mark.parametrize("gpus", [[], TWO_GPUS])
def test_nvml_failures_mean_no_gpu_figures_and_no_noise(
    gpus: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No GPU at all, or a driver NVML cannot load.
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(gpus, init_fails=bool(gpus)))
    with caplog.at_level(logging.INFO):
        _, samples = sample_for(0.15)
        assert gpu_info() == []
    assert all(s.gpu_util_percent is None and s.gpu_power_w is None for s in samples)
    assert not caplog.records


# --- one request's lifetime ----------------------------------------------------------------


def hand_made(offset_s: float, cpu: float, **figures: Any) -> ResourceSample:
    row: dict[str, Any] = {
        "offset_s": offset_s,
        "taken_at": datetime(2025, 1, 1),
        "cpu_percent": cpu,
        "per_core_percent": [],
        "ram_used_bytes": 1000 + int(cpu),
        "ram_percent": 1.0,
        "swap_used_bytes": 0,
        "server_cpu_percent": None,
        "server_rss_bytes": None,
        "gpu_util_percent": None,
        "gpu_mem_used_bytes": None,
        "gpu_power_w": None,
    }
    return ResourceSample(**{**row, **figures})


SAMPLES = [
    hand_made(0.0, 10),
    hand_made(0.25, 40, server_cpu_percent=150.0, server_rss_bytes=5000),
    hand_made(0.5, 20, server_cpu_percent=None),
    hand_made(0.75, 60, server_cpu_percent=50.0, server_rss_bytes=7000),
    hand_made(1.0, 30),
]


def lifetime(samples: list[ResourceSample], start_s: float, end_s: float) -> WindowStats:
    """A request's lifetime: the samples inside it, or the nearest one (analysis/resources)."""
    return window_stats(samples, start_s, end_s, nearest=True)


def test_lifetime_stats_over_the_samples_inside_the_window() -> None:
    stats = lifetime(SAMPLES, 0.2, 0.8)
    assert set(stats.peak) == set(stats.mean) == set(RESOURCE_FIGURES)
    assert stats.samples == 3
    assert stats.peak["cpu_percent"] == 60 and stats.mean["cpu_percent"] == pytest.approx(40)
    assert stats.peak["ram_used_bytes"] == 1060
    # A figure absent from some samples is summarised over the ones that have it.
    assert stats.peak["server_cpu_percent"] == 150 and stats.mean["server_cpu_percent"] == 100
    assert stats.mean["server_rss_bytes"] == 6000
    assert stats.peak["gpu_util_percent"] is None and stats.mean["gpu_power_w"] is None


def test_lifetime_window_edges_are_inclusive() -> None:
    stats = lifetime(SAMPLES, 0.25, 0.75)
    assert stats.mean["cpu_percent"] == pytest.approx(40)  # 40, 20, 60


def test_a_request_shorter_than_the_interval_takes_the_next_sample() -> None:
    stats = lifetime(SAMPLES, 0.3, 0.4)
    assert stats.peak["cpu_percent"] == stats.mean["cpu_percent"] == 20  # the sample at 0.5
    assert stats.peak["server_cpu_percent"] is None


def test_a_request_after_the_last_sample_takes_the_last_one() -> None:
    stats = lifetime(SAMPLES, 1.1, 1.2)
    assert stats.peak["cpu_percent"] == 30


def test_a_level_window_takes_no_nearest_sample() -> None:
    """A load level's resources count only the samples taken during it."""
    assert window_stats(SAMPLES, 0.3, 0.4).samples == 0
    assert window_stats(SAMPLES, 0.3, 0.4).peak["cpu_percent"] is None


def test_lifetime_stats_without_samples_are_all_none() -> None:
    stats = lifetime([], 0.0, 1.0)
    assert set(stats.peak.values()) == set(stats.mean.values()) == {None}
