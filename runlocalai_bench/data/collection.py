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
    language: str = "und"  # the queries' language (ISO 639-1); "und" when the collection does not say
    query_languages: dict[str, str] = field(default_factory=dict)  # per-query languages where they differ

    def query_language(self, query_id: str) -> str:
        return self.query_languages.get(query_id, self.language)

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = corpus_hash(self.docs.values())

    @property
    def judged_query_ids(self) -> list[str]:
        """Queries with at least one *positive* judgment, sorted: the population that is sampled and evaluated.

        A query judged only with grade 0 has no relevant document: every system scores 0 on it, so it would
        add a tie to every paired comparison and pull every mean toward 0 (trec_eval drops such queries too).
        """
        return sorted(q for q, judged in self.qrels.items() if q in self.queries and any(r > 0 for r in judged.values()))

    @property
    def unevaluated_query_ids(self) -> list[str]:
        """Queries outside the evaluated population (no positive judgment for this split), sorted: what static
        quantization may calibrate on without seeing the evaluated queries."""
        judged = set(self.judged_query_ids)
        return sorted(q for q in self.queries if q not in judged)

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
