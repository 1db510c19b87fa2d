"""The in-memory form every dataset kind loads into: documents, queries, graded judgments.

Everything downstream sees the same :class:`Collection`, so an ir_datasets id, a BEIR folder and a shipped
fixture are one code path after loading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

import numpy as np


class CollectionError(ValueError):
    """A collection that cannot be used: the message names the file (and line) at fault."""


class Document(NamedTuple):
    doc_id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """BEIR convention: ``title + " " + text``, stripped (an empty title leaves just the text)."""
        return f"{self.title} {self.text}".strip()


@dataclass
class Collection:
    spec: str
    split: str
    docs: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    source: str
    content_hash: str = field(default="")

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = corpus_hash(self.docs.values())

    @property
    def judged_query_ids(self) -> list[str]:
        """Queries with at least one judgment, sorted: the population that is sampled and evaluated."""
        return sorted(q for q in self.qrels if q in self.queries)

    def sample_queries(self, n: int | None, seed: int) -> list[str]:
        """Deterministic sample of judged queries (same n and seed give the same ids on any machine)."""
        ids = self.judged_query_ids
        if n is None or n >= len(ids):
            return ids
        picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
        return sorted(ids[i] for i in picked)


def corpus_hash(docs: Iterable[Document]) -> str:
    """Content hash of the corpus, independent of file format and order (keys the embedding cache)."""
    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: d.doc_id):
        for part in doc:
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return digest.hexdigest()
