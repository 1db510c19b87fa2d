"""Shared test setup: fully offline, a private cache, the offline models and data, one smoke bundle."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _own_share_of_the_cpus() -> None:
    """Under pytest-xdist, give this worker its own share of the CPUs (its affinity mask, which its kernels, servers
    and Ray nodes inherit). Why: every run computes with one thread per usable physical core, so two workers on a
    2-core machine would run four compute threads on two cores; OpenMP and oneDNN pools spin while they wait, and
    oversubscribed they slow each other down (make test on 2 cores: 1441 s unpinned, 1133 s pinned). The suite's
    thread count follows the mask (``environment.physical_cores``), so each worker's runs see the share they have."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if not (worker.startswith("gw") and count > 1 and hasattr(os, "sched_setaffinity")):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= count:
        os.sched_setaffinity(0, set(cpus[int(worker[2:]) % count::count]))


_own_share_of_the_cpus()

# After the offline switches: huggingface_hub reads them when first imported.
from runlocalai_bench.cli import main  # noqa: E402
from runlocalai_bench.data.specs import FIXTURES_DIR, load_collection  # noqa: E402
from runlocalai_bench.models.resolve import resolve  # noqa: E402
from support import REPO  # noqa: E402


def pytest_collection_modifyitems(config, items) -> None:
    """Start the longest tests first (the real-data SciFact check and the rehearsals: several minutes each), so that
    under ``make test`` (pytest-xdist, ``--dist loadscope``: a module's tests stay in one worker, so a module's Ray
    cluster, hub mirror or virtualenv is made once) no worker is left with one of them at the end. The modules that
    read the shared smoke bundle come next: the worker that finishes its rehearsal first starts building the bundle
    (about four minutes) while the other is still in its rehearsal, so the other waits less on the bundle's lock
    than when both reached it together. The rank is per module, so a module's tests stay together."""
    rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        first = 0 if item.get_closest_marker("scifact") or item.get_closest_marker("rehearsal") else (
            1 if "smoke_bundle" in getattr(item, "fixturenames", ()) else 2)
        rank[module] = min(rank.get(module, 2), first)
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One cache for the session: tiny twins and embeddings are built once, never in the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["RUNLOCALAI_BENCH_CACHE"] = str(path)
    return path


@pytest.fixture
def beir_copy(tmp_path) -> Path:
    """A writable copy of the shipped fixture in BEIR folder form, for corrupting in tests."""
    target = tmp_path / "beir"
    shutil.copytree(FIXTURES_DIR / "tiny", target)
    return target


@pytest.fixture(scope="session")
def tiny_xlmr(session_cache):
    """The tiny XLM-RoBERTa cross-encoder (bge-reranker-v2-m3's architecture in miniature)."""
    return resolve("twin:tiny-xlmr", None, session_cache)


@pytest.fixture(scope="session")
def fixture_pairs() -> list[tuple[str, str]]:
    """Four (query, document) pairs per fixture query, documents spread over the corpus."""
    collection = load_collection("fixture:tiny", "test")
    docs = list(collection.docs.values())
    return [(query, docs[(i * 7 + j) % len(docs)].contents) for i, query in enumerate(collection.queries.values())
            for j in range(4)]


@pytest.fixture(scope="session")
def multilingual_pairs() -> list[tuple[str, str]]:
    """Four pairs per query of the multilingual fixture (Spanish, Russian, ...): characters the tiny twin's
    vocabulary lacks become unknown tokens, whose pieces are not their text (a served client's cut must keep the
    characters)."""
    collection = load_collection("fixture:multilingual", "test")
    docs = list(collection.docs.values())
    return [(query, docs[(i * 5 + j) % len(docs)].contents) for i, query in enumerate(collection.queries.values())
            for j in range(4)]


@pytest.fixture(scope="session")
def smoke_bundle(tmp_path_factory, session_cache) -> Path:
    """One full smoke run (first stage, five variants on cpu and cuda - one served by llama-server where it is
    built -, report with claims), shared by the report, merge and figure tests: read-only (a test that changes a
    file works on a copy). Under pytest-xdist it is made once for all workers: the first that needs it builds it
    in the session's shared temporary folder under a file lock, the others wait for it and read it."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # each worker's base folder sits in the session's
    out = shared / "smoke" / "bundle"
    with FileLock(str(shared / "smoke.lock")):
        if not (out / "bundle.json").is_file():
            code = main(["run", str(REPO / "params" / "smoke.yaml"), "--out", str(out), "--set", "run_id=smoke-a",
                         "--set", f"cache_dir={session_cache}",
                         "--set", "reranker.variants=[torch-fp32,torch-bf16,onnx-int8,gguf-q4_k_m,server-llama-q4_k_m]",
                         "--set", "reranker.devices=[cpu,cuda]",
                         "--set", f"claims={REPO / 'params/claims/bge-reranker-v2-m3.yaml'}"])
            assert code == 0
    return out
