"""What judgments on documents missing from the corpus cost: the best nDCG@10 each affected query can reach.

The protocol keeps such judgments (data/protocol.py), as pytrec_eval, BEIR and MTEB do, so the ideal DCG of an
affected query counts a document no system can retrieve. The report says so with this number: "5 judged
documents are not in the corpus; those 5 queries can at most reach nDCG@10 0 (mean)".
"""

from __future__ import annotations

from typing import Sequence

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.quality.metrics import evaluate

LISTED = 20  # (query, document) pairs named in the record; the count is always complete


def best_reachable(collection: Collection, query_ids: Sequence[str], measure: str = "nDCG@10") -> dict[str, float]:
    """Per query: ``measure`` of the ideal ranking of the judged documents the corpus has."""
    ideal = {}
    for query_id in query_ids:
        present = [(d, g) for d, g in collection.qrels.get(query_id, {}).items() if d in collection.docs and g > 0]
        ideal[query_id] = [(d, float(g)) for d, g in sorted(present, key=lambda item: (-item[1], item[0]))]
    return evaluate(ideal, collection.qrels, list(query_ids), [measure])[measure]


def missing_judged_record(collection: Collection, query_ids: Sequence[str]) -> dict:
    """The bundle's record of judged documents the corpus lacks, among the evaluated queries."""
    affected = [q for q in query_ids if q in collection.missing_judged]
    pairs = [(q, d) for q in affected for d in collection.missing_judged[q]]
    best = best_reachable(collection, affected) if affected else {}
    positive = sum(1 for q, d in pairs if collection.qrels[q][d] > 0)
    return {"count": len(pairs), "positive": positive, "queries": len(affected),
            "listed": [f"{q} -> {d}" for q, d in pairs[:LISTED]],
            "best_ndcg10": {q: round(v, 6) for q, v in best.items()},
            "best_ndcg10_mean": round(sum(best.values()) / len(best), 6) if best else None}


def missing_judged_sentence(label: str, record: dict) -> str | None:
    """One sentence for the report, or None when the corpus has every judged document."""
    if not record or not record.get("count"):
        return None
    docs = "document is" if record["count"] == 1 else "documents are"
    queries = "that query" if record["queries"] == 1 else f"those {record['queries']} queries"
    return (f"{label}: {record['count']} judged {docs} not in the corpus ({record['positive']} of them relevant); "
            f"the judgments are kept, as pytrec_eval, BEIR and MTEB keep them, so {queries} can at most reach "
            f"nDCG@10 {record['best_ndcg10_mean']:.3f} (mean)")
