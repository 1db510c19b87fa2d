"""How far a measured rate is from the hardware's limit: FLOPs per pair, device peak, MFU, memory fit.

FLOPs per pair follow the usual transformer count: 2 FLOPs per non-embedding parameter per token (every
token passes every dense layer once) plus the attention term 4 x layers x tokens^2 x hidden (QK^T and AV).
The device peak is measured, not quoted (a matmul shaped like the model's own layers, per dtype); for named
GPUs the published dense peaks are kept alongside for comparison. torch and onnxruntime are imported inside the
peak benchmarks (heavy; the FLOP model needs neither).
"""

from __future__ import annotations

import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runlocalai_bench.devices import synchronize
from runlocalai_bench.environment import cpu_info

# Dense (no sparsity) peaks in TFLOP/s (TOPS for int8) from the vendors' datasheets:
# H100 SXM5 and PCIe: NVIDIA H100 Tensor Core GPU datasheet (2023); A100 SXM4: NVIDIA A100 datasheet (2021);
# L4: NVIDIA L4 datasheet (2023); RTX 4090: NVIDIA Ada Lovelace architecture whitepaper v2.1, appendix A
# (FP16/BF16 tensor with FP32 accumulate); RTX 3090: NVIDIA Ampere GA102 whitepaper v2, table 9.
PUBLISHED_GPU_PEAKS: dict[str, dict[str, float]] = {
    "H100 80GB HBM3": {"fp32": 66.9, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9},
    "H100 PCIe": {"fp32": 51.2, "fp16": 756.0, "bf16": 756.0, "int8": 1513.0},
    "H200": {"fp32": 66.9, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9},
    "A100-SXM4-80GB": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0, "int8": 624.0},
    "L4": {"fp32": 30.3, "fp16": 121.0, "bf16": 121.0, "int8": 242.5},
    "GeForce RTX 4090": {"fp32": 82.6, "fp16": 165.2, "bf16": 165.2, "int8": 660.6},
    "GeForce RTX 3090": {"fp32": 35.6, "fp16": 71.0, "bf16": 71.0, "int8": 284.0},
}
# GGUF types: bytes per weight of their blocks (Q8_0: 32 weights in 34 bytes; Q4_K: 256 in 144). Q4_K_M
# stores a few tensors in Q6_K, so its entry is a lower bound; ggml keeps activations in f32.
BYTES_PER_PARAM = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "f16": 2.0, "q8_0": 34 / 32, "q4_k_m": 144 / 256}
FP32_ACTIVATIONS = {"fp32", "int8", "f16", "q8_0", "q4_k_m"}


def model_shape(config: Any) -> dict[str, int]:
    """Layers, widths and parameter counts of an encoder from its transformers config."""
    layers, hidden = config.num_hidden_layers, config.hidden_size
    intermediate = getattr(config, "intermediate_size", 4 * hidden)
    per_layer = 4 * hidden * hidden + 4 * hidden + 2 * hidden * intermediate + hidden + intermediate + 4 * hidden
    head = hidden * hidden + hidden + hidden * max(getattr(config, "num_labels", 1), 1)  # dense + out_proj
    embedding = (config.vocab_size + config.max_position_embeddings + getattr(config, "type_vocab_size", 1)) * hidden
    return {"layers": layers, "hidden": hidden, "intermediate": intermediate,
            "heads": config.num_attention_heads, "non_embedding_params": layers * per_layer + head,
            "embedding_params": embedding}


def flops_per_pair(shape: dict[str, int], tokens: float) -> float:
    """Forward FLOPs of one pair of ``tokens`` tokens (the classification head runs on one token)."""
    dense = 2.0 * (shape["non_embedding_params"]) * tokens
    attention = 4.0 * shape["layers"] * tokens * tokens * shape["hidden"]
    return dense + attention


def activation_bytes(shape: dict[str, int], batch: int, tokens: int, bytes_per_value: float) -> float:
    """Peak activations of one encoder layer at inference: the live hidden state, the FFN's widest tensor
    and one head-batched attention score matrix (plus its softmax), none kept across layers."""
    hidden_states = 3 * batch * tokens * shape["hidden"]
    ffn = batch * tokens * shape["intermediate"]
    scores = 2 * batch * shape["heads"] * tokens * tokens
    return (hidden_states + ffn + scores) * bytes_per_value


