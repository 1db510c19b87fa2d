"""Per-query effectiveness with ir-measures (pytrec_eval underneath), and the tidy quality rows.

Two rules from the methodology: a query that retrieved nothing relevant scores 0 and is never dropped
(trec_eval omits queries absent from the run; we put them back), and the evaluated order is exactly our
deterministic rank order (scores handed to the evaluator are derived from ranks, so trec_eval's own tie
rule, doc id descending, can never reorder equal scores).
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import ir_measures
import pandas as pd

from runlocalai_bench.results.tables import COLUMNS

# How ir-measures' nDCG (pytrec_eval's ndcg_cut) treats judgments, checked against the library by a test: the
# methods section of every report quotes it.
NDCG_CONVENTION = ("linear gain (a document's gain is its judgment grade: grade 2 counts twice grade 1), grades "
                   "of 0 or below count as not relevant (gain 0), log2 rank discount, the ideal ranking built from "
                   "all the query's judgments (judged documents outside the candidates included)")

def measure_names(first_stage_depth: int, rerank_depth: int) -> list[str]:
    """nDCG@10 and RR@10; recall at the first stage's depth (the candidate ceiling, equal for every system
    since the reranked run keeps the unreranked tail) and at the reranked depth (how much of it the reranker
    brings into its head). Cutoffs are named by the depths actually used, never a fixed R@100."""
    names = ["nDCG@10", "RR@10", f"R@{first_stage_depth}"]
    if rerank_depth != first_stage_depth:
        names.append(f"R@{rerank_depth}")
    return names


def evaluate(
    ranking: Mapping[str, Sequence[tuple[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    query_ids: Sequence[str],
    measures: Sequence[str],
) -> dict[str, dict[str, float]]:
    """``{measure: {query_id: value}}`` for every query in ``query_ids`` (0 where nothing was retrieved)."""
    parsed = [ir_measures.parse_measure(m) for m in measures]
    wanted = set(query_ids)
    missing = [q for q in query_ids if q not in qrels]
    if missing:
        raise ValueError(f"queries without judgments cannot be evaluated: {missing[:5]}")
    qrel_records = [
        ir_measures.Qrel(q, d, int(rel)) for q in query_ids for d, rel in sorted(qrels[q].items())
    ]
    run_records = [
        ir_measures.ScoredDoc(q, d, float(len(docs) - rank))
        for q, docs in ranking.items() if q in wanted
        for rank, (d, _) in enumerate(docs)
    ]
    values: dict[str, dict[str, float]] = {str(m): {q: 0.0 for q in query_ids} for m in parsed}
    for metric in ir_measures.iter_calc(parsed, qrel_records, run_records):
        values[str(metric.measure)][metric.query_id] = float(metric.value)
    return values


def quality_rows(
    values: dict[str, dict[str, float]], *, run_id: str, dataset: str, split: str, system: str, first_stage: str,
    first_stage_depth: int, rerank_depth: int | None = None, reranker: str | None = None, variant: str | None = None,
    device: str | None = None, language: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    """Long quality rows (one per query and measure) from :func:`evaluate`'s output, with the first stage and
    depths that produced them (the evidence a claim such as "after bge-m3 top 100" is checked against) and each
    query's language."""
    records: Iterable[dict] = (
        {"run_id": run_id, "dataset": dataset, "split": split, "system": system, "first_stage": first_stage,
         "reranker": reranker, "variant": variant, "device": device, "query_id": q, "measure": m, "value": v,
         "first_stage_depth": first_stage_depth, "rerank_depth": rerank_depth,
         "language": language(q) if language else "und"}
        for m, per_query in values.items() for q, v in per_query.items()
    )
    columns = COLUMNS["quality"] + ["first_stage_depth", "rerank_depth", "language"]
    frame = pd.DataFrame.from_records(list(records), columns=columns)
    return frame.astype({"first_stage_depth": "Int64", "rerank_depth": "Int64"})
