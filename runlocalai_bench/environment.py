"""Environment fingerprint: what an editor needs to trace a number to hardware, software and code.

Nothing private goes in: no hostname, user name, paths under $HOME or environment variables.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

from runlocalai_bench.paths import REPO_ROOT

PACKAGES = (
    "runlocalai-bench", "torch", "transformers", "sentence-transformers", "huggingface-hub", "tokenizers",
    "onnxruntime", "optimum", "optimum-onnx", "optimum-intel", "openvino", "nncf", "torchao",
    "ir_datasets", "ir-measures", "bm25s", "faiss-cpu", "numpy", "scipy", "pandas", "pyarrow", "papermill",
    "matplotlib", "llama_cpp_python",
)
# The vector and matrix extensions that decide a CPU's peak per precision (see perf/peaks.py).
CPU_FLAGS = ("avx", "avx2", "fma", "avx_vnni", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")


def usable_cores() -> int:
    """Logical CPUs this process may run on (its affinity mask, which containers and ``taskset`` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on: SMT siblings (two hardware threads of one core)
    count once. Why it matters: siblings share one core's vector units, so a CPU's FLOP peak and a claim about
    "an 8-core CPU" are counted in cores, and a backend given one thread per sibling competes with itself.
    Read from sysfs topology (package, core) on Linux; elsewhere psutil's machine-wide count, capped at the
    usable CPUs."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topology.joinpath("physical_package_id").read_text().strip(),
                       topology.joinpath("core_id").read_text().strip()))
        except OSError:
            cores = set()
            break
    if cores:
        return len(cores)
    return max(1, min(psutil.cpu_count(logical=False) or usable_cores(), usable_cores()))


def compute_threads(choice: str | int = "physical") -> int:
    """The one thread count every backend computes with (torch intra-op, ONNX Runtime intra-op, OpenVINO
    ``INFERENCE_NUM_THREADS``, llama.cpp ``n_threads``), so speed is compared on equal terms: ``physical``
    (default: one per physical core, what each runtime's own tuning guides recommend for dense math),
    ``logical`` (every usable hardware thread), or a number."""
    if choice == "physical":
        return physical_cores()
    if choice == "logical":
        return usable_cores()
    if isinstance(choice, int) and not isinstance(choice, bool) and choice > 0:
        return choice
    raise ValueError(f"threads: {choice!r} is not accepted; give 'physical', 'logical' or a positive integer")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "model": model,
        "architecture": platform.machine(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": usable_cores(),  # logical CPUs in the affinity mask
        "usable_physical_cores": physical_cores(),
        "flags": sorted(f for f in CPU_FLAGS if f in flags),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }


def gpu_info() -> list[dict[str, Any]]:
    try:
        import torch
    except ImportError:
        return []
    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append({
                "index": index, "name": props.name, "memory_gb": round(props.total_memory / 2**30, 1),
                "compute_capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
            })
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        gpus.append({"index": 0, "name": "Apple MPS", "memory_gb": None})
    return gpus


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """Commit and dirty flag of the checkout the package runs from (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def fingerprint() -> dict[str, Any]:
    import torch

    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "torch_threads": torch.get_num_threads(),
        "packages": package_versions(),
        "code": git_state(),
    }


# GPU classes by name: a claim about "a consumer GPU" is judged on consumer cards only. Checked in this order
# (workstation names contain datacenter-like model numbers: "RTX A4000").
GPU_CLASSES: list[tuple[str, tuple[str, ...]]] = [
    ("workstation", ("RTX A", "RTX PRO", "QUADRO", "ADA GENERATION")),
    ("consumer", ("GEFORCE", "TITAN", "RADEON RX", "ARC ", "APPLE")),
    ("datacenter", ("H100", "H200", "H800", "H20", "A100", "A800", "A10", "A30", "A40", "L4", "L20", "T4", "V100",
                    "P100", "B100", "B200", "GB200", "TESLA", "INSTINCT", "MI2", "MI3")),
]


def gpu_class(name: str | None) -> str:
    """``consumer``, ``workstation``, ``datacenter`` or ``unknown``, from a GPU's marketing name."""
    upper = (name or "").upper()
    for label, markers in GPU_CLASSES:
        if any(marker in upper for marker in markers):
            return label
    return "unknown"


def device_profile(env: dict[str, Any], device: str = "cpu") -> dict[str, Any]:
    """What a claim about a class of hardware needs to know of the device a row was measured on."""
    if device.startswith(("cuda", "mps")) and env.get("gpus"):
        physical = device.split("@")[0]  # cuda:1@rtx4090: the node class does not change the ordinal
        index = int(physical.split(":")[1]) if ":" in physical else 0
        gpu = env["gpus"][min(index, len(env["gpus"]) - 1)]
        return {"label": gpu["name"], "gpu_class": gpu_class(gpu["name"]), "memory_gb": gpu.get("memory_gb"),
                "cores": None}
    cpu = env.get("cpu", {})
    # Claims about "an 8-core CPU" count physical cores. Records from before 2026-12 have the usable logical
    # count and the machine's physical one: the smaller is the most the run could have used.
    cores = cpu.get("usable_physical_cores")
    if cores is None:
        known = [c for c in (cpu.get("usable_cores"), cpu.get("physical_cores")) if c]
        cores = min(known) if known else None
    threads = cpu.get("usable_cores")
    label = f"{cores} cores" if cores == threads or threads is None else f"{cores} cores, {threads} threads"
    return {"label": f"{cpu.get('model', 'unknown CPU')} ({label})", "gpu_class": None,
            "memory_gb": cpu.get("memory_gb"), "cores": cores}


def hardware_label(env: dict[str, Any], device: str = "cpu") -> str:
    """A short human label for the hardware a row was measured on, e.g. 'AMD EPYC (2 cores)'."""
    return device_profile(env, device)["label"]
