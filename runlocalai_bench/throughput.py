"""Timing harness: warm-up, then timed rounds until both a minimum duration and round count are reached.

Two workloads (DESIGN.md): ``candidates`` times the run's real query-candidate pairs end to end (text in,
scores out, tokenization and length-sorted batching included); ``fixed`` times the model alone on
synthetic batches of exact shape (batch size x max length). GPU work is synchronized before clocks are read
(:meth:`Reranker.forward` synchronizes). Memory and energy are read around the timed work.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from runlocalai_bench.backends import Pair, Reranker


@dataclass
class Rounds:
    pairs_per_s: list[float]
    batch_latencies_s: list[float]
    pairs_total: int


def run_rounds(step: Callable[[], tuple[int, list[float]]], warmup_rounds: int, min_seconds: float,
               min_rounds: int) -> Rounds:
    """Call ``step`` (returns pairs done and per-batch latencies) ``warmup_rounds`` times untimed, then until
    ``min_seconds`` have passed and ``min_rounds`` rounds are done."""
    for _ in range(warmup_rounds):
        step()
    rates, latencies, total = [], [], 0
    started = time.perf_counter()
    while len(rates) < min_rounds or time.perf_counter() - started < min_seconds:
        began = time.perf_counter()
        pairs, batch_latencies = step()
        rates.append(pairs / (time.perf_counter() - began))
        latencies.extend(batch_latencies)
        total += pairs
    return Rounds(rates, latencies, total)


def summarize_rounds(rounds: Rounds) -> dict[str, float]:
    rates = np.asarray(rounds.pairs_per_s)
    q1, median, q3 = np.percentile(rates, [25, 50, 75])
    p50, p90, p99 = np.percentile(np.asarray(rounds.batch_latencies_s) * 1e3, [50, 90, 99])
    return {"pairs_per_s": float(median), "pairs_per_s_iqr": float(q3 - q1), "latency_p50_ms": float(p50),
            "latency_p90_ms": float(p90), "latency_p99_ms": float(p99), "rounds": int(rates.size),
            "pairs_timed": rounds.pairs_total}


def time_candidates(reranker: Reranker, pairs: Sequence[Pair], batch_size: int, max_length: int,
                    length_sorted: bool, warmup_rounds: int, min_seconds: float, min_rounds: int) -> dict[str, Any]:
    """End to end on real pairs; one round is one pass over all of them."""
    last = {}

    def step() -> tuple[int, list[float]]:
        run = reranker.score(pairs, batch_size, max_length, length_sorted)
        last["run"] = run
        return len(pairs), run.batch_seconds

    rounds = run_rounds(step, warmup_rounds, min_seconds, min_rounds)
    run = last["run"]
    return {**summarize_rounds(rounds), "workload": "candidates", "batch_size": batch_size, "max_length": max_length,
            "n_pairs": len(pairs), "mean_tokens": run.tokens / len(pairs), "padding_fraction": run.padding_fraction,
            "length_sorted": length_sorted}


def fixed_features(reranker: Reranker, batch_size: int, max_length: int) -> dict[str, Any]:
    """A batch of exactly ``max_length`` tokens per pair (real token ids from a long repeated text)."""
    text = " ".join(["retrieval"] * max_length)
    features = reranker.tokenize([(text, text)] * batch_size, max_length)
    if features["input_ids"].shape[1] != max_length:
        raise ValueError(f"could not build a {max_length}-token pair (got {features['input_ids'].shape[1]})")
    return features


def time_fixed(reranker: Reranker, batch_size: int, max_length: int, warmup_rounds: int, min_seconds: float,
               min_rounds: int) -> dict[str, Any]:
    """Model only: one round is one forward call on a fixed-shape batch."""
    features = fixed_features(reranker, batch_size, max_length)

    def step() -> tuple[int, list[float]]:
        began = time.perf_counter()
        reranker.forward(features)
        return batch_size, [time.perf_counter() - began]

    rounds = run_rounds(step, warmup_rounds, min_seconds, min_rounds)
    return {**summarize_rounds(rounds), "workload": "fixed", "batch_size": batch_size, "max_length": max_length,
            "n_pairs": batch_size, "mean_tokens": float(max_length), "padding_fraction": 0.0, "length_sorted": False}


# ------------------------------------------------------------------------------------- memory, energy


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
    import ctypes
    import ctypes.util
    import gc

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


def reset_gpu_peak(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def gpu_memory_mb(device: str) -> dict[str, float | None]:
    """Peak allocated and reserved by torch's caching allocator, and NVML's used memory when available."""
    out: dict[str, float | None] = {"peak_vram_mb": None, "peak_vram_reserved_mb": None, "nvml_used_mb": None}
    if not device.startswith("cuda"):
        return out
    import torch

    out["peak_vram_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    out["peak_vram_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    try:
        import pynvml

        pynvml.nvmlInit()
        index = int(device.split(":")[1]) if ":" in device else 0
        out["nvml_used_mb"] = pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(index)).used / 2**20
    except Exception:  # noqa: BLE001 - NVML is optional; absent means "not measured", recorded as missing
        pass
    return out


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
