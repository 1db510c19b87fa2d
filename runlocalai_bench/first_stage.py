"""First stage: dense retrieval (any sentence-transformers model) or BM25 (bm25s) over a collection.

Dense search is exact inner product over normalised embeddings, by a flat FAISS index or, below
``FAISS_MIN_DOCS`` documents (or with ``search: exact``), by a blocked numpy scan whose memory stays at
``n_queries x DOC_BLOCK`` scores. ``bench/first_stage_search.py`` measured FAISS 2-4x faster than the numpy
scan at every size from 2,000 to 300,000 documents (dim 1024, 300 queries, k 100, 2 cores), with the same
top-k; the numpy path remains for tiny corpora, where it costs milliseconds, and as the reference in tests.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runlocalai_bench.data import Collection
from runlocalai_bench.embedding_cache import EmbeddingCache, cache_key
from runlocalai_bench.models import ModelNotFoundError, ModelRef, resolve, resolve_device
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.runs import Ranking

log = logging.getLogger(__name__)

DOC_BLOCK = 16_384
FAISS_MIN_DOCS = 2_000
EMBEDDING_DTYPE = "float32"


@dataclass
class FirstStageResult:
    ranking: Ranking
    model: ModelRef | None
    system: str  # "dense" | "bm25"
    cache_hit: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    search: str = ""


def top_k_exact(queries: np.ndarray, docs: np.ndarray, k: int, block: int = DOC_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product, scanning ``docs`` in blocks.

    Returns (indices, scores), each ``n_queries x k``, ordered by score descending and, on equal scores,
    by document index ascending (documents are indexed in sorted-id order, so that is doc-id order).
    Boundary ties are kept whole inside each block before truncating, so the result never depends on
    where a block boundary falls.
    """
    n_queries = queries.shape[0]
    k = min(k, docs.shape[0])
    best_idx = np.zeros((n_queries, 0), dtype=np.int64)
    best_score = np.zeros((n_queries, 0), dtype=np.float32)
    for start in range(0, docs.shape[0], block):
        scores = queries @ np.asarray(docs[start:start + block], dtype=np.float32).T
        idx = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        all_idx = np.concatenate([best_idx, idx], axis=1)
        all_score = np.concatenate([best_score, scores.astype(np.float32)], axis=1)
        order = np.lexsort((all_idx, -all_score), axis=1)[:, :k]
        best_idx = np.take_along_axis(all_idx, order, axis=1)
        best_score = np.take_along_axis(all_score, order, axis=1)
    return best_idx, best_score


