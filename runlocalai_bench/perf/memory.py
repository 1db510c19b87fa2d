"""Memory counters: the process's peak resident set (Linux VmHWM, resettable per job) and torch's CUDA
allocator peaks. The process's GPU memory as nvidia-smi shows it comes from :mod:`perf.nvml`.

torch is imported inside the functions: CPU runs never need its CUDA state.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
import sys
from pathlib import Path



def peak_rss_mb() -> float:
    """Peak resident memory of this process since start or the last :func:`reset_peak_rss` (Linux VmHWM)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM), so the peak of inference
    is not the peak of a one-time export or quantization done in the same kernel. False where unsupported.

    Garbage from that export (a second copy of the model, converter buffers) is collected and glibc's free
    heap returned to the OS first: VmHWM restarts at the current RSS, which must not include it."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)
        except (OSError, AttributeError):  # musl and others have no malloc_trim
            pass
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def reset_torch_peak(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def torch_peak_mb(device: str) -> dict[str, float | None]:
    """Peak allocated and reserved by torch's caching allocator since the last reset (CUDA only). These see
    torch tensors only; :class:`perf.nvml.VramPeak` sees the whole process."""
    if not device.startswith("cuda"):
        return {"peak_vram_torch_mb": None, "peak_vram_torch_reserved_mb": None}
    import torch

    return {"peak_vram_torch_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "peak_vram_torch_reserved_mb": torch.cuda.max_memory_reserved(device) / 2**20}
