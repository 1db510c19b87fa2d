"""Dense first stage: any sentence-transformers bi-encoder, document embeddings cached on disk, exact search.

sentence-transformers is imported inside :func:`load_encoder` (heavy; BM25 runs never need it).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(f"cannot load first-stage model {ref.spec!r} from its files "
                                 f"({first[:200] + '…' if len(first) > 200 else first})") from None
    model.max_seq_length = params.max_length
    return model


class DenseFirstStage:
    """A bi-encoder loaded once and used for every dataset of a run (document embeddings cached per corpus)."""

    def __init__(self, params: FirstStageParams, cache_dir: Path):
        self.params, self.cache_dir = params, Path(cache_dir)
        self.ref = resolve(params.model, params.revision, cache_dir)
        self.device = resolve_device(params.device)
        started = time.perf_counter()
        self.model = load_encoder(self.ref, params, self.device)
        self.load_s = time.perf_counter() - started

    def retrieve(self, collection: Collection, query_ids: list[str],
                 on_progress: Callable[[int, int], None] | None = None,
                 depth: int | None = None) -> FirstStageResult:
        params, ref, model = self.params, self.ref, self.model
        timings: dict[str, float] = {"load_s": self.load_s}
        doc_ids = sorted(collection.docs)
        cache = EmbeddingCache(self.cache_dir)
        key = cache_key(
            model=ref.spec, weights=ref.fingerprint, corpus=collection.content_hash, max_length=params.max_length,
            dtype=EMBEDDING_DTYPE, normalized=True, side="document",
        )
        doc_emb = cache.get(key)
        hit = doc_emb is not None
        started = time.perf_counter()
        if hit:
            log.info("embedding cache hit: %s (%d documents, key %s)", params.model, len(doc_ids), key)
            print(f"Reusing cached document embeddings {key} ({len(doc_ids)} documents)")
        else:
            print(f"Encoding {len(doc_ids)} documents with {params.model} (cache miss, key {key})")
            doc_emb = encode_in_chunks(model, [collection.docs[d].contents for d in doc_ids], params.batch_size,
                                       on_progress)
            cache.put(key, doc_emb, {"model": ref.as_dict(), "corpus": collection.content_hash, "n_docs": len(doc_ids),
                                     "max_length": params.max_length, "dtype": EMBEDDING_DTYPE,
                                     "dataset": collection.spec, "reduced_from": collection.reduced_from})
        timings["encode_docs_s"] = time.perf_counter() - started

        started = time.perf_counter()
        prompt = {"prompt": params.query_prompt} if params.query_prompt else {}
        query_emb = model.encode_query(
            [collection.queries[q] for q in query_ids], batch_size=params.batch_size,
            normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True, **prompt,
        ).astype(np.float32)
        timings["encode_queries_s"] = time.perf_counter() - started

        started = time.perf_counter()
        search = choose_search(params.search, len(doc_ids))
        search_fn = top_k_faiss if search == "faiss" else top_k_exact
        idx, scores = search_fn(query_emb, doc_emb, depth or params.depth)
        timings["search_s"] = time.perf_counter() - started
        ranking = {
            q: [(doc_ids[i], float(s)) for i, s in zip(idx[row], scores[row])] for row, q in enumerate(query_ids)
        }
        return FirstStageResult(ranking, ref, "dense", hit, timings, search)


ENCODE_CHUNK = 1024  # documents per progress report: a few seconds of work even on a GPU


def encode_in_chunks(model, texts: list[str], batch_size: int,
                     on_progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Document embeddings, encoded a chunk at a time so a long encoding reports progress between chunks."""
    parts = []
    for start in range(0, len(texts), ENCODE_CHUNK):
        parts.append(model.encode_document(texts[start:start + ENCODE_CHUNK], batch_size=batch_size,
                                           normalize_embeddings=True, show_progress_bar=False,
                                           convert_to_numpy=True).astype(np.float32))
        if on_progress:
            on_progress(min(start + ENCODE_CHUNK, len(texts)), len(texts))
    return np.concatenate(parts) if parts else np.zeros((0, model.get_sentence_embedding_dimension()), np.float32)


def dense_retrieve(collection: Collection, query_ids: list[str], params: FirstStageParams,
                   cache_dir: Path) -> FirstStageResult:
    """One collection with a freshly loaded encoder (tests and one-off use; runs keep the encoder loaded)."""
    return DenseFirstStage(params, cache_dir).retrieve(collection, query_ids)
