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
    """Cores this process may run on (its affinity mask, which containers and ``taskset`` narrow): what
    torch, ONNX Runtime and llama.cpp are given, so no backend is handicapped by another's default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
        "usable_cores": usable_cores(),
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
        index = int(device.split(":")[1]) if ":" in device else 0
        gpu = env["gpus"][min(index, len(env["gpus"]) - 1)]
        return {"label": gpu["name"], "gpu_class": gpu_class(gpu["name"]), "memory_gb": gpu.get("memory_gb"),
                "cores": None}
    cpu = env.get("cpu", {})
    return {"label": f"{cpu.get('model', 'unknown CPU')} ({cpu.get('usable_cores', '?')} cores)", "gpu_class": None,
            "memory_gb": cpu.get("memory_gb"), "cores": cpu.get("usable_cores")}


def hardware_label(env: dict[str, Any], device: str = "cpu") -> str:
    """A short human label for the hardware a row was measured on, e.g. 'AMD EPYC (2 cores)'."""
    return device_profile(env, device)["label"]
