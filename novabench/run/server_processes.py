"""The local model server's processes: found by the port it listens on (else Ollama by name),
with their children (model runners come and go), read for CPU and RSS on each sample."""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import os
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from novabench.config.hosts import normalize_host

logger = logging.getLogger(__name__)

# How often the server's child processes are looked up again (runners come and go with models).
CHILDREN_REFRESH_S = 1.0
# How often a server that went away (restarted) is looked for again.
REDISCOVER_S = 5.0
SERVER_NAMES = frozenset({"ollama", "ollama.exe"})


def find_server_processes(host_url: str) -> list[psutil.Process]:
    """The Ollama server behind `host_url` and its runner processes; [] when remote or not found.

    The server is the process listening on the URL's port. Where the OS hides that process (an
    `ollama` service user, macOS without root), it is the `ollama serve` process found by name.
    """
    endpoint = local_endpoint(host_url)
    if endpoint is None:
        return []
    found: dict[int, psutil.Process] = {}
    for root in _server_roots(endpoint[1]):
        found.setdefault(root.pid, root)
        for child in _descendants(root):
            found.setdefault(child.pid, child)
    return list(found.values())


class ServerProcesses:
    """The local server's processes: CPU time and RSS summed over the server and its runners."""

    def __init__(self, ports: list[int], roots: list[psutil.Process]) -> None:
        self.ports = ports
        self.roots = roots
        self.pids: list[int] = [p.pid for p in roots]
        self._cpu_s: dict[psutil.Process, float] = {}  # CPU time at the previous read
        self._tracked: list[psutil.Process] = list(roots)
        self._refreshed_at = -math.inf
        self._lost_at: float | None = None
        self._read_at: float | None = None

    @classmethod
    def find(cls, ports: list[int]) -> ServerProcesses:
        """The server processes listening on these local ports (or found by name)."""
        roots = _find_roots(ports)
        if not roots:
            logger.debug("no local Ollama server process found for ports %s", ports)
        return cls(ports, roots)

    def read(self, now: float) -> tuple[float | None, int | None]:
        """CPU % (of one core) since the previous read and RSS now; (None, None) when unreadable."""
        elapsed_s = now - self._read_at if self._read_at is not None else None
        self._read_at = now
        if not self.roots:
            self._rediscover(now)
            return None, None
        if now - self._refreshed_at >= CHILDREN_REFRESH_S:
            self._refresh_children(now)
        wall_now = time.time()
        cpu_s_total, rss_total, complete = 0.0, 0, True
        cpu_s: dict[psutil.Process, float] = {}
        for proc in self._tracked:
            try:
                times = proc.cpu_times()  # (oneshot() would not help: these read two files)
                rss = proc.memory_info().rss
                created = proc.create_time()  # psutil keeps it from when it made `proc`
            except psutil.NoSuchProcess:
                if proc in self.roots:  # the server itself went away (restart, crash)
                    self.roots.remove(proc)
                    complete = False
                continue  # a runner that exited (model unloaded) just stops counting
            except (psutil.Error, OSError):
                complete = False  # access denied: a partial sum would understate the server
                continue
            used_s = times.user + times.system
            cpu_s[proc] = used_s
            rss_total += rss
            previous_s = self._cpu_s.get(proc)
            if previous_s is not None:
                cpu_s_total += max(0.0, used_s - previous_s)
            elif elapsed_s:
                # New since the previous read: count its share of this interval, assuming an even
                # rate over its life, so a runner found late does not show up as a spike.
                age_s = wall_now - created
                cpu_s_total += used_s * min(1.0, elapsed_s / age_s) if age_s > 0 else used_s
        self._cpu_s = cpu_s
        if not self.roots:
            self._lost_at = now
            self._tracked, self.pids = [], []
        if not complete or not elapsed_s:
            return None, None
        return cpu_s_total / elapsed_s * 100.0, rss_total

    def _refresh_children(self, now: float) -> None:
        tracked = {p.pid: p for p in self.roots}
        for root in self.roots:
            for child in _descendants(root):
                tracked.setdefault(child.pid, child)
        self._tracked = list(tracked.values())
        self.pids = sorted(tracked)
        self._refreshed_at = now

    def _rediscover(self, now: float) -> None:
        # Only a server that was found and then lost is looked for again (Ollama restarted).
        if self._lost_at is None or now - self._lost_at < REDISCOVER_S:
            return
        self._lost_at = now
        self.roots = _find_roots(self.ports)
        self._tracked = list(self.roots)
        self._refreshed_at = -math.inf


