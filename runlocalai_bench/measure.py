"""One (variant, device)'s throughput rows: the timing harness plus memory, roofline and energy columns."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from typing import Any

from runlocalai_bench.backends import Pair
from runlocalai_bench.params import Params
from runlocalai_bench.results import COLUMNS
from runlocalai_bench.roofline import (
    flops_per_pair, measured_peak_tflops, memory_estimate_mb, model_shape, published_peak,
)
from runlocalai_bench.throughput import (
    EnergyMeter, gpu_memory_mb, peak_rss_mb, reset_gpu_peak, time_candidates, time_fixed,
)


def compute_precision(reranker: Any) -> str:
    """The dtype the bulk of the FLOPs run in, for choosing the peak to compare against."""
    executed = reranker.executed_precision.lower()
    if reranker.variant.precision in ("int8", "q8_0", "q4_k_m"):
        # ggml's quantized matmuls quantize activations to 8 bits and use integer dot products.
        return "int8"
    if reranker.variant.backend == "gguf" and not reranker.device.startswith("cuda"):
        # ggml on CPUs without native fp16 arithmetic widens f16 weights to f32 and multiplies in f32.
        return "fp32"
    if "bf16" in executed:
        return "bf16"
    if "f16" in executed or "fp16" in executed:
        return "fp16"
    return "fp32"


def estimate_shape(reranker: Any, batch_size: int, tokens: int) -> tuple[int, int]:
    """(sequences, tokens each) whose activations a batch costs. llama.cpp packs a call's pairs into one
    masked sequence of batch x tokens, so its attention buffer grows with the square of the whole call."""
    return (1, batch_size * tokens) if reranker.variant.backend == "gguf" else (batch_size, tokens)


def device_memory(reranker: Any, device: str) -> dict[str, float | None]:
    """GPU memory columns; torch's allocator counters do not see llama.cpp's buffers, so GGUF rows keep
    only NVML's device-wide figure instead of a misleading zero."""
    memory = gpu_memory_mb(device)
    if reranker.variant.backend == "gguf":
        memory.update(peak_vram_mb=None, peak_vram_reserved_mb=None)
    return memory


def measure_throughput(reranker: Any, pairs: Sequence[Pair], params: Params, variant: str, device: str,
                       cache_dir: Path | None = None) -> pd.DataFrame:
    settings = params.throughput
    timed_pairs = list(pairs[: settings.max_pairs] if settings.max_pairs else pairs)
    shape = model_shape(reranker.config)
    precision = compute_precision(reranker)
    weights_key = reranker.variant.precision if reranker.variant.backend == "gguf" else precision
    peak, peak_now = measured_peak_tflops(device, precision, cache_dir)
    gpu_name = None
    if device.startswith("cuda"):
        import torch

        gpu_name = torch.cuda.get_device_name(device)
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
        row.update(
            run_id=params.run_id, reranker=params.reranker.model, variant=variant, device=device,
            weights=params.reranker.weights, load_s=reranker.load_s,
            model_bytes=reranker.param_bytes if reranker.param_bytes is not None else reranker.file_bytes,
            file_bytes=reranker.file_bytes, peak_rss_mb=peak_rss_mb(), **device_memory(reranker, device),
            flops_per_pair=flops, achieved_tflops=achieved, peak_tflops=peak, mfu=achieved / peak if peak else None,
            peak_tflops_now=peak_now, compute_precision=precision,
            peak_source=f"best {precision} matmul rate measured on this machine"
                        + (" (ONNX Runtime MatMulInteger)" if precision == "int8" and device == "cpu" else ""),
            executed_precision=reranker.executed_precision,
            published_peak_tflops=published_peak(gpu_name, precision) if gpu_name else None,
            estimate_mb=memory_estimate_mb(shape, weights_key, *estimate_shape(reranker, batch_size, (
                int(round(row["mean_tokens"])) if workload == "fixed" else max_length))),
            joules_per_1k_pairs=meter.joules / row["pairs_timed"] * 1e3 if meter.joules is not None else None,
            energy_source=meter.source if meter.joules is not None else None,
        )
        rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    return frame[COLUMNS["throughput"] + [c for c in frame.columns if c not in COLUMNS["throughput"]]]
