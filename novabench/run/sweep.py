"""Load mode moved to novabench.run.workloads.sweep; this name stays for code importing it."""

from novabench.run.workloads.sweep import (
    ClosedLoop,
    LoadSweep,
    OpenLoop,
    arrival_offsets_s,
    level_row,
)

__all__ = ["ClosedLoop", "LoadSweep", "OpenLoop", "arrival_offsets_s", "level_row"]
