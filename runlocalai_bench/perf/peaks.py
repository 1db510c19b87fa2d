"""The peak an MFU is judged against: the hardware's theoretical rate for the precision's fastest path, and
a measured matmul kept beside it as a sanity check.

Theoretical peaks:
- NVIDIA GPUs: dense (no sparsity) tensor-core rates from the vendors' datasheets (:data:`GPU_DATASHEET`).
- CPUs: usable physical cores x clock x FLOPs per cycle per core of the widest unit the CPU's flags offer for the
  precision (:data:`CPU_PATHS`; AMX tiles, AVX-512 VNNI/BF16/FP16, AVX-512, AVX2/FMA). Per-cycle figures assume
  two FMA ports, the most a core has, so the figure is an upper bound. The clock is the highest the machine
  reports (cpufreq's maximum, /proc/cpuinfo, the model name); where the measured matmul ran faster than that
  clock allows, the clock is raised to the lowest one consistent with the measurement, and the source says so.

A model cannot do more FLOPs per second than the hardware's peak, so MFU > 1 cannot occur unless the FLOP count
is wrong; the measured matmul (``matmul_tflops``) is reported in its own column, never used as the peak.
torch and onnxruntime are imported inside the matmul benchmarks (heavy; the theoretical peak needs neither).
"""

from __future__ import annotations

import json
import os
import re
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from runlocalai_bench.devices import synchronize
from runlocalai_bench.environment import cpu_info

# Dense peaks in TFLOP/s (TOPS for int8), tensor cores where the precision has them; fp32 is the non-tensor
# FP32 rate (torch keeps TF32 off for matmuls by default, and the ONNX backend turns it off in ONNX Runtime's CUDA
# provider). Datasheets print tensor-core rates "with sparsity": the dense figure is half of it. Keys are the names
# the driver reports (``torch.cuda.get_device_name`` without the "NVIDIA " prefix), matched exactly: form factors
# of one chip differ in clocks and power (H100 SXM 989 vs PCIe 756 vs NVL 835 dense BF16), and neighbours in name
# differ in silicon (L4 121, L40 181, L40S 362), so a substring match would lend one card another's figure.
# Sources: NVIDIA H100 Tensor Core GPU datasheet (2023: SXM, PCIe, NVL columns), H200 Tensor Core GPU datasheet
# (2024: SXM and NVL columns), A100 Tensor Core GPU datasheet (2021: the same peaks for PCIe and SXM, 40 and 80 GB),
# L4 datasheet (2023), L40 datasheet (2022), L40S datasheet (2023), Ada Lovelace architecture whitepaper v2.1
# appendix A (RTX 4090, FP16/BF16 with FP32 accumulate), Ampere GA102 whitepaper v2 table 9 (RTX 3090).
_H100_SXM = {"fp32": 66.9, "fp16": 989.4, "bf16": 989.4, "int8": 1978.9}
_NVL = {"fp32": 60.0, "fp16": 835.5, "bf16": 835.5, "int8": 1670.5}  # H100 NVL and H200 NVL: one column each
_A100 = {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0, "int8": 624.0}
GPU_DATASHEET: dict[str, dict[str, float]] = {
    "H100 80GB HBM3": _H100_SXM,
    "H100 PCIe": {"fp32": 51.2, "fp16": 756.5, "bf16": 756.5, "int8": 1513.0},
    "H100 NVL": _NVL,
    "H200": {"fp32": 67.0, "fp16": 989.5, "bf16": 989.5, "int8": 1979.0},
    "H200 NVL": _NVL,
    "A100-SXM4-80GB": _A100,
    "A100-SXM4-40GB": _A100,
    "A100 80GB PCIe": _A100,
    "A100-PCIE-40GB": _A100,
    "L4": {"fp32": 30.3, "fp16": 121.0, "bf16": 121.0, "int8": 242.5},
    "L40": {"fp32": 90.5, "fp16": 181.05, "bf16": 181.05, "int8": 362.0},
    "L40S": {"fp32": 91.6, "fp16": 362.05, "bf16": 362.05, "int8": 733.0},
    "GeForce RTX 4090": {"fp32": 82.6, "fp16": 165.2, "bf16": 165.2, "int8": 660.6},
    "GeForce RTX 3090": {"fp32": 35.6, "fp16": 71.0, "bf16": 71.0, "int8": 284.0},
}


def datasheet_key(gpu_name: str) -> str:
    """The table's key for a driver-reported name: "NVIDIA " dropped, spaces collapsed, case kept for display."""
    name = " ".join(gpu_name.split())
    return name[len("NVIDIA "):] if name.upper().startswith("NVIDIA ") else name


def gpu_peaks(gpu_name: str | None) -> tuple[str, dict[str, float]] | None:
    """(table key, peaks) of the GPU the driver names ``gpu_name``: an exact match, case aside; None otherwise."""
    if not gpu_name:
        return None
    wanted = datasheet_key(gpu_name).lower()
    return next(((key, peaks) for key, peaks in GPU_DATASHEET.items() if key.lower() == wanted), None)


