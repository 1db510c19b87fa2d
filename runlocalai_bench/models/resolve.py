"""From a model spec to a :class:`ModelRef` (without loading the model) and to a folder that holds it."""

from __future__ import annotations

from pathlib import Path

from runlocalai_bench.models.hub import hub_revision, snapshot_folder
from runlocalai_bench.models.refs import (
    PKG_PREFIX, TWIN_PREFIX, ModelNotFoundError, ModelRef, default_cache_dir, folder_hash, package_folder,
)
from runlocalai_bench.models.twins import tiny_checkpoint


def resolve(spec: str, revision: str | None = None, cache_dir: Path | None = None, require: bool = True) -> ModelRef:
    """Turn a spec into a :class:`ModelRef`: local kinds are hashed, hub ids get their commit.

    With ``require=False`` a hub model whose commit cannot be resolved (offline, nothing cached) still gets a
    reference, without a commit: enough for a shape twin, which only needs the architecture.
    """
    cache_dir = cache_dir or default_cache_dir()
    if spec.startswith(TWIN_PREFIX):
        folder = tiny_checkpoint(spec[len(TWIN_PREFIX):], cache_dir)
        return ModelRef(spec, str(folder), None, folder_hash(folder, cache_dir))
    if spec.startswith(PKG_PREFIX):
        folder = package_folder(spec)
        return ModelRef(spec, str(folder), None, folder_hash(folder, cache_dir))
    path = Path(spec).expanduser()
    if path.is_dir():
        return ModelRef(spec, str(path.resolve()), None, folder_hash(path, cache_dir))
    if spec.startswith(("/", ".", "~")):
        raise ModelNotFoundError(f"model folder {spec!r} does not exist")
    try:
        commit = hub_revision(spec, revision)
    except ModelNotFoundError:
        if require:
            raise
        commit = None
    return ModelRef(spec, spec, commit, None, revision)


def local_folder(ref: ModelRef) -> Path:
    """A local folder holding ``ref``'s checkpoint: the folder itself, or the hub snapshot at its commit."""
    path = Path(ref.location)
    return path if path.is_dir() else snapshot_folder(ref, ref.requested_revision)
