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

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "runlocalai-bench", "torch", "transformers", "sentence-transformers", "huggingface-hub", "tokenizers",
    "onnxruntime", "optimum", "optimum-onnx", "optimum-intel", "openvino", "nncf", "torchao",
    "ir_datasets", "ir-measures", "bm25s", "faiss-cpu", "numpy", "scipy", "pandas", "pyarrow", "papermill",
    "matplotlib", "llama_cpp_python",
)
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile", "fma")


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


def hardware_label(env: dict[str, Any], device: str = "cpu") -> str:
    """A short human label for the hardware a row was measured on, e.g. 'AMD EPYC (2 cores)'."""
    if device.startswith("cuda") and env.get("gpus"):
        index = int(device.split(":")[1]) if ":" in device else 0
        gpus = env["gpus"]
        return gpus[min(index, len(gpus) - 1)]["name"]
    cpu = env.get("cpu", {})
    return f"{cpu.get('model', 'unknown CPU')} ({cpu.get('usable_cores', '?')} cores)"
