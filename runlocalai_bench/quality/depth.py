"""The rerank-depth curve: how much quality each reranked depth k buys, and what it costs per query.

From one scoring pass at the run's depth: for each k, only a query's first k candidates are reordered by
reranker score and the rest keep their first-stage order (:func:`retrieval.candidates.rerank_top`), so every k
is evaluated on the same scores. Cost is what the reranker must score: ``min(k, candidates)`` pairs per query,
and the time per query predicted from the rate measured on the same dataset (the ``candidates`` workload).
This is the question a RAG builder asks: how many candidates are worth reranking?
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from runlocalai_bench.quality.metrics import evaluate
from runlocalai_bench.quality.stats import bootstrap_mean, paired_comparison
from runlocalai_bench.quality.summary import MACRO
from runlocalai_bench.data.rankings import Key, rerank_top

DEPTH_MEASURE = "nDCG@10"


def depth_rows(first_stage: Mapping[str, Sequence[tuple[str, float]]], scores: Mapping[Key, float],
               depths: Sequence[int], qrels: Mapping[str, Mapping[str, int]], query_ids: Sequence[str]) -> pd.DataFrame:
    """Per query and depth: nDCG@10 of the run reranked to that depth, and the pairs that took; depth 0 is the
    first stage alone (the baseline every lift is paired with)."""
    rows = []
    for depth in [0, *depths]:
        ranking = rerank_top(first_stage, scores, depth, query_ids)
        values = evaluate(ranking, qrels, query_ids, [DEPTH_MEASURE])[DEPTH_MEASURE]
        for query_id in query_ids:
            pairs = min(depth, len(first_stage.get(query_id, [])))
            rows.append({"depth": depth, "query_id": query_id, "measure": DEPTH_MEASURE, "value": values[query_id],
                         "pairs": pairs})
    return pd.DataFrame(rows)


def _rates(throughput: pd.DataFrame) -> dict[tuple, float]:
    """Pairs/s of the candidates workload per (run, dataset, reranker, variant, device): a comparison reranker
    in the same variant is timed at its own speed."""
    if throughput.empty or "dataset" not in throughput:
        return {}
    rows = throughput[throughput["workload"] == "candidates"]
    return {(r["run_id"], r["dataset"], r["reranker"], r["variant"], r["device"]): float(r["pairs_per_s"])
            for _, r in rows.iterrows()}


def summarize_depth(depth_quality: pd.DataFrame, throughput: pd.DataFrame, samples: int, seed: int) -> pd.DataFrame:
    """One row per (run, dataset or macro-average, variant, device, depth): mean nDCG@10 with CI, paired lift
    over the first stage with CI, pairs per query and predicted milliseconds per query."""
    if depth_quality.empty:
        return pd.DataFrame()
    rates = _rates(throughput)
    rows = []
    keys = ["run_id", "reranker", "variant", "device"]
    for key_values, group in depth_quality.groupby(keys, sort=True, dropna=False):
        key = dict(zip(keys, key_values))
        datasets = sorted(group["dataset"].unique())
        base = group[group["depth"] == 0].set_index(["dataset", "query_id"])["value"].sort_index()
        for depth, at_depth in group[group["depth"] > 0].groupby("depth"):
            at_depth = at_depth.set_index(["dataset", "query_id"]).sort_index()
            scopes = [(d, at_depth.loc[[d]]) for d in datasets]
            if len(datasets) > 1:
                scopes.append((MACRO, at_depth))
            for dataset, part in scopes:
                strata = part.index.get_level_values("dataset").to_numpy() if dataset == MACRO else None
                values, baseline = part["value"], base.loc[part.index]
                mean = bootstrap_mean(values.to_numpy(), samples, seed, strata)
                lift = paired_comparison(values.to_numpy(), baseline.to_numpy(), samples, seed, strata=strata)
                per_query = part.groupby(level="dataset")["pairs"].mean()
                pairs_per_query = float(per_query.mean())
                rate_of = {d: (key["run_id"], d, key["reranker"], key["variant"], key["device"]) for d in per_query.index}
                predicted = [per_query[d] / rates[rate_of[d]] * 1e3 for d in per_query.index if rate_of[d] in rates]
                rows.append({**key, "dataset": dataset, "depth": int(depth), "measure": DEPTH_MEASURE,
                             "n_queries": int(len(values)), "mean": mean.estimate, "ci_low": mean.low,
                             "ci_high": mean.high, "lift_abs": lift.lift_abs.estimate, "lift_ci_low": lift.lift_abs.low,
                             "lift_ci_high": lift.lift_abs.high, "pairs_per_query": pairs_per_query,
                             "ms_per_query": sum(predicted) / len(predicted) if len(predicted) == len(per_query) else None})
    return pd.DataFrame(rows)
