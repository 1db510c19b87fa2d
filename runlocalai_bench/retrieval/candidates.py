"""Between the stages: first-stage candidates become query-document pairs, reranker scores become rankings."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.trec import Ranking, order
from runlocalai_bench.rerankers.base import Pair

Key = tuple[str, str]  # (query_id, doc_id)


def candidate_pairs(collection: Collection, candidates: Mapping[str, Sequence[tuple[str, float]]],
                    query_ids: Sequence[str]) -> tuple[list[Key], list[Pair]]:
    """(query_id, doc_id) keys and (query text, document "title text") pairs, query by query, in rank order.

    Every query of the run appears in the output ranking later, even one whose candidate list is empty.
    """
    keys: list[Key] = []
    pairs: list[Pair] = []
    for query_id in query_ids:
        for doc_id, _ in candidates.get(query_id, []):
            keys.append((query_id, doc_id))
            pairs.append((collection.queries[query_id], collection.docs[doc_id].contents))
    return keys, pairs


def rank_by_scores(keys: Sequence[Key], scores: np.ndarray, query_ids: Sequence[str]) -> Ranking:
    """Rankings by reranker score (descending, ties by doc id): the deterministic order we evaluate."""
    if len(keys) != len(scores):
        raise ValueError(f"{len(keys)} pairs but {len(scores)} scores")
    grouped: dict[str, list[tuple[str, float]]] = {q: [] for q in query_ids}
    for (query_id, doc_id), score in zip(keys, scores):
        grouped[query_id].append((doc_id, float(score)))
    return {q: order(docs) for q, docs in grouped.items()}


def calibration_sample(pairs: Sequence[Pair], n: int, seed: int) -> list[Pair]:
    """A seeded sample of the run's own pairs for static quantization (never a dataset from a hub)."""
    if len(pairs) <= n:
        return list(pairs)
    picked = np.random.default_rng(seed).choice(len(pairs), size=n, replace=False)
    return [pairs[i] for i in sorted(picked)]