def top_k_faiss(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k with a flat inner-product FAISS index, re-ordered with our tie rule."""
    import faiss

    index = faiss.IndexFlatIP(docs.shape[1])
    for start in range(0, docs.shape[0], DOC_BLOCK):
        index.add(np.ascontiguousarray(docs[start:start + DOC_BLOCK], dtype=np.float32))
    scores, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, docs.shape[0]))
    order = np.lexsort((idx, -scores), axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(scores, order, axis=1)


def choose_search(setting: str, n_docs: int) -> str:
    if setting == "auto":
        return "faiss" if n_docs >= FAISS_MIN_DOCS else "exact"
    return setting


def load_encoder(ref: ModelRef, params: FirstStageParams, device: str):
    """A SentenceTransformer on ``device`` with the run's max length; a clear error when it cannot load."""
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(ref.location, device=device, revision=ref.revision if ref.location == ref.spec else None)
    except OSError as exc:
        raise ModelNotFoundError(
            f"cannot load first-stage model {ref.spec!r} ({str(exc).splitlines()[0]}). It must be in the Hugging "
            "Face cache or the hub must be reachable; offline, run `make smoke` or point first_stage.model at a folder."
        ) from None
    model.max_seq_length = params.max_length
    return model


def dense_retrieve(
    collection: Collection, query_ids: list[str], params: FirstStageParams, cache_dir: Path
) -> FirstStageResult:
    timings: dict[str, float] = {}
    ref = resolve(params.model, params.revision, cache_dir)
    device = resolve_device(params.device)
    started = time.perf_counter()
    model = load_encoder(ref, params, device)
    timings["load_s"] = time.perf_counter() - started

    doc_ids = sorted(collection.docs)
    cache = EmbeddingCache(cache_dir)
    key = cache_key(
        model=ref.spec, weights=ref.fingerprint, corpus=collection.content_hash, max_length=params.max_length,
        dtype=EMBEDDING_DTYPE, normalized=True, side="document",
    )
    doc_emb = cache.get(key)
    hit = doc_emb is not None
    started = time.perf_counter()
    if hit:
        log.info("embedding cache hit: %s (%d documents, key %s)", params.model, len(doc_ids), key)
        print(f"Reusing cached document embeddings {key} ({len(doc_ids)} documents) from {cache.root}")
    else:
        print(f"Encoding {len(doc_ids)} documents with {params.model} (cache miss, key {key})")
        doc_emb = model.encode_document(
            [collection.docs[d].contents for d in doc_ids], batch_size=params.batch_size,
            normalize_embeddings=True, show_progress_bar=True, convert_to_numpy=True,
        ).astype(np.float32)
        cache.put(key, doc_emb, {"model": ref.as_dict(), "corpus": collection.content_hash, "n_docs": len(doc_ids),
                                 "max_length": params.max_length, "dtype": EMBEDDING_DTYPE, "dataset": collection.spec})
    timings["encode_docs_s"] = time.perf_counter() - started

    started = time.perf_counter()
    query_emb = model.encode_query(
        [collection.queries[q] for q in query_ids], batch_size=params.batch_size,
        normalize_embeddings=True, show_progress_bar=len(query_ids) > 256, convert_to_numpy=True,
    ).astype(np.float32)
    timings["encode_queries_s"] = time.perf_counter() - started

    started = time.perf_counter()
    search = choose_search(params.search, len(doc_ids))
    search_fn = top_k_faiss if search == "faiss" else top_k_exact
    idx, scores = search_fn(query_emb, doc_emb, params.depth)
    timings["search_s"] = time.perf_counter() - started
    ranking = {
        q: [(doc_ids[i], float(s)) for i, s in zip(idx[row], scores[row])] for row, q in enumerate(query_ids)
    }
    return FirstStageResult(ranking, ref, "dense", hit, timings, search)


def bm25_retrieve(collection: Collection, query_ids: list[str], params: FirstStageParams) -> FirstStageResult:
    """BM25 (bm25s, Lucene variant, English stopwords): the classic BEIR first stage for reranking."""
    import bm25s

    started = time.perf_counter()
    doc_ids = sorted(collection.docs)
    retriever = bm25s.BM25(method="lucene")
    retriever.index(bm25s.tokenize([collection.docs[d].contents for d in doc_ids], stopwords="en", show_progress=False),
                    show_progress=False)
    k = min(params.depth, len(doc_ids))
    tokens = bm25s.tokenize([collection.queries[q] for q in query_ids], stopwords="en", show_progress=False)
    idx, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    ranking: Ranking = {}
    for row, query_id in enumerate(query_ids):
        # bm25s pads with zero scores when fewer than k documents share a term; those are not retrieved.
        pairs = [(doc_ids[int(i)], float(s)) for i, s in zip(idx[row], scores[row]) if s > 0]
        ranking[query_id] = sorted(pairs, key=lambda p: (-p[1], p[0]))
    return FirstStageResult(ranking, None, "bm25", False, {"index_and_search_s": time.perf_counter() - started}, "bm25s")


def retrieve(collection: Collection, query_ids: list[str], params: FirstStageParams, cache_dir: Path) -> FirstStageResult:
    if params.kind == "bm25":
        return bm25_retrieve(collection, query_ids, params)
    return dense_retrieve(collection, query_ids, params, cache_dir)
