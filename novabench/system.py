"""What machine a run happened on (psutil and the platform module)."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any

import psutil

from novabench import __version__


def cpu_model() -> str:
    """The CPU's marketing name, where the OS tells it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def system_info() -> dict[str, Any]:
    """OS, CPU model and core counts, RAM, Python, novabench version and hostname."""
    memory = psutil.virtual_memory()
    return {
        "os": f"{platform.system()} {platform.release()}",
        "os_version": platform.version(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_cores_physical": psutil.cpu_count(logical=False),
        "cpu_cores_logical": psutil.cpu_count(logical=True),
        "ram_bytes": memory.total,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "novabench_version": __version__,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
    }
