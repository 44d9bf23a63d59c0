"""What machine a run happened on (psutil, the platform module and, where present, NVML)."""

from __future__ import annotations

import logging
import os
import platform
import socket
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from novabench.version import __version__

logger = logging.getLogger(__name__)


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
        "gpus": gpu_info(),
    }


def open_nvml() -> ModuleType | None:
    """pynvml, initialised, when the module, the NVIDIA driver and a GPU are all there; else None.

    A caller that gets the module calls `nvmlShutdown()` when done (NVML counts inits).
    """
    try:
        import pynvml  # the optional `gpu` extra (nvidia-ml-py)
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as error:  # NVMLError subclasses: no driver, no library, no permission
        logger.debug("NVML unavailable: %s", error)
        return None
    try:
        if pynvml.nvmlDeviceGetCount() > 0:
            return pynvml
    except Exception as error:
        logger.debug("NVML lists no GPUs: %s", error)
    shutdown_nvml(pynvml)
    return None


def shutdown_nvml(nvml: ModuleType) -> None:
    """Release NVML; a failure here changes nothing for the caller."""
    try:
        nvml.nvmlShutdown()
    except Exception as error:
        logger.debug("nvmlShutdown failed: %s", error)


def gpu_info() -> list[dict[str, Any]]:
    """Name, driver version and memory of each NVIDIA GPU; [] without NVML or a GPU."""
    nvml = open_nvml()
    if nvml is None:
        return []
    try:
        driver_version = _nvml_text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                {
                    "index": index,
                    "name": _nvml_text(nvml.nvmlDeviceGetName(handle)),
                    "driver_version": driver_version,
                    "memory_total_bytes": int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                }
            )
        return gpus
    except Exception as error:
        logger.debug("NVML could not describe the GPUs: %s", error)
        return []
    finally:
        shutdown_nvml(nvml)


def _nvml_text(value: str | bytes) -> str:
    # nvidia-ml-py before 11.515 returns bytes, later versions str.
    return value.decode(errors="replace") if isinstance(value, bytes) else value
