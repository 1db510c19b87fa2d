"""A served variant's rows of ``tables/load``: the sweep of :mod:`serving.load` on the run's own queries, with
the server process's peak memory per point (its resident set; on CUDA also its GPU memory, NVML's process list for
the server's PID, in the column ``peak_vram_mb`` after the contract's). In-process variants have no load rows: their ``query`` workload in
``tables/throughput`` (one request at a time, in the measuring process) is the reference point the served curve
is drawn against.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from runlocalai_bench.data.specs import full_label
from runlocalai_bench.params import Params
from runlocalai_bench.perf.memory import peak_rss_mb, reset_peak_rss
from runlocalai_bench.perf.nvml import VramPeak
from runlocalai_bench.perf.throughput import DatasetWork
from runlocalai_bench.perf.timing import min_samples, timed_queries
from runlocalai_bench.rerankers.base import Reranker
from runlocalai_bench.results.tables import COLUMNS
from runlocalai_bench.serving.load import Sweep, run_sweep


def sweep_of(params: Params) -> Sweep:
    serve = params.serve
    return Sweep(tuple(serve.concurrency), tuple(serve.rate_fractions), serve.warmup_requests, serve.min_requests,
                 serve.min_seconds, serve.open_requests, serve.open_seconds, serve.latency_target_ms / 1000,
                 params.seed)


def measure_load(reranker: Reranker, datasets: Sequence[DatasetWork], params: Params, variant: str,
                 device: str) -> pd.DataFrame:
    """Load rows for every timed dataset (the throughput workloads' datasets); empty for a reranker that is not
    served or when ``serve.load`` is off. A server that is gone after a point raises (``ServerFailed``)."""
    target = reranker.load_target()
    if target is None or not params.serve.load:
        return pd.DataFrame(columns=COLUMNS["load"])
    pid = reranker.memory_pid()
    frames = []
    for work in datasets:
        if params.timed_datasets is not None and full_label(work.label) not in params.timed_datasets:
            continue
        queries = timed_queries(work.queries, params.serve.max_queries, params.seed)
        requests = reranker.load_requests(queries, params.reranker.max_length)
        if not requests:
            continue

        sampler: list[VramPeak] = []  # the point's GPU memory sampler (CUDA), started before it, read after it

        def start_point() -> None:
            if pid is not None:
                reset_peak_rss(pid)
            if device.startswith("cuda"):
                sampler.append(VramPeak(device, pid).__enter__())

        def with_peak(row: dict) -> dict:
            vram = sampler.pop() if sampler else None
            if vram is not None:
                vram.__exit__(None, None, None)
            # A server that died during the point fails the execution (with its log), not a row of errors.
            reranker.check_alive()
            return {**row, "peak_rss_mb": peak_rss_mb(pid) if pid is not None else None,
                    "peak_vram_mb": vram.peak_mb if vram is not None else None}

        try:
            rows = run_sweep(target, requests, sweep_of(params), before_point=start_point, after_point=with_peak)
        finally:
            for vram in sampler:  # a point that raised: its sampler's thread stops too
                vram.__exit__(None, None, None)
        frame = pd.DataFrame.from_records(rows)
        for percentile in (50, 90, 99):
            values = frame.pop(f"p{percentile}_s") * 1000
            # The throughput table's rule: a tail percentile only from enough answered requests (p90: 50, p99: 500).
            frame[f"latency_p{percentile}_ms"] = values.where(frame["latency_samples"] >= min_samples(percentile)) \
                if percentile > 50 else values
        frame["latency_target_ms"] = frame.pop("latency_target_s") * 1000
        frames.append(frame.assign(run_id=params.run_id, reranker=params.reranker.model, variant=variant,
                                   device=device, dataset=work.label, slots=params.serve.slots,
                                   threads=reranker.details.get("threads")))
    if not frames:
        return pd.DataFrame(columns=COLUMNS["load"])
    frame = pd.concat(frames, ignore_index=True)
    return frame[COLUMNS["load"] + [c for c in frame.columns if c not in COLUMNS["load"]]]
