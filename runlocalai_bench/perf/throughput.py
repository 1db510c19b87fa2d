"""One (variant, device)'s throughput rows: the timing harness plus memory, roofline and energy columns.

Every job (one workload at one batch size and length) gets its own memory window: the peak resident set is
reset before it (Linux VmHWM), GPU memory is sampled by NVML while it runs, and the energy meter covers only
its timed rounds. Everything backend-specific comes from the reranker contract (compute precision, weights
format, activation shape, memory counters): this module never asks which backend it is timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from runlocalai_bench.errors import error_line
from runlocalai_bench.data.specs import full_label
from runlocalai_bench.params import Params
from runlocalai_bench.perf.energy import EnergyMeter
from runlocalai_bench.perf.flops import attention_share, flops_per_pair, memory_estimate_mb, model_shape
from runlocalai_bench.perf.memory import (peak_rss_mb, reset_peak_rss, resident_split_mb, start_gpu_window,
                                          torch_peak_mb)
from runlocalai_bench.perf.nvml import VramPeak
from runlocalai_bench.perf.peaks import measured_matmul_tflops, theoretical_peak
from runlocalai_bench.perf.timing import (time_candidates, time_fixed, time_queries, timed_queries, timed_sample,
                                          timed_whole_queries)
from runlocalai_bench.rerankers.base import TORCH_ALLOCATOR, Pair, Reranker
from runlocalai_bench.results.tables import COLUMNS
from runlocalai_bench.serving.process import ServerFailed


def gpu_name(device: str) -> str | None:
    if not device.startswith("cuda"):
        return None
    import torch  # only CUDA rows need it

    return torch.cuda.get_device_name(device)


@dataclass
class DatasetWork:
    """One dataset's pairs as the throughput workloads use them."""

    label: str
    pairs: Sequence[Pair]  # every (query, candidate) pair the run reranks
    queries: Sequence[Sequence[Pair]]  # the same pairs grouped by query


def model_share_mb(reranker: Reranker, device: str, peak_rss: float | None, peak_vram: float | None,
                   vram_source: str | None = None) -> float | None:
    """A job's peak minus what the process held before the model was loaded (the runtime's libraries and the
    run's texts included there): the memory this model costs, on the counter the device is judged by (on CUDA
    only when the peak and the before-load reading came from the same counter)."""
    before = reranker.memory.before_mb(device, vram_source) if reranker.memory is not None else None
    peak = peak_vram if device.startswith("cuda") else peak_rss
    # Not clamped: a negative share (memory freed below the before-load reading) is a finding to see, not to hide.
    return None if before is None or peak is None else peak - before


def describe_runtime_memory(parts: dict[str, float] | None) -> str | None:
    """``model 418.0 MiB + compute 3.3 MiB + ...``: the runtime's own buffers, as it logged them."""
    if not parts:
        return None
    return " + ".join(f"{name} {mib:,.1f} MiB" for name, mib in parts.items())


def throughput_jobs(params: Params, datasets: Sequence[DatasetWork], fixed: bool = True,
                    device: str = "cpu") -> list[tuple[str, str | None, int, int]]:
    """(workload, dataset, batch size, max length) of every job on ``device``, in the order they run.
    ``fixed=False`` (a comparison reranker) leaves out the model-only shapes: those characterise the reranker
    under test. GPUs get their own batch sizes (``throughput.gpu_batch_sizes``)."""
    settings, reranker = params.throughput, params.reranker
    jobs: list[tuple[str, str | None, int, int]] = []
    for work in datasets:
        if params.timed_datasets is not None and full_label(work.label) not in params.timed_datasets:
            continue
        if "candidates" in settings.workloads and work.pairs:
            jobs.append(("candidates", work.label, reranker.batch_size, reranker.max_length))
        if "query" in settings.workloads and work.pairs:
            jobs.append(("query", work.label, reranker.batch_size, reranker.max_length))
    if "fixed" in settings.workloads and fixed:
        jobs += [("fixed", None, b, t) for b in settings.batch_sizes_for(device) for t in settings.max_lengths]
    return jobs