def _find_roots(ports: Iterable[int]) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    for port in ports:
        for proc in _server_roots(port):
            found.setdefault(proc.pid, proc)
    return list(found.values())


def _server_roots(port: int) -> list[psutil.Process]:
    """The process listening on `port`; the Ollama server found by name when that is hidden."""
    pids = _listening_pids(port)
    if pids is None:
        return _ollama_by_name()
    roots = []
    for pid in pids:
        try:
            roots.append(psutil.Process(pid))
        except psutil.Error:
            continue
    return roots


def _listening_pids(port: int) -> list[int] | None:
    """Pids listening on TCP `port`: [] when none listens, None when the OS will not tell."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):  # macOS without root: AccessDenied
        return None
    listeners = [
        c
        for c in connections
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    ]
    # pid is None for sockets of another user's processes (an `ollama` service user).
    pids = sorted({c.pid for c in listeners if c.pid})
    return None if listeners and not pids else pids


def _ollama_by_name() -> list[psutil.Process]:
    """`ollama serve` and `ollama runner` processes; other `ollama` ones only without those."""
    matches = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        name = (proc.info.get("name") or "").lower()
        args = [str(a).lower() for a in (proc.info.get("cmdline") or [])]
        if name in SERVER_NAMES or "ollama serve" in " ".join(args):
            matches.append((proc, args[1] if len(args) > 1 else ""))
    serving = [proc for proc, command in matches if command in ("serve", "runner")]
    return serving or [proc for proc, _ in matches]  # `ollama run` clients are not the server


def _descendants(root: psutil.Process) -> list[psutil.Process]:
    """Children, grandchildren, ... of `root`; [] when it is gone or unreadable."""
    pids = _linux_descendant_pids(root.pid)
    if pids is None:
        try:
            return root.children(recursive=True)
        except (psutil.Error, OSError):
            return []
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:
            continue
    return found


def _linux_descendant_pids(pid: int) -> list[int] | None:
    """Descendant pids from /proc/PID/task/TID/children; None where the kernel lacks the file.

    psutil's children() reads every process on the machine (~20 µs each); this reads only the
    server's own threads, which matters when it runs every second beside a benchmark.
    """
    if not _proc_children_files():
        return None
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            if parent == pid:
                return None  # let psutil tell gone from denied
            continue  # a child that exited meanwhile
        for task in tasks:
            try:
                text = Path(f"/proc/{parent}/task/{task}/children").read_text()
            except OSError:
                continue  # a thread that exited meanwhile
            children = [int(p) for p in text.split()]
            found.extend(children)
            pending.extend(children)
    return found


@functools.cache
def _proc_children_files() -> bool:
    """Whether this kernel has /proc/PID/task/TID/children (Linux with CONFIG_PROC_CHILDREN)."""
    pid = os.getpid()
    return sys.platform.startswith("linux") and os.path.exists(f"/proc/{pid}/task/{pid}/children")


def local_endpoint(host_url: str) -> tuple[str, int] | None:
    """(host name, port) when `host_url` points at this machine; None for a remote or bad one."""
    try:
        url = urlsplit(normalize_host(host_url))
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        return None
    hostname = url.hostname or ""
    return (hostname, port) if is_local_host(hostname) else None


def is_local_host(hostname: str) -> bool:
    """Whether `hostname` names this machine: loopback, unspecified, or one of its interfaces."""
    name = hostname.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _ip(name)
    if address is not None:
        addresses = {address}
    else:
        try:  # resolves a name (DNS, hosts file); never connects
            infos = socket.getaddrinfo(name, None)
        except (OSError, UnicodeError):
            return False
        addresses = {a for info in infos if (a := _ip(str(info[4][0]))) is not None}
    if any(a.is_loopback or a.is_unspecified for a in addresses):
        return True
    return not addresses.isdisjoint(_interface_addresses())


def _interface_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    found = set()
    for nic_addresses in psutil.net_if_addrs().values():
        for nic_address in nic_addresses:
            if nic_address.family in (socket.AF_INET, socket.AF_INET6):
                address = _ip(nic_address.address)
                if address is not None:
                    found.add(address)
    return found


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address
