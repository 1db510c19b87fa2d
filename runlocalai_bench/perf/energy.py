"""Energy over the timed part of a job: RAPL on the CPU package, NVML's energy counter on NVIDIA GPUs.

Used as the ``timed`` context of :func:`perf.timing.run_rounds`, so warm-up rounds are never counted: joules per
1,000 pairs divides exactly the energy of the pairs it counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runlocalai_bench.perf.nvml import energy_joules


class EnergyMeter:
    """Joules over a block from RAPL (CPU package, /sys/class/powercap) or NVML (GPU); None when unreadable."""

    RAPL = Path("/sys/class/powercap/intel-rapl:0/energy_uj")

    def __init__(self, device: str):
        self.device = device
        self.source: str | None = None
        self.joules: float | None = None
        self._start: float | None = None

    def _read(self) -> float | None:
        if self.device.startswith("cuda"):
            value = energy_joules(self.device)
            self.source = "nvml" if value is not None else None
            return value
        try:
            value = int(self.RAPL.read_text()) / 1e6
            self.source = "rapl"
            return value
        except (OSError, ValueError):
            return None

    def __enter__(self) -> "EnergyMeter":
        self._start = self._read()
        return self

    def __exit__(self, *exc: Any) -> None:
        end = self._read()
        # A RAPL counter that wrapped around during the block reads lower at the end: not measured.
        self.joules = None if self._start is None or end is None or end < self._start else end - self._start
