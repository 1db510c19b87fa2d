"""The report's memory section: per variant, what its process held before and after loading the model, its peak
while reranking, the model's share of that peak, the weights + activations estimate, and the runtime's own
account of its buffers where the runtime gives one (llama.cpp logs its model, KV, output and compute buffers).

Why a section of its own: "will it fit?" is the first question a local user asks, and the peak of the whole
process (interpreter, libraries, the run's texts) is not the same number as what the model costs. Both are
shown, with the runtime's figure beside the measured one so a reader can see where the memory goes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlocalai_bench.units import MISSING, mib_to_bytes, size

KEYS = ["run_id", "reranker", "variant", "device"]
SOURCES = ["rss_before_load_mb", "rss_after_load_mb", "vram_before_load_mb", "vram_after_load_mb", "peak_rss_mb",
           "peak_vram_mb", "model_memory_mb", "estimate_mb", "rss_file_mb", "runtime_memory_mb", "runtime_memory_detail"]
NUMERIC = {"Before load", "After load", "Peak", "Model's share", "Estimate", "Share / estimate", "Mapped files",
           "Runtime's account"}


def memory_rows(throughput: pd.DataFrame) -> pd.DataFrame:
    """One row per run, reranker, variant and device: the candidates workload's largest peak over the datasets
    (its fixed-shape rows for a variant timed on fixed shapes only), with what was held before and after loading."""
    if throughput.empty:
        return pd.DataFrame(columns=KEYS + ["workload"] + SOURCES)
    t = throughput.copy()
    for column in SOURCES:
        if column not in t:
            t[column] = np.nan
    cuda = t["device"].astype(str).str.startswith("cuda")
    t["_peak"] = t["peak_vram_mb"].where(cuda, t["peak_rss_mb"]).astype(float)
    rows = []
    for _, group in t.groupby(KEYS, dropna=False, sort=False):
        chosen = group[group["workload"] == "candidates"]
        if chosen.empty:
            chosen = group[group["workload"] == "fixed"]
        if chosen.empty:
            chosen = group
        top = chosen.loc[chosen["_peak"].fillna(-1).idxmax()]
        rows.append({**{k: top[k] for k in KEYS}, "workload": top["workload"], **{c: top[c] for c in SOURCES}})
    return pd.DataFrame(rows)


def memory_display(rows: pd.DataFrame, with_run: bool) -> pd.DataFrame:
    """The section's table as an editor reads it (decimal units, as the headline prints them)."""
    out = []
    for _, r in rows.iterrows():
        cuda = str(r["device"]).startswith("cuda")
        before = r["vram_before_load_mb"] if cuda else r["rss_before_load_mb"]
        after = r["vram_after_load_mb"] if cuda else r["rss_after_load_mb"]
        peak = r["peak_vram_mb"] if cuda else r["peak_rss_mb"]
        line = {"Run": r["run_id"]} if with_run else {}
        runtime = (f"{size(mib_to_bytes(r['runtime_memory_mb']))}: {r['runtime_memory_detail']}"
                   if pd.notna(r["runtime_memory_mb"]) else "not reported by the runtime")
        line.update({"System": f"{r['reranker']} · {r['variant']}", "Device": r["device"],
                     "Counter": "GPU (NVML)" if cuda else "resident set", "Workload": r["workload"],
                     **{name: size(mib_to_bytes(v)) if pd.notna(v) else MISSING
                        for name, v in (("Before load", before), ("After load", after), ("Peak", peak),
                                        ("Model's share", r["model_memory_mb"]), ("Estimate", r["estimate_mb"]))},
                     "Share / estimate": (f"{r['model_memory_mb'] / r['estimate_mb']:.2f}"
                                          if pd.notna(r["model_memory_mb"]) and pd.notna(r["estimate_mb"])
                                          and r["estimate_mb"] > 0 else MISSING),
                     "Mapped files": (size(mib_to_bytes(r["rss_file_mb"])) if not cuda and pd.notna(r["rss_file_mb"])
                                      else MISSING),
                     "Runtime's account": runtime})
        out.append(line)
    return pd.DataFrame(out)


EXPLANATION = (
    "Each variant runs in a process of its own. Exports (ONNX and OpenVINO conversion, int8 quantization and nncf "
    "calibration, GGUF conversion and quantization) are built beforehand in another process, and the measured one "
    "reads the finished files; torch-int8 is the exception, quantized by torchao as it loads (its load peak holds "
    "the fp32 weights once). Before load = resident set (CPU) or the process's GPU memory by NVML (CUDA, with the "
    "CUDA context already created) once every library the run uses is imported: torch and transformers are in it for "
    "every variant, GGUF included, so a peak here is larger than llama-server's own would be by about that "
    "before-load figure. After load = the same once the model is read. Peak = the largest job peak on the run's "
    "candidates. Model's share = peak minus before load. Estimate = weights as stored plus one batch's activations; "
    "share / estimate says how far the real cost is from it. Mapped files = pages of memory-mapped files resident at "
    "the job's end (the safetensors of torch's fp32/bf16/fp16 variants and the GGUF file are mapped: only the pages "
    "read count, so the embedding rows of tokens never seen stay on disk and a share can be below the file size). "
    "Runtime's account = the buffers the runtime reports allocating on that counter (llama.cpp's model, output, KV "
    "and compute buffers, from its log, plus the logits buffer its encode() sizes at n_vocab floats for every token "
    "of the largest call and does not log, computed: 3.9 GiB for 8 pairs x 512 tokens with a 250k vocabulary; "
    "torch on CPU, ONNX Runtime and OpenVINO report none); the measured share "
    "also holds the tokenizer, the batch's inputs and the runtime's own heap. 1 GB = 10⁹ bytes.")
