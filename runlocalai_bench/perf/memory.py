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
from dataclasses import dataclass
from typing import Callable

from runlocalai_bench.devices import synchronize
from runlocalai_bench.perf.nvml import held_now_mb, record_baseline
from runlocalai_bench.rerankers.base import Reranker, Variant
from runlocalai_bench.rerankers.registry import import_runtime
from runlocalai_bench.serving.process import proc_status_mb, reset_peak


def _status_mb(*fields: str, pid: int | None = None) -> dict[str, float | None]:
    """Fields of ``/proc/<pid>/status`` (this process's by default; kB there) in MiB; None for each where /proc
    is absent (not Linux) or the process is gone."""
    return proc_status_mb("self" if pid is None else pid, *fields)


def rss_mb() -> float | None:
    """Resident memory of this process now (Linux VmRSS; None where /proc is absent): what is held before and
    after a model is loaded, as opposed to :func:`peak_rss_mb`, the high-water mark."""
    return _status_mb("VmRSS")["VmRSS"]


def release_free_memory() -> None:
    """Collect garbage and hand glibc's free heap back to the OS, so a resident-set reading counts what is held,
    not what was freed and kept by the allocator."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name and sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(libc_name).malloc_trim(0)
        except (OSError, AttributeError):  # musl and others have no malloc_trim
            pass


def peak_rss_mb(pid: int | None = None) -> float | None:
    """Peak resident memory of this process (or of ``pid``, a server it started) since start or the last
    :func:`reset_peak_rss` (Linux VmHWM)."""
    peak = _status_mb("VmHWM", pid=pid)["VmHWM"]
    if peak is not None or pid is not None:
        return peak
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def reset_peak_rss(pid: int | None = None) -> bool:
    """Start a new peak-RSS window of this process (or of ``pid``, a server it started; Linux: writing 5 to
    clear_refs resets VmHWM), so the peak of inference is not the peak of loading the model or of an earlier job.
    False where unsupported.

    Garbage is collected and glibc's free heap returned to the OS first: VmHWM restarts at the current RSS,
    which must not include memory already freed."""
    release_free_memory()
    return reset_peak("self" if pid is None else pid)


def start_gpu_window(device: str) -> None:
    """Begin a job's GPU memory window: wait for queued work, return torch's cached blocks to the driver and reset
    its peak counters. Without emptying the cache a job would start holding the blocks earlier jobs (larger
    batches, longer shapes) left reserved, and NVML's figure for it would be theirs."""
    if not device.startswith("cuda"):
        return
    import torch

    synchronize(device)
    gc.collect()  # tensors only the garbage collector can free still hold their blocks
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)


def torch_peak_mb(device: str) -> dict[str, float | None]:
    """Peak allocated and reserved by torch's caching allocator since the last reset (CUDA only). These see
    torch tensors only; :class:`perf.nvml.VramPeak` sees the whole process."""
    if not device.startswith("cuda"):
        return {"peak_vram_torch_mb": None, "peak_vram_torch_reserved_mb": None}
    import torch

    return {"peak_vram_torch_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "peak_vram_torch_reserved_mb": torch.cuda.max_memory_reserved(device) / 2**20}


@dataclass(frozen=True)
class LoadMemory:
    """What a process held before and after a reranker was loaded into it, and at the peak of loading.

    ``before`` is read once the runtime's libraries are imported and before the model is read, so a job's peak
    minus ``before`` is the model's share: weights, runtime buffers and activations, without the interpreter,
    the libraries or the run's texts. CPU: resident set; CUDA: the process's GPU memory by NVML.
    """

    rss_before_mb: float | None
    rss_after_mb: float | None
    rss_load_peak_mb: float | None
    vram_before_mb: float | None = None
    vram_after_mb: float | None = None
    vram_source: str | None = None  # which counter the two VRAM readings are on (perf.nvml.process_vram_mb)

    def before_mb(self, device: str, source: str | None = None) -> float | None:
        """What was held before loading, on the counter the device is judged by; on CUDA only when ``source``
        (the counter of the reading it will be subtracted from) is the same."""
        if not device.startswith("cuda"):
            return self.rss_before_mb
        return self.vram_before_mb if source is None or source == self.vram_source else None

    def as_dict(self) -> dict[str, float | None]:
        return {"rss_before_load_mb": self.rss_before_mb, "rss_after_load_mb": self.rss_after_mb,
                "rss_load_peak_mb": self.rss_load_peak_mb, "vram_before_load_mb": self.vram_before_mb,
                "vram_after_load_mb": self.vram_after_mb}


def resident_split_mb(pid: int | None = None) -> dict[str, float | None]:
    """The resident set now (of this process, or of ``pid``), split (Linux): ``rss_anon_mb`` (the process's own
    heap: copies, buffers, activations) and ``rss_file_mb`` (mapped files' pages that were touched: memory-mapped
    weights count here, and only the pages read so far, e.g. the embedding rows of the tokens seen)."""
    found = _status_mb("RssAnon", "RssFile", pid=pid)
    return {"rss_anon_mb": found["RssAnon"], "rss_file_mb": found["RssFile"]}


def memory_now(device: str) -> tuple[float | None, float | None, str | None]:
    """(resident set, GPU memory held on ``device``, the GPU reading's source) now, after freed memory went back
    to the OS (and torch's cached GPU blocks to the driver)."""
    release_free_memory()
    if device.startswith("cuda"):
        start_gpu_window(device)
    return (rss_mb(), *held_now_mb(device))


def load_measured(variant: Variant, device: str, load: Callable[[], Reranker]) -> Reranker:
    """Run ``load`` (e.g. :func:`registry.load_reranker`, whose exports are built in a process of their own) with
    the variant's runtime already imported, and record on the reranker what the process held before and after
    it and the peak of loading (:class:`LoadMemory`)."""
    record_baseline(device)  # the device's level before this process's CUDA context, for a hidden PID
    import_runtime(variant)
    if device.startswith("cuda"):  # the CUDA context (shared by torch, ONNX Runtime and llama.cpp) is not the model's
        import torch

        torch.zeros(1, device=device)
        torch.cuda.synchronize(device)
    rss_before, vram_before, source_before = memory_now(device)
    window = reset_peak_rss()
    reranker = load()
    load_peak = peak_rss_mb() if window else None
    rss_after, vram_after, source_after = memory_now(device)
    pid = reranker.memory_pid()
    if pid is not None:
        # A served variant: the server process held nothing before it was started, and all it holds is the served
        # model's cost (weights, buffers, the server's own code, its CUDA context); the client's readings above are
        # not the model's. Its GPU memory is read from NVML's process list for the server's PID.
        vram_after, vram_source = held_now_mb(device, pid)
        reranker.memory = LoadMemory(0.0, _status_mb("VmRSS", pid=pid)["VmRSS"], peak_rss_mb(pid),
                                     0.0 if vram_after is not None else None, vram_after, vram_source)
        return reranker
    same = source_before == source_after
    reranker.memory = LoadMemory(rss_before, rss_after, load_peak, vram_before, vram_after if same else None,
                                 source_before)
    return reranker
