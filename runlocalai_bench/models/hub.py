"""The Hugging Face hub and its local cache: which commit a hub id means, and a local snapshot of it.

huggingface_hub is imported inside the functions: it reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` at import
time, and importing it lazily lets a process set those first.
"""

from __future__ import annotations

import os
from pathlib import Path

from runlocalai_bench.models.refs import ModelNotFoundError, ModelRef

HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*"]


def hub_revision(repo_id: str, revision: str | None) -> str | None:
    """The commit of a hub model: from the local HF cache if present, else asked of the hub.

    Returns the requested revision unchanged when neither can tell (the load then fails with its own error).
    """
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        parts = Path(cached).parts
        if "snapshots" in parts:
            return parts[parts.index("snapshots") + 1]
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return revision
    try:
        from huggingface_hub import model_info

        return model_info(repo_id, revision=revision).sha
    except Exception:  # noqa: BLE001 - network errors of many kinds; the load reports the real problem
        return revision


def snapshot_folder(ref: ModelRef) -> Path:
    """The local snapshot of a hub model (downloaded once, weights as safetensors only; offline, the cached
    snapshot or a one-line error)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(ref.location, revision=ref.revision, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # noqa: BLE001 - offline, missing repo and network errors all end here
        raise ModelNotFoundError(
            f"cannot get {ref.spec!r} from the Hugging Face hub or its cache ({type(exc).__name__}). "
            "Offline: run `make smoke`, use reranker.weights=random for throughput, or point the model at a folder."
        ) from None
