"""The in-memory form every dataset kind loads into: documents, queries, graded judgments.

Everything downstream sees the same :class:`Collection`, so an ir_datasets id, a BEIR folder and a shipped
fixture are one code path after loading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, NamedTuple

import numpy as np

from runlocalai_bench.data.protocol import LOCAL, Protocol


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
    protocol: Protocol = LOCAL
    # Judged documents the corpus lacks, per query (kept in the judgments: see data/protocol.py).
    missing_judged: dict[str, list[str]] = field(default_factory=dict)
    # Document ids that occurred more than once in the source, with how often (the last record was kept).
    duplicate_doc_ids: dict[str, int] = field(default_factory=dict)
    # A reduced corpus (retrieval/reduced.py): the full corpus's hash; "" for a whole collection. Its cached
    # embeddings must never be taken for the full corpus's.
    reduced_from: str = ""

    def query_language(self, query_id: str) -> str:
        return self.query_languages.get(query_id, self.language)

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = corpus_hash(self.docs.values())

    @property
    def judged_query_ids(self) -> list[str]:
        """Every query with a judgment in this split, sorted: the population that is sampled and evaluated.

        A query judged only non-relevant stays in (it scores 0), as pytrec_eval, BEIR and MTEB count it; see
        :attr:`zero_positive_query_ids` for how many there are.
        """
        return sorted(q for q, judged in self.qrels.items() if q in self.queries and judged)

    @property
    def zero_positive_query_ids(self) -> list[str]:
        """Judged queries without a single positive judgment (each scores 0 for every system)."""
        return [q for q in self.judged_query_ids if not any(r > 0 for r in self.qrels[q].values())]

    @property
    def unevaluated_query_ids(self) -> list[str]:
        """Queries without a judgment in this split, sorted: what static quantization may calibrate on without
        seeing the evaluated queries."""
        judged = set(self.judged_query_ids)
        return sorted(q for q in self.queries if q not in judged)

    def query_order(self, seed: int) -> list[str]:
        """The judged queries in one seeded random order: every sample of the run is a prefix of it.

        Why one order rather than a draw per size: under a time budget each execution evaluates as many queries as
        its share allows, and paired comparisons between executions need the smaller sample to be a subset of
        the larger (a prefix is; two draws of different sizes are not, numpy's ``choice`` included)."""
        ids = self.judged_query_ids
        return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]

    def sample_queries(self, n: int | None, seed: int) -> list[str]:
        """The first ``n`` judged queries of :meth:`query_order`, sorted (same n and seed give the same ids on any
        machine; a smaller n gives a subset of a larger one)."""
        ids = self.judged_query_ids
        if n is None or n >= len(ids):
            return ids
        return sorted(self.query_order(seed)[:n])


def corpus_hash(docs: Iterable[Document]) -> str:
    """Content hash of the corpus, independent of file format and order (keys the embedding cache)."""
    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: d.doc_id):
        for part in doc:
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return digest.hexdigest()


Where = Callable[[], str]  # names the record at fault ("file:line", "ir_datasets X qrels record N")


def assemble(spec: str, split: str, documents: Iterable[Document], queries: dict[str, str],
             judgments: Iterable[tuple[str, str, int, Where]], *, source: str, language: str = "und",
             query_languages: dict[str, str] | None = None, protocol: Protocol = LOCAL) -> Collection:
    """A :class:`Collection` built by the protocol's rules, the same for every dataset kind (data/protocol.py):
    duplicate document ids keep the last record (counted), judgments on documents the corpus lacks are kept
    (listed per query). A judgment on a query that has no text cannot be evaluated: that is an error naming
    the record."""
    docs: dict[str, Document] = {}
    duplicates: dict[str, int] = {}
    for doc in documents:
        if doc.doc_id in docs:
            duplicates[doc.doc_id] = duplicates.get(doc.doc_id, 1) + 1
        docs[doc.doc_id] = doc
    qrels: dict[str, dict[str, int]] = {}
    missing: dict[str, list[str]] = {}
    for query_id, doc_id, grade, where in judgments:
        if query_id not in queries:
            raise CollectionError(f"{where()}: query {query_id!r} is not among the queries")
        if doc_id not in docs and doc_id not in qrels.get(query_id, {}):
            missing.setdefault(query_id, []).append(doc_id)
        qrels.setdefault(query_id, {})[doc_id] = int(grade)
    return Collection(spec, split, docs, queries, qrels, source=source, language=language,
                      query_languages=query_languages or {}, protocol=protocol,
                      missing_judged={q: sorted(ids) for q, ids in missing.items()}, duplicate_doc_ids=duplicates)
