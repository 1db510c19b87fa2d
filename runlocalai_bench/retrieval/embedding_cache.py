"""On-disk cache of corpus embeddings.

Encoding a corpus is the slowest part of a first stage on CPU (SciFact with bge-m3: many minutes), and it
does not change between reranker runs. The key covers everything that changes the vectors: model weights
(hub commit or folder hash), corpus content, max length, dtype and normalisation.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


class EmbeddingCache:
    def __init__(self, root: Path):
        self.root = Path(root) / "embeddings"

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npy", self.root / f"{key}.json"

    def get(self, key: str) -> np.ndarray | None:
        """The cached matrix (memory-mapped, read-only), or None on a miss or an unreadable entry."""
        array_path, meta_path = self._paths(key)
        if not (array_path.is_file() and meta_path.is_file()):
            return None
        try:
            return np.load(array_path, mmap_mode="r")
        except (OSError, ValueError):
            return None

    def corpus_hashes(self, dataset: str, **meta: Any) -> list[str]:
        """The corpus hashes of the whole-corpus entries cached for ``dataset`` whose metadata equals ``meta``
        (length, dtype), newest first. The plan asks this before it has the corpus: an ir_datasets corpus is hashed
        only once it is read, and reading MIRACL te to learn that its embeddings are cached would take longer than
        the plan. A reduced corpus's entry (``reduced_from`` set) is never returned: taking it for the full
        corpus would predict a free first stage that then embeds every document."""
        found = []
        for meta_path in self.root.glob("*.json") if self.root.is_dir() else ():
            try:
                entry = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if entry.get("dataset") == dataset and entry.get("corpus") and not entry.get("reduced_from") and all(
                    entry.get(k) == v for k, v in meta.items()):
                found.append((meta_path.stat().st_mtime, entry["corpus"]))
        return [corpus for _, corpus in sorted(found, reverse=True)]

    def put(self, key: str, array: np.ndarray, meta: dict[str, Any]) -> Path:
        """Write atomically (temp file + rename) so a killed run never leaves a truncated entry behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        array_path, meta_path = self._paths(key)
        for target, write in (
            (array_path, lambda f: np.save(f, np.ascontiguousarray(array))),
            (meta_path, lambda f: f.write(json.dumps(meta, indent=2, sort_keys=True).encode())),
        ):
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, target)
        return array_path
