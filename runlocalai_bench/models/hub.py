"""The Hugging Face hub and its local cache: which commit a hub id means, and a local snapshot of it.

A run pins what it downloads: it asks the hub (or the mirror ``HF_ENDPOINT`` names) which commit the
requested revision (``main`` unless the parameters pin one) is, and downloads exactly that commit. Downloading
by commit does not record the branch in the cache, so the snapshot is followed by writing
``refs/<revision>`` the way huggingface_hub does for branch downloads: the next run, offline
(``HF_HUB_OFFLINE=1``, the usual second run on a cluster node), asks the cache for ``main`` and finds it.

huggingface_hub is imported inside the functions: it reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` when first
imported, and importing it lazily lets a process set those first.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from runlocalai_bench.models.refs import ModelNotFoundError, ModelRef

# README.md: the model card, whose metadata holds the licence (tables/model). *.py: a remote-code model's own
# modules, fetched with it and run only where reranker.trust_remote_code pins that commit.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "tokenizer*", "README.md", "*.py"]
COMMIT = re.compile(r"^[0-9a-f]{40}$")
OFFLINE_HINT = ("offline: run `make smoke` (no download needed), use reranker.weights=random for speed and memory, "
                "or point the model at a local folder")


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def cached_commit(repo_id: str, revision: str | None) -> str | None:
    """The commit the local cache holds for ``revision`` (``main`` when None), or None."""
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        parts = Path(cached).parts
        if "snapshots" in parts:
            return parts[parts.index("snapshots") + 1]
    return None


def hub_revision(repo_id: str, revision: str | None) -> str:
    """The commit ``revision`` of ``repo_id`` means: from the hub when online, from the cache when offline.

    Raises :class:`ModelNotFoundError` with one line naming the model, the revision and the endpoint when the
    repository or revision does not exist, the endpoint cannot be reached, or (offline) nothing is cached.
    """
    wanted = revision or "main"
    if offline():
        commit = cached_commit(repo_id, revision)
        if commit is None:
            raise ModelNotFoundError(f"{repo_id!r} at revision {wanted!r} is not in the Hugging Face cache "
                                     f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}) and HF_HUB_OFFLINE=1; "
                                     + OFFLINE_HINT)
        return commit
    from huggingface_hub import model_info
    from huggingface_hub.utils import RepositoryNotFoundError, RevisionNotFoundError

    try:
        return model_info(repo_id, revision=revision).sha
    except RevisionNotFoundError:
        raise ModelNotFoundError(f"{repo_id!r} has no revision {wanted!r} on {endpoint()}") from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"{repo_id!r} is not a model repository on {endpoint()} (or it is gated)") from None
    except Exception as exc:  # noqa: BLE001 - connection errors of many kinds: fall back to the cache
        commit = cached_commit(repo_id, revision)
        if commit is None:
            raise ModelNotFoundError(f"cannot reach {endpoint()} to resolve {repo_id!r} at revision {wanted!r} "
                                     f"({type(exc).__name__}) and it is not in the local cache; " + OFFLINE_HINT) from None
        return commit


def remember_revision(repo_id: str, revision: str | None, commit: str) -> None:
    """Record in the cache that ``revision`` (``main`` when None) is ``commit``, as a branch download would."""
    wanted = revision or "main"
    if COMMIT.match(wanted):
        return  # a commit needs no ref
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    ref = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model") / "refs" / wanted
    if ref.is_file() and ref.read_text().strip() == commit:
        return
    ref.parent.mkdir(parents=True, exist_ok=True)
    staging = ref.with_name(ref.name + f".{os.getpid()}.tmp")
    staging.write_text(commit)
    os.replace(staging, ref)


def download_patterns(repo_id: str, commit: str | None) -> list[str]:
    """Configs, tokenizer files and weights: safetensors when the repository has them (most do), else the
    PyTorch ``.bin`` files. Other formats (ONNX exports, ColBERT/sparse heads as ``.pt``) are never fetched."""
    if offline():
        return HUB_PATTERNS + ["pytorch_model*.bin"]
    from huggingface_hub import model_info

    files = [s.rfilename for s in model_info(repo_id, revision=commit).siblings or []]
    has_safetensors = any(f.endswith(".safetensors") and "/" not in f for f in files)
    return HUB_PATTERNS if has_safetensors else HUB_PATTERNS + ["pytorch_model*.bin"]


def snapshot_folder(ref: ModelRef, requested_revision: str | None = None) -> Path:
    """The local snapshot of a hub model at its pinned commit (downloaded once)."""
    from huggingface_hub import snapshot_download

    try:
        patterns = download_patterns(ref.location, ref.revision)
        folder = Path(snapshot_download(ref.location, revision=ref.revision, allow_patterns=patterns))
    except Exception as exc:  # noqa: BLE001 - offline, missing repo and network errors all end here
        raise ModelNotFoundError(
            f"cannot get {ref.spec!r} at revision {ref.revision or 'main'!r} from {endpoint()} or the local cache "
            f"({type(exc).__name__}); " + OFFLINE_HINT) from None
    if ref.revision and not offline():
        remember_revision(ref.location, requested_revision, ref.revision)
    return folder