# Per precision, the fastest CPU path a set of flags offers: (required flags, FLOPs or int ops per cycle per
# core, name). First match wins; precisions without a path of their own fall back to fp32 (the CPU widens them).
CPU_PATHS: dict[str, list[tuple[tuple[str, ...], int, str]]] = {
    "fp32": [(("avx512f",), 64, "AVX-512 FMA"), (("avx2", "fma"), 32, "AVX2 FMA"), (("avx",), 16, "AVX"),
             ((), 8, "SSE")],
    "bf16": [(("amx_bf16", "amx_tile"), 1024, "AMX-BF16"), (("avx512_bf16",), 128, "AVX-512 BF16")],
    "fp16": [(("amx_fp16", "amx_tile"), 1024, "AMX-FP16"), (("avx512_fp16",), 128, "AVX-512 FP16")],
    "int8": [(("amx_int8", "amx_tile"), 2048, "AMX-INT8"), (("avx512_vnni",), 256, "AVX-512 VNNI"),
             (("avx_vnni",), 128, "AVX-VNNI"), (("avx512bw",), 256, "AVX-512BW"), (("avx2",), 128, "AVX2")],
}


def cpu_path(precision: str, flags: set[str]) -> tuple[int, str]:
    """(ops per cycle per core, path name) of the fastest path ``flags`` allow for ``precision``."""
    for required, per_cycle, name in CPU_PATHS.get(precision, []):
        if set(required) <= flags:
            return per_cycle, name
    if precision == "fp32":
        raise AssertionError("the fp32 table ends with an unconditional path")
    per_cycle, name = cpu_path("fp32", flags)
    return per_cycle, f"{name} (no native {precision} path: widened to fp32)"


def cpu_clock_ghz() -> tuple[float | None, str]:
    """The highest clock this machine reports, and where it was read."""
    candidates: list[tuple[float, str]] = []
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        try:
            candidates.append((int(path.read_text()) / 1e6, "cpufreq max"))
        except (OSError, ValueError):
            pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz") and ":" in line:
                candidates.append((float(line.split(":", 1)[1]) / 1e3, "/proc/cpuinfo"))
    except (OSError, ValueError):
        pass
    found = re.search(r"@\s*([\d.]+)\s*GHz", cpu_info()["model"])
    if found:
        candidates.append((float(found.group(1)), "model name"))
    if not candidates:
        return None, "unknown"
    return max(candidates)


def theoretical_peak(device: str, precision: str, measured_tflops: float | None, gpu_name: str | None = None
                     ) -> tuple[float | None, str]:
    """(TFLOP/s, source) of the hardware's peak for ``precision`` on ``device``; None when unknown."""
    if device.startswith("cuda"):
        found = gpu_peaks(gpu_name)
        if found is None:  # never a neighbour's figure: an MFU against the wrong card misleads by up to 3x
            return None, f"no datasheet entry for {gpu_name or device}"
        name, peaks = found
        if precision not in peaks:
            return None, f"datasheet: {name} has no {precision} figure"
        return peaks[precision], f"datasheet: {name} {precision} dense"
    if device != "cpu":
        return None, f"no theoretical peak for {device}"
    info = cpu_info()
    # Physical cores: SMT siblings share one core's vector units, so they add no FLOPs to the peak.
    cores = info.get("usable_physical_cores", info["usable_cores"])
    per_cycle, path = cpu_path(precision, set(info["flags"]))
    clock, clock_source = cpu_clock_ghz()
    implied = measured_tflops * 1e3 / (cores * per_cycle) if measured_tflops else None
    if clock is None and implied is None:
        return None, f"clock unknown ({path})"
    if clock is None or (implied is not None and implied > clock):
        clock, clock_source = implied, "raised to the lowest clock consistent with the measured matmul"
    peak = cores * clock * per_cycle / 1e3
    return peak, f"theoretical: {cores} cores x {clock:.2f} GHz ({clock_source}) x {per_cycle} ops/cycle ({path})"


# ------------------------------------------------------------------------------------------ measured

M, K, N = 1024, 1024, 4096  # one FFN projection of a 1024-wide encoder over 1,024 tokens


def measured_matmul_tflops(device: str, precision: str, cache_dir: Path | None = None) -> tuple[float, float]:
    """(best ever, measured now) in TFLOP/s for a layer-shaped matmul in ``precision`` on ``device``.

    The best rate this machine has shown is kept in ``<cache>/peaks.json``: on a shared machine a single short
    sample can land on a busy moment. int8 is measured with ONNX Runtime's MatMulInteger (the MLAS kernels int8
    inference uses on CPUs) where available; torch._int_mm has no fast CPU kernel without VNNI/AMX.
    """
    now = _int8_tflops(device) if precision == "int8" else matmul_tflops(device, precision)
    if cache_dir is None:
        return now, now
    path = Path(cache_dir) / "peaks.json"
    cpu = cpu_info()
    key = f"{device}|{precision}|{cpu['model']}|{cpu.get('usable_physical_cores', cpu['usable_cores'])} cores"
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
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the run's one thread count (set at load for every backend)
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
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


def common_peaks(throughput: pd.DataFrame) -> pd.DataFrame:
    """One peak per (run, device, precision) across a run's executions, and MFU recomputed against it.

    Every kernel computes the same theoretical peak unless a measured matmul raised the clock estimate; the
    run keeps the highest (most conservative) figure, and its source, so MFUs of one run stay comparable.
    """
    if throughput.empty or "compute_precision" not in throughput:
        return throughput
    throughput = throughput.copy()
    keys = ["run_id", "device", "compute_precision"]
    best = throughput.groupby(keys, dropna=False)["peak_tflops"].transform("max")
    if "peak_source" in throughput:
        winners = throughput.loc[throughput["peak_tflops"].eq(best)].drop_duplicates(keys)
        sources = throughput[keys].merge(winners[keys + ["peak_source"]], on=keys, how="left")["peak_source"]
        throughput["peak_source"] = sources.fillna(throughput["peak_source"]).to_numpy()
    throughput["peak_tflops"] = best
    throughput["mfu"] = throughput["achieved_tflops"] / throughput["peak_tflops"]
    return throughput
