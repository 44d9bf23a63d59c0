"""NVIDIA GPUs through NVML (nvidia-ml-py, optional): utilisation, memory and power per sample."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from novabench.run.machine import open_nvml, shutdown_nvml

logger = logging.getLogger(__name__)


class Gpus:
    """NVML handles for every GPU; figures are None where NVML cannot give them."""

    def __init__(self, nvml: ModuleType, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles

    @classmethod
    def open(cls) -> Gpus | None:
        nvml = open_nvml()
        if nvml is None:
            return None
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception as error:  # NVMLError: a GPU fell off the bus, permissions
            logger.debug("NVML gave no GPU handles: %s", error)
            shutdown_nvml(nvml)
            return None
        return cls(nvml, handles)

    def read(self) -> tuple[float | None, int | None, float | None]:
        """Mean utilisation %, summed memory used (bytes) and summed power (W)."""
        utils: list[float] = []
        mem_used: list[int] = []
        power_w: list[float] = []
        nvml = self.nvml
        for handle in self.handles:
            # Each figure on its own: consumer GPUs often lack power readings, for one.
            rates = _nvml_read(nvml.nvmlDeviceGetUtilizationRates, handle)
            if rates is not None:
                utils.append(float(rates.gpu))
            memory = _nvml_read(nvml.nvmlDeviceGetMemoryInfo, handle)
            if memory is not None:
                mem_used.append(int(memory.used))
            milliwatts = _nvml_read(nvml.nvmlDeviceGetPowerUsage, handle)
            if milliwatts is not None:
                power_w.append(milliwatts / 1000.0)
        return (
            sum(utils) / len(utils) if utils else None,
            sum(mem_used) if mem_used else None,
            sum(power_w) if power_w else None,
        )

    def close(self) -> None:
        shutdown_nvml(self.nvml)


def _nvml_read(read: Callable[[Any], Any], handle: Any) -> Any:
    try:
        return read(handle)
    except Exception:  # NVMLError_NotSupported and friends: leave the figure out, quietly
        return None
