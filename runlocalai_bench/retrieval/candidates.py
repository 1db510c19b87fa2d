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


def rerank_top(first_stage: Mapping[str, Sequence[tuple[str, float]]], scores: Mapping[Key, float], k: int,
               query_ids: Sequence[str]) -> Ranking:
    """Each query's first ``k`` candidates reordered by reranker score (descending, ties by doc id), followed by
    the rest of the first stage's candidates in their first-stage order.

    Keeping the tail makes the reranked run exactly as deep as the first stage: recall at the first stage's
    depth is identical by construction, and with ``k`` < 10 nDCG@10 still sees ten documents. Tail documents
    carry a NaN score (the reranker never saw them). One scoring pass at the run's depth serves every ``k``
    up to it (the depth curve).
    """
    ranking: Ranking = {}
    for query_id in query_ids:
        docs = first_stage.get(query_id, [])
        head = order((doc_id, scores[(query_id, doc_id)]) for doc_id, _ in docs[:k])
        ranking[query_id] = head + [(doc_id, float("nan")) for doc_id, _ in docs[k:]]
    return ranking


def scores_by_key(keys: Sequence[Key], scores: np.ndarray) -> dict[Key, float]:
    if len(keys) != len(scores):
        raise ValueError(f"{len(keys)} pairs but {len(scores)} scores")
    return {key: float(score) for key, score in zip(keys, scores)}


def calibration_sample(pairs: Sequence[Pair], n: int, seed: int) -> list[Pair]:
    """A seeded sample of calibration pairs for static quantization. The pairs must come from queries outside
    the evaluated set (:func:`calibration_query_ids`): calibrating on the evaluated pairs is a test-data leak."""
    if len(pairs) <= n:
        return list(pairs)
    picked = np.random.default_rng(seed).choice(len(pairs), size=n, replace=False)
    return [pairs[i] for i in sorted(picked)]


def calibration_query_ids(collection: Collection, evaluated: Sequence[str], n: int, seed: int) -> list[str]:
    """Up to ``n`` queries (seeded) that the run does not evaluate: unjudged queries, queries of other splits,
    and judged queries left out of the sample."""
    pool = sorted(set(collection.queries) - set(evaluated))
    if len(pool) <= n:
        return pool
    picked = np.random.default_rng(seed).choice(len(pool), size=n, replace=False)
    return sorted(pool[i] for i in picked)
