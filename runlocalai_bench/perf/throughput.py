"""One (variant, device)'s throughput rows: the timing harness plus memory, roofline and energy columns.

Everything backend-specific comes from the reranker contract (compute precision, weights format, activation
shape, memory counters): this module never asks which backend it is timing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from runlocalai_bench.params import Params
from runlocalai_bench.perf.energy import EnergyMeter
from runlocalai_bench.perf.memory import gpu_memory_mb, peak_rss_mb, reset_gpu_peak
from runlocalai_bench.perf.roofline import (
    flops_per_pair, measured_peak_tflops, memory_estimate_mb, model_shape, published_peak,
)
from runlocalai_bench.perf.timing import time_candidates, time_fixed
from runlocalai_bench.rerankers.base import TORCH_ALLOCATOR, Pair, Reranker
from runlocalai_bench.results.tables import COLUMNS


def device_memory(reranker: Reranker, device: str) -> dict[str, float | None]:
    """GPU memory columns, kept only for the counters that can see this reranker's memory (torch's allocator
    does not see ONNX Runtime's arena or llama.cpp's buffers: a zero there would mislead)."""
    memory = gpu_memory_mb(device)
    if TORCH_ALLOCATOR not in reranker.memory_counters():
        memory.update(peak_vram_mb=None, peak_vram_reserved_mb=None)
    return memory


def gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch  # only CUDA rows need it

    return torch.cuda.get_device_name(device)


def measure_throughput(reranker: Reranker, pairs: Sequence[Pair], params: Params, variant: str, device: str,
                       cache_dir: Path | None = None) -> pd.DataFrame:
    settings = params.throughput
    timed_pairs = list(pairs[: settings.max_pairs] if settings.max_pairs else pairs)
    shape = model_shape(reranker.config)
    precision = reranker.compute_precision()
    peak, peak_now = measured_peak_tflops(device, precision, cache_dir)
    name = gpu_name(device)
    jobs = []
    if timed_pairs:
        jobs.append(("candidates", params.reranker.batch_size, params.reranker.max_length))
    jobs += [("fixed", b, t) for b in settings.batch_sizes for t in settings.max_lengths]
    rows = []
    for workload, batch_size, max_length in jobs:
        reset_gpu_peak(device)
        with EnergyMeter(device) as meter:
            if workload == "candidates":
                row = time_candidates(reranker, timed_pairs, batch_size, max_length, params.reranker.length_sorted,
                                      settings.warmup_rounds, settings.min_seconds, settings.min_rounds)
            else:
                row = time_fixed(reranker, batch_size, max_length, settings.warmup_rounds, settings.min_seconds,
                                 settings.min_rounds)
        flops = flops_per_pair(shape, row["mean_tokens"])
        achieved = flops * row["pairs_per_s"] / 1e12
        tokens = int(round(row["mean_tokens"])) if workload == "fixed" else max_length
        row.update(
            run_id=params.run_id, reranker=params.reranker.model, variant=variant, device=device,
            weights=params.reranker.weights, load_s=reranker.load_s, model_bytes=reranker.weight_bytes,
            file_bytes=reranker.file_bytes, peak_rss_mb=peak_rss_mb(), **device_memory(reranker, device),
            flops_per_pair=flops, achieved_tflops=achieved, peak_tflops=peak, mfu=achieved / peak if peak else None,
            peak_tflops_now=peak_now, compute_precision=precision,
            peak_source=f"best {precision} matmul rate measured on this machine"
                        + (" (ONNX Runtime MatMulInteger)" if precision == "int8" and device == "cpu" else ""),
            executed_precision=reranker.executed_precision,
            published_peak_tflops=published_peak(name, precision) if name else None,
            estimate_mb=memory_estimate_mb(shape, reranker.weights_format(),
                                           *reranker.activation_shape(batch_size, tokens)),
            joules_per_1k_pairs=meter.joules / row["pairs_timed"] * 1e3 if meter.joules is not None else None,
            energy_source=meter.source if meter.joules is not None else None,
        )
        rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    return frame[COLUMNS["throughput"] + [c for c in frame.columns if c not in COLUMNS["throughput"]]]
