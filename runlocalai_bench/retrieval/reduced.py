"""A reduced corpus for a first stage that does not fit the run's budget (run/budget.py decides its size).

Built the way sentence-transformers' NanoBEIR reduces BEIR: the documents that matter to the sampled queries
plus distractors, so that the dense retriever still has to find the relevant ones among plausible others:

1. every judged document of the sampled queries (relevant or not) that the corpus has: nDCG is computed on the
   same judgments as on the full corpus;
2. BM25's top ``pool_depth`` for each sampled query over the **full** corpus (bm25s, the suite's BM25 first stage,
   with a token pattern that keeps Indic words whole, :data:`~runlocalai_bench.retrieval.bm25.MULTILINGUAL_TOKENS`):
   the hard lexical distractors the full corpus would have put in front of the dense retriever;
3. a seeded uniform sample of the remaining documents up to the size the budget allows: ordinary documents a
   BM25 pool alone would lack (a pool-only corpus would favour lexical distractors over semantic ones).

Numbers on a reduced corpus are not those of the full corpus (fewer distractors: nDCG is higher), so every row
of such a dataset carries :func:`~runlocalai_bench.data.specs.reduced_label` and is never compared with a
full-corpus reference; paired lifts between systems on its candidates remain valid comparisons of those systems.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.retrieval.bm25 import MULTILINGUAL_TOKENS, bm25_retrieve


def reduce_corpus(collection: Collection, query_ids: list[str], max_docs: int, pool_depth: int,
                  seed: int) -> tuple[Collection, dict]:
    """The reduced collection (same queries, judgments and protocol; fewer documents) and its record: how many
    documents came from each rule, and the full corpus's size and hash."""
    judged = sorted({d for q in query_ids for d in collection.qrels.get(q, {}) if d in collection.docs})
    pooled_run = bm25_retrieve(collection, query_ids, FirstStageParams(kind="bm25", depth=pool_depth), pool_depth,
                               token_pattern=MULTILINGUAL_TOKENS)
    pooled = sorted({d for docs in pooled_run.ranking.values() for d, _ in docs} - set(judged))
    kept = set(judged) | set(pooled)
    rest = sorted(set(collection.docs) - kept)
    room = max(max_docs - len(kept), 0)
    drawn = [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))[:room]] if room else []
    docs = {d: collection.docs[d] for d in sorted(kept | set(drawn))}
    reduced = replace(collection, docs=docs, content_hash="", reduced_from=collection.content_hash,
                      duplicate_doc_ids={d: n for d, n in collection.duplicate_doc_ids.items() if d in docs})
    record = {
        "kind": "reduced", "docs": len(docs), "full_docs": len(collection.docs),
        "full_corpus_sha256": collection.content_hash, "judged": len(judged), "pooled": len(pooled),
        "sampled": len(drawn), "max_docs": max_docs, "pool": f"bm25s (Lucene BM25) top {pool_depth} of the full corpus "
                                                             f"for each of {len(query_ids)} sampled queries",
        "bm25_s": pooled_run.seconds.get("index_and_search_s"), "seed": seed,
        "rule": "judged documents of the sampled queries + BM25 pool + seeded sample of the rest (NanoBEIR-style)",
    }
    return reduced, record
