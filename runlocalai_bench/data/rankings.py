"""Rankings: ``{query_id: [(doc_id, score), ...]}`` in rank order, and the one ordering rule the suite uses.

Ordering is always score descending, then doc id ascending, so equal scores never make two runs of the same
inputs differ.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

Ranking = dict[str, list[tuple[str, float]]]
Key = tuple[str, str]  # (query_id, doc_id)


def order(scored: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Deterministic rank order: score descending, ties broken by doc id ascending.

    A NaN score raises: ``sorted`` does not fail on NaN keys, it silently scrambles every other document's
    place (all comparisons with NaN are false)."""
    items = [(d, float(s)) for d, s in scored]
    bad = [d for d, s in items if math.isnan(s)]
    if bad:
        raise ValueError(f"cannot rank {len(bad)} of {len(items)} documents scored NaN (first: {bad[0]!r})")
    return sorted(items, key=lambda item: (-item[1], item[0]))


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
