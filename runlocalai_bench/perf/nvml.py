"""NVIDIA's management library (NVML, through nvidia-ml-py): the GPU memory this process holds, as
``nvidia-smi`` shows it, and the GPU's energy counter.

NVML sees every allocation of the process on the device: torch's caching allocator, ONNX Runtime's arena,
llama.cpp's buffers and the CUDA context itself. torch's own counters see only torch tensors, so a claim such
as "2 GB of VRAM" (what a user reads in nvidia-smi) is judged on NVML's figure.

Inside a container with its own PID namespace (the usual GPU box) the driver lists processes by the host's PIDs,
so this process never finds itself in NVML's list. Then its GPU memory is read as the device's used memory minus
the level recorded before this process created its CUDA context (:func:`record_baseline`): exact on a GPU this
process has to itself, and labelled (:data:`DEVICE_DIFFERENCE`) so a reader knows which counter it was. A served
variant's server (another PID) gets no such fallback: the device's used memory would count this process's own CUDA
context as the server's, so there its GPU memory stays None.

pynvml is imported inside the functions: it loads ``libnvidia-ml`` and is only useful on machines with an
NVIDIA driver; everywhere else these functions return None.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from runlocalai_bench.devices import device_index

SAMPLE_SECONDS = 0.01
PROCESS = "nvml process"
DEVICE_DIFFERENCE = "nvml device used minus its level before this process's CUDA context (process not visible to NVML)"
_baselines: dict[tuple[int, int, int], float] = {}  # PCI (domain, bus, device) -> used MiB before our CUDA context
LATE_BASELINE = " (baseline read after torch had initialised CUDA: it may include this process's context)"
_late = False  # set when the baseline was read after torch initialised CUDA in this process


def device_handle(device: str) -> Any | None:
    """The NVML handle of a torch CUDA device, matched by PCI bus id (torch and NVML may number GPUs
    differently under ``CUDA_VISIBLE_DEVICES``); None without NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no library: not measurable here
        return None
    import torch

    index = device_index(device)
    try:
        props = torch.cuda.get_device_properties(index)
        bus_id = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        return pynvml.nvmlDeviceGetHandleByPciBusId(bus_id.encode())
    except Exception:  # noqa: BLE001 - older torch without PCI ids: fall back to the ordinal
        try:
            return pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError:
            return None


def process_memory_mb(handle: Any, pid: int | None = None) -> float | None:
    """GPU memory this process (or ``pid``: a server it started) holds on the device (compute processes list), or
    None if NVML cannot say (e.g. a PID namespace hides the PID from the driver)."""
    import pynvml

    pid = os.getpid() if pid is None else pid
    for getter in (pynvml.nvmlDeviceGetComputeRunningProcesses, pynvml.nvmlDeviceGetGraphicsRunningProcesses):
        try:
            for process in getter(handle):
                if process.pid == pid and process.usedGpuMemory is not None:
                    return process.usedGpuMemory / 2**20
        except pynvml.NVMLError:
            continue
    return None


def device_used_mb(handle: Any) -> float | None:
    """Used memory of the whole device (every process, and the driver's reservations), or None."""
    import pynvml

    try:
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
    except pynvml.NVMLError:
        return None


def _pci_key(handle: Any) -> tuple[int, int, int] | None:
    """The GPU's PCI (domain, bus, device): one name for it whatever numbering torch or NVML uses."""
    import pynvml

    try:
        info = pynvml.nvmlDeviceGetPciInfo(handle)
        return int(info.domain), int(info.bus), int(info.device)
    except pynvml.NVMLError:
        return None


def _mig_enabled(handle: Any) -> bool:
    import pynvml

    try:
        return pynvml.nvmlDeviceGetMigMode(handle)[0] == pynvml.NVML_DEVICE_MIG_ENABLE
    except (pynvml.NVMLError, AttributeError):  # GPUs without MIG, older bindings
        return False


def record_baseline(device: str) -> None:
    """Read every GPU's used memory before this process creates its CUDA context (call it before any CUDA
    call; only the first call reads): what :func:`process_vram_mb` subtracts where NVML cannot list this
    process. NVML alone is asked, by its own indices and PCI ids, so the reading itself creates no context."""
    global _late
    if not device.startswith("cuda") or _baselines:
        return
    torch = sys.modules.get("torch")
    _late = bool(torch is not None and torch.cuda.is_initialized())
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except Exception:  # noqa: BLE001 - no driver, no library: nothing to subtract from
        return
    for index in range(count):
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError:  # a GPU NVML cannot open (no permission, fallen off the bus): no baseline for it
            continue
        if _mig_enabled(handle):
            continue  # its used memory is every slice's: minus a baseline it would not be this process's
        key, used = _pci_key(handle), device_used_mb(handle)
        if key is not None and used is not None:
            _baselines[key] = used


def process_vram_mb(handle: Any, pid: int | None = None) -> tuple[float | None, str | None]:
    """(MiB, source): this process's GPU memory by NVML's process list, or, where the list does not show this
    process (a PID namespace), the device's used memory minus :func:`record_baseline`'s level; (None, None) when
    neither can be read. For another process (``pid``, a served variant's server) the process list only: the
    device's used memory would count this process's own CUDA context as the server's."""
    held = process_memory_mb(handle, pid)
    if held is not None:
        return held, PROCESS
    if pid is not None and pid != os.getpid():
        return None, None
    key = _pci_key(handle)
    value, source = reading(None, device_used_mb(handle), _baselines.get(key) if key is not None else None)
    return value, (source + LATE_BASELINE if source and _late else source)


def reading(process_mb: float | None, device_used: float | None, baseline: float | None
            ) -> tuple[float | None, str | None]:
    """The process's own figure where NVML lists it; else the device's used memory minus the baseline, labelled."""
    if process_mb is not None:
        return process_mb, PROCESS
    if device_used is None or baseline is None:
        return None, None
    return device_used - baseline, DEVICE_DIFFERENCE


def held_now_mb(device: str, pid: int | None = None) -> tuple[float | None, str | None]:
    """(MiB, source) of the GPU memory this process (or ``pid``) holds on ``device`` right now
    (:func:`process_vram_mb`); (None, None) off CUDA or without NVML."""
    if not device.startswith("cuda"):
        return None, None
    handle = device_handle(device)
    if handle is None:
        return None, None
    return process_vram_mb(handle, pid)


class VramPeak:
    """Peak GPU memory of this process (or of ``pid``, a served variant's server) over a block, sampled every
    10 ms by a background thread.

    ``peak_mb`` is None when NVML is unavailable; ``source`` says which counter was read (:func:`process_vram_mb`).
    """

    def __init__(self, device: str, pid: int | None = None):
        self.device = device
        self.pid = pid
        self.peak_mb: float | None = None
        self.source: str | None = None
        self._handle = device_handle(device) if device.startswith("cuda") else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        value, source = process_vram_mb(self._handle, self.pid)
        if value is not None:
            self.peak_mb = value if self.peak_mb is None else max(self.peak_mb, value)
            self.source = source

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> "VramPeak":
        if self._handle is not None:
            self._sample()
            self._thread = threading.Thread(target=self._run, name="vram-peak", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._sample()


def energy_joules(device: str) -> float | None:
    """The GPU's total energy counter in joules (NVML, Volta and newer), or None."""
    handle = device_handle(device)
    if handle is None:
        return None
    import pynvml

    try:
        return pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3
    except pynvml.NVMLError:
        return None