def memory_estimate_mb(shape: dict[str, int], precision: str, batch: int, tokens: int) -> float:
    """'Will it fit': weights at the precision plus one batch's activations (no runtime overhead)."""
    weight_bytes = (shape["non_embedding_params"] + shape["embedding_params"]) * BYTES_PER_PARAM[precision]
    act_bytes = activation_bytes(shape, batch, tokens, 4.0 if precision in FP32_ACTIVATIONS else 2.0)
    return (weight_bytes + act_bytes) / 2**20


def measured_peak_tflops(device: str, precision: str, cache_dir: Path | None = None) -> tuple[float, float]:
    """(peak, measured now) in TFLOP/s for ``precision`` on ``device``.

    The peak is the best rate this machine has shown for the benchmark matmul (kept in
    ``<cache>/peaks.json``): on a shared machine a single short sample can land on a busy moment, and an MFU
    above 1 would then say more about the sample than about the model. int8 is measured with ONNX Runtime's
    MatMulInteger (the MLAS kernels int8 inference uses on CPUs) where available; torch._int_mm has no fast
    CPU kernel without VNNI/AMX (measured ~1 GOP/s on an AVX2-only EPYC, 100x below its fp32 rate).
    """
    now = _int8_tflops(device) if precision == "int8" else matmul_tflops(device, precision)
    if cache_dir is None:
        return now, now
    path = Path(cache_dir) / "peaks.json"
    cpu = cpu_info()
    key = f"{device}|{precision}|{cpu['model']}|{cpu['usable_cores']} cores"
    if device.startswith("cuda"):
        import torch

        key = f"{device}|{precision}|{torch.cuda.get_device_name(device)}"
    try:
        peaks = json.loads(path.read_text())
    except (OSError, ValueError):
        peaks = {}
    peaks[key] = max(float(peaks.get(key, 0.0)), now)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(peaks, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return peaks[key], now


def _int8_tflops(device: str) -> float:
    if device == "cpu":
        try:
            return onnxruntime_int8_tops()
        except ImportError:
            pass
    return matmul_tflops(device, "int8")


M, K, N = 1024, 1024, 4096  # one FFN projection of a 1024-wide encoder over 1,024 tokens


def onnxruntime_int8_tops(seconds: float = 1.0) -> float:
    """Best rate of a uint8 x int8 MatMulInteger in ONNX Runtime on the CPU, in TOP/s."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-127, 127, (K, N), dtype=np.int8), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])], "int8_peak",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [M, K])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [M, N])], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"A": rng.integers(0, 255, (M, K), dtype=np.uint8)}
    return 2.0 * M * K * N / _best_seconds(lambda: session.run(None, feed), seconds) / 1e12


def _best_seconds(op, seconds: float, sync=lambda: None) -> float:
    op()
    sync()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    for _ in range(10_000):
        started = time.perf_counter()
        op()
        sync()
        best = min(best, time.perf_counter() - started)
        if time.perf_counter() > deadline:
            break
    return best


@lru_cache(maxsize=None)
def matmul_tflops(device: str, precision: str, seconds: float = 1.0) -> float:
    """Best sustained rate of a layer-shaped matmul (1024x1024 by 1024x4096) on ``device`` in ``precision``."""
    import torch
    import torch.nn.functional as F

    if precision == "int8":
        a = torch.randint(-127, 127, (M, K), dtype=torch.int8, device=device)
        b = torch.randint(-127, 127, (K, N), dtype=torch.int8, device=device)
        op = lambda: torch._int_mm(a, b)  # noqa: E731
    else:
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        x = torch.randn(M, K, dtype=dtype, device=device)
        w = torch.randn(N, K, dtype=dtype, device=device)
        op = lambda: F.linear(x, w)  # noqa: E731
    return 2.0 * M * K * N / _best_seconds(op, seconds, lambda: synchronize(device)) / 1e12


def published_peak(gpu_name: str, precision: str) -> float | None:
    for name, peaks in PUBLISHED_GPU_PEAKS.items():
        if name.lower() in gpu_name.lower():
            return peaks.get(precision)
    return None


def common_peaks(throughput: pd.DataFrame) -> pd.DataFrame:
    """One peak per (run, device, precision): the best matmul rate any execution of the run measured.

    Each kernel measures the peak when it starts, and on a shared machine the first may catch a busy
    moment; judging every variant against the same, best observed peak keeps their MFUs comparable.
    """
    if throughput.empty or "compute_precision" not in throughput:
        return throughput
    throughput = throughput.copy()
    keys = ["run_id", "device", "compute_precision"]
    throughput["peak_tflops"] = throughput.groupby(keys, dropna=False)["peak_tflops"].transform("max")
    throughput["mfu"] = throughput["achieved_tflops"] / throughput["peak_tflops"]
    return throughput
