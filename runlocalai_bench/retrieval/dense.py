"""Dense first stage: any sentence-transformers bi-encoder, document embeddings cached on disk, exact search.

sentence-transformers is imported inside :func:`load_encoder` (heavy; BM25 runs never need it).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.devices import resolve_device
from runlocalai_bench.models.refs import ModelNotFoundError, ModelRef
from runlocalai_bench.models.resolve import local_folder, resolve
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.retrieval.embedding_cache import EmbeddingCache, cache_key
from runlocalai_bench.retrieval.result import FirstStageResult
from runlocalai_bench.retrieval.search import choose_search, top_k_exact, top_k_faiss

log = logging.getLogger(__name__)
EMBEDDING_DTYPE = "float32"


def load_encoder(ref: ModelRef, params: FirstStageParams, device: str):
    """A SentenceTransformer on ``device`` with the run's max length, loaded from a local folder (a hub model's
    snapshot at its pinned commit: the same files, and the same cache records, as the reranker's)."""
    from sentence_transformers import SentenceTransformer

    folder = local_folder(ref)
    try:
        model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    except (OSError, ValueError) as exc:  # missing files; a config transformers does not recognise
        raise ModelNotFoundError(f"cannot load first-stage model {ref.spec!r} from its files "
                                 f"({str(exc).splitlines()[0]})") from None
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
