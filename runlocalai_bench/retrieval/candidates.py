"""Between the stages: first-stage candidates become query-document pairs, reranker scores become rankings."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.rankings import Key
from runlocalai_bench.rerankers.base import Pair

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


def scores_by_key(keys: Sequence[Key], scores: np.ndarray) -> dict[Key, float]:
    if len(keys) != len(scores):
        raise ValueError(f"{len(keys)} pairs but {len(scores)} scores")
    return {key: float(score) for key, score in zip(keys, scores)}


def calibration_sample(pairs: Sequence[Pair], n: int, seed: int) -> list[Pair]:
    """A seeded sample of calibration pairs for static quantization. The pairs must come from queries outside
    the evaluated set (retrieval/calibration.py): calibrating on the evaluated pairs is a test-data leak."""
    if len(pairs) <= n:
        return list(pairs)
    picked = np.random.default_rng(seed).choice(len(pairs), size=n, replace=False)
    return [pairs[i] for i in sorted(picked)]
