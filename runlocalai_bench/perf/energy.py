"""Energy over a block of work: RAPL on the CPU package, NVML's energy counter on NVIDIA GPUs."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class EnergyMeter:
    """Joules over a block from RAPL (CPU package, /sys/class/powercap) or NVML (GPU); None when unreadable."""

    RAPL = Path("/sys/class/powercap/intel-rapl:0/energy_uj")

    def __init__(self, device: str):
        self.device = device
        self.source: str | None = None
        self._start: float | None = None

    def _read(self) -> float | None:
        if self.device.startswith("cuda"):
            try:
                import pynvml

                pynvml.nvmlInit()
                index = int(self.device.split(":")[1]) if ":" in self.device else 0
                self.source = "nvml"
                return pynvml.nvmlDeviceGetTotalEnergyConsumption(pynvml.nvmlDeviceGetHandleByIndex(index)) / 1e3
            except Exception:  # noqa: BLE001
                return None
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
        self.joules = None if self._start is None or end is None or end < self._start else end - self._start

    joules: float | None = None
