"""BM25 first stage (bm25s, Lucene variant, English stopwords): the classic BEIR first stage for reranking."""

from __future__ import annotations

import time

import bm25s

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.rankings import Ranking
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.retrieval.result import FirstStageResult


# bm25s's default token pattern, r"\b\w\w+\b", splits words at the combining vowel signs of Indic scripts
# (Telugu, Bengali: they are not \w) and finds no token at all in most of them. Word characters plus the marks
# of the Combining Diacritical Marks and the Indic blocks (U+0900-U+0DFF) keep such words whole.
MULTILINGUAL_TOKENS = r"(?u)(?:\w|[\u0300-\u036F\u0900-\u0DFF])+"


def bm25_retrieve(collection: Collection, query_ids: list[str], params: FirstStageParams,
                  depth: int | None = None, token_pattern: str | None = None) -> FirstStageResult:
    """BM25 over ``title text`` of every document; only documents sharing a term with the query are returned.
    ``token_pattern``: bm25s's tokenizer pattern (None: its default, the suite's English BM25 first stage)."""
    pattern = {"token_pattern": token_pattern} if token_pattern else {}
    started = time.perf_counter()
    doc_ids = sorted(collection.docs)
    retriever = bm25s.BM25(method="lucene")
    retriever.index(bm25s.tokenize([collection.docs[d].contents for d in doc_ids], stopwords="en", show_progress=False,
                                   **pattern), show_progress=False)
    k = min(depth or params.depth, len(doc_ids))
    tokens = bm25s.tokenize([collection.queries[q] for q in query_ids], stopwords="en", show_progress=False, **pattern)
    idx, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    ranking: Ranking = {}
    for row, query_id in enumerate(query_ids):
        # bm25s pads with zero scores when fewer than k documents share a term; those are not retrieved.
        pairs = [(doc_ids[int(i)], float(s)) for i, s in zip(idx[row], scores[row]) if s > 0]
        ranking[query_id] = sorted(pairs, key=lambda p: (-p[1], p[0]))
    return FirstStageResult(ranking, None, "bm25", False, {"index_and_search_s": time.perf_counter() - started}, "bm25s")