OUT_OF_MEMORY = ("outofmemoryerror", "out of memory", "can't allocate memory", "cannot allocate memory",
                 "failed to allocate", "alloc_failed")


def is_out_of_memory(exc: BaseException) -> bool:
    """A shape that did not fit in the device's memory: torch's ``OutOfMemoryError`` (CUDA, MPS) and CPU allocator
    failure, cuBLAS's ``ALLOC_FAILED``, Python's ``MemoryError``, ONNX Runtime's "Failed to allocate memory", and
    llama.cpp's failures the GGUF backend labels "out of memory" from its log. The device is still usable for the
    next job."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, ServerFailed):  # a served variant's server is gone (its log may say why): not one shape
        return False
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(marker in text for marker in OUT_OF_MEMORY)


def failed_job(workload: str, dataset: str | None, batch_size: int, max_length: int, exc: BaseException) -> dict:
    """The record of a timing job that raised: which job, and the error's type and first line."""
    return {"workload": workload, "dataset": dataset, "batch_size": batch_size, "max_length": max_length,
            "error": error_line(exc)}


def describe_failures(failures: Sequence[dict], jobs: int) -> str | None:
    """One line for the execution's record: how many timing jobs failed, and the first one's error."""
    if not failures:
        return None
    first = failures[0]
    job = " ".join(str(part) for part in (first["workload"], first["dataset"]) if part)
    return (f"{len(failures)} of {jobs} timing jobs failed and have no row (first: {job} "
            f"{first['batch_size']} x {first['max_length']}: {first['error']})")


