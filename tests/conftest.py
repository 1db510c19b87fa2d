"""Shared test setup: fully offline, a private cache, the offline models and data, one smoke bundle."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# After the offline switches: huggingface_hub reads them when first imported.
from runlocalai_bench.cli import main  # noqa: E402
from runlocalai_bench.data.specs import FIXTURES_DIR, load_collection  # noqa: E402
from runlocalai_bench.models.resolve import resolve  # noqa: E402
from support import REPO  # noqa: E402


# Tests that start their own servers, clusters or virtualenvs once per module (a Ray cluster, the hub mirror, the
# GPU image) or read the session's smoke bundle: under ``make test`` (pytest-xdist, one process per core) each such
# module runs whole in one worker, so the cluster or bundle is made once and two Ray clusters never run side by side.
SHARED_FIXTURES = {"smoke_bundle", "cluster", "mirror", "live_mirror", "image_python"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items) -> None:
    """Group each module that uses a shared fixture (``xdist_group``: one worker runs the group; the smoke bundle's
    users share one group, so it is built once), and start the longest tests first (the real-data SciFact check and
    the rehearsals: several minutes each), so that no worker is left with one of them at the end."""
    modules: dict[Path, set[str]] = {}
    for item in items:
        modules.setdefault(item.path, set()).update(SHARED_FIXTURES & set(item.fixturenames))
    for item in items:
        shared = modules[item.path]
        if shared:
            group = "smoke-bundle" if "smoke_bundle" in shared else item.path.stem
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: not (item.get_closest_marker("scifact") or item.get_closest_marker("rehearsal")))


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
def smoke_bundle(tmp_path_factory, session_cache) -> Path:
    """One full smoke run (first stage, five variants on cpu and cuda - one served by llama-server where it is
    built -, report with claims), shared by the report, merge and figure tests."""
    out = tmp_path_factory.mktemp("smoke") / "bundle"
    code = main(["run", str(REPO / "params" / "smoke.yaml"), "--out", str(out), "--set", "run_id=smoke-a",
                 "--set", f"cache_dir={session_cache}", "--set", "reranker.variants=[torch-fp32,torch-bf16,onnx-int8,gguf-q4_k_m,server-llama-q4_k_m]",
                 "--set", "reranker.devices=[cpu,cuda]", "--set", f"claims={REPO / 'params/claims/bge-reranker-v2-m3.yaml'}"])
    assert code == 0
    return out
