"""The one reader of the machine this process runs on: CPU model, cores, load.

Used by the training records (:mod:`klvae.experiments`), the benchmarks (:mod:`klvae.bench`)
and the run record (:mod:`klvae.record`). Imports no deep-learning
framework (the backend's versions are :func:`klvae.backend.describe`).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """Logical CPUs this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def load_average() -> float | str:
    """The 1-minute load average (rounded to 0.01), or ``""`` where the OS has none."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else ""


__all__ = ["cpu_model", "usable_cores", "load_average"]