def measure_throughput(reranker: Reranker, datasets: Sequence[DatasetWork], params: Params, variant: str, device: str,
                       cache_dir: Path | None = None, on_job: Callable[[int, int], None] | None = None,
                       baseline: str | None = None, failures: list[dict] | None = None) -> pd.DataFrame:
    """Throughput rows for every job: candidates and query workloads per dataset, fixed shapes once (not for
    a comparison reranker, ``baseline``, whose rows carry its own model name).

    A job that runs out of memory (a GPU at the largest batch) costs its own row only: it is appended to
    ``failures`` (:func:`failed_job`) and the next job starts in a fresh memory window. Any other error is raised."""
    settings = params.throughput
    by_label = {work.label: work for work in datasets}
    shape = model_shape(reranker.config)
    precision = reranker.compute_precision()
    matmul, matmul_now = measured_matmul_tflops(device, precision, cache_dir)
    name = gpu_name(device)
    peak, peak_source = theoretical_peak(device, precision, matmul, name)
    sees_torch = TORCH_ALLOCATOR in reranker.memory_counters()
    # A served variant's model-only shapes do not exist (the server tokenizes and batches itself), and its memory
    # is its server process's.
    jobs = throughput_jobs(params, datasets, fixed=baseline is None and not reranker.variant.served, device=device)
    pid = reranker.memory_pid()
    rows = []
    for number, (workload, dataset, batch_size, max_length) in enumerate(jobs):
        window_reset = reset_peak_rss(pid)
        start_gpu_window(device)
        meter = EnergyMeter(device)
        rounds = (settings.warmup_rounds, settings.min_seconds, settings.min_rounds, meter)
        try:
            with VramPeak(device, pid) as vram:
                if workload == "candidates":
                    sample = (timed_whole_queries(by_label[dataset].queries, settings.max_pairs, params.seed)
                              if reranker.variant.served else
                              timed_sample(by_label[dataset].pairs, settings.max_pairs, params.seed))
                    row = time_candidates(reranker, sample, batch_size, max_length, params.reranker.length_sorted,
                                          *rounds)
                elif workload == "query":
                    row = time_queries(reranker, timed_queries(by_label[dataset].queries, settings.max_queries, params.seed),
                                       batch_size, max_length, params.reranker.length_sorted, *rounds)
                else:
                    row = time_fixed(reranker, batch_size, max_length, *rounds)
        except Exception as exc:  # noqa: BLE001 - filtered below: only a shape that did not fit is survivable
            # Out of memory at a shape (the largest batch on a small GPU) costs that job's row; anything else (a
            # shape the model cannot take, an illegal address or device-side assert that leaves a CUDA context
            # unusable) is the execution's failure, as it always was.
            if failures is None or not is_out_of_memory(exc):
                raise
            failures.append(failed_job(workload, dataset, batch_size, max_length, exc))
            if on_job:
                on_job(number + 1, len(jobs))
            continue
        flops = flops_per_pair(shape, row["mean_tokens"], row["mean_sq_tokens"])
        achieved = flops * row["pairs_per_s"] / 1e12
        tokens = int(round(row["mean_tokens"])) if workload == "fixed" else max_length
        torch_memory = torch_peak_mb(device) if sees_torch else {"peak_vram_torch_mb": None,
                                                                  "peak_vram_torch_reserved_mb": None}
        peak_rss = peak_rss_mb(pid)
        split = resident_split_mb(pid)  # at the job's end: the process's own heap vs touched pages of mapped files
        runtime = reranker.runtime_memory()
        peak_vram = vram.peak_mb  # a served variant's: its server process's (NVML's process list)
        row.update(
            run_id=params.run_id, reranker=baseline or params.reranker.model, variant=variant, device=device, dataset=dataset,
            weights=params.reranker.weights, load_s=reranker.load_s, model_bytes=reranker.weight_bytes,
            file_bytes=reranker.file_bytes, peak_rss_mb=peak_rss, peak_rss_window="job" if window_reset else "process",
            peak_vram_mb=peak_vram, vram_source=vram.source, **torch_memory,
            model_memory_mb=model_share_mb(reranker, device, peak_rss, peak_vram, vram.source),
            **(reranker.memory.as_dict() if reranker.memory else {}), **split,
            runtime_memory_mb=sum(runtime.values()) if runtime else None,
            runtime_memory_detail=describe_runtime_memory(runtime),
            flops_per_pair=flops, achieved_tflops=achieved, peak_tflops=peak,
            mfu=achieved / peak if peak else None, peak_source=peak_source, compute_precision=precision,
            attention_flops_share=attention_share(shape, row["mean_tokens"], row["mean_sq_tokens"]),
            matmul_tflops=matmul, matmul_tflops_now=matmul_now,
            matmul_source=f"best {precision} {'ONNX Runtime MatMulInteger' if precision == 'int8' and device == 'cpu' else 'torch matmul'} "
                          "of a 1024x1024 by 1024x4096 product measured on this machine",
            executed_precision=reranker.executed_precision, gpu=name, threads=reranker.details.get("threads"),
            estimate_mb=memory_estimate_mb(shape, reranker.weights_format(),
                                           *reranker.activation_shape(batch_size, tokens))
            + reranker.output_buffer_mb(batch_size, tokens),
            tokens_per_call=reranker.details.get("tokens_per_call"),
            joules_per_1k_pairs=meter.joules / row["pairs_timed"] * 1e3 if meter.joules is not None else None,
            energy_source=meter.source if meter.joules is not None else None,
        )
        rows.append(row)
        if on_job:
            on_job(number + 1, len(jobs))
    if not rows and failures:
        raise RuntimeError(f"every timing job failed: {describe_failures(failures, len(jobs))}")
    if not rows:
        return pd.DataFrame(columns=COLUMNS["throughput"])
    frame = pd.DataFrame.from_records(rows)
    return frame[COLUMNS["throughput"] + [c for c in frame.columns if c not in COLUMNS["throughput"]]]
