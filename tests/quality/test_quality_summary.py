"""The summary table on oracle rerankers: a perfect reordering lifts significantly, a reversed one lowers; the
evidence columns a claim filters on; macro-average rows; one device's queries never pooled twice."""

import numpy as np
import pandas as pd
import pytest

from runlocalai_bench.data.specs import load_collection
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.quality.metrics import evaluate, quality_rows
from runlocalai_bench.quality.summary import MACRO, summarize
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.data.rankings import rerank_top
from runlocalai_bench.retrieval.candidates import candidate_pairs, scores_by_key

MEASURES = ["nDCG@10", "RR@10", "R@20"]


@pytest.fixture(scope="module")
def fixture_run():
    collection = load_collection("fixture:tiny")
    query_ids = collection.judged_query_ids
    first = bm25_retrieve(collection, query_ids, FirstStageParams(kind="bm25", depth=20)).ranking
    keys, pairs = candidate_pairs(collection, first, query_ids)
    return collection, query_ids, first, keys, pairs


def quality(values, system, variant=None, dataset="fixture:tiny", run_id="t", device="cpu"):
    return quality_rows(values, run_id=run_id, dataset=dataset, split="test", system=system, first_stage="bm25",
                        first_stage_depth=20, rerank_depth=20 if variant else None,
                        reranker="oracle" if variant else None, variant=variant, device=device if variant else None)


def test_oracle_reaches_the_ideal_order_and_reversed_oracle_lowers(fixture_run):
    collection, query_ids, first, keys, _ = fixture_run
    relevance = np.array([collection.qrels[q].get(d, 0) for q, d in keys], dtype=np.float32)
    oracle = rerank_top(first, scores_by_key(keys, relevance), 20, query_ids)
    reverse = rerank_top(first, scores_by_key(keys, -relevance), 20, query_ids)
    base = evaluate(first, collection.qrels, query_ids, MEASURES)
    best = evaluate(oracle, collection.qrels, query_ids, MEASURES)
    worst = evaluate(reverse, collection.qrels, query_ids, MEASURES)
    for q in query_ids:  # ideal ordering of the candidates, computed independently
        ideal = sorted(first[q], key=lambda item: (-collection.qrels[q].get(item[0], 0), item[0]))
        assert best["nDCG@10"][q] == pytest.approx(evaluate({q: ideal}, collection.qrels, [q], ["nDCG@10"])["nDCG@10"][q])
    assert best["R@20"] == base["R@20"] == worst["R@20"]  # same candidates, same ceiling
    table = pd.concat([quality(base, "bm25"), quality(best, "rerank", "oracle"), quality(worst, "rerank", "reversed")])
    summary = summarize(table, samples=2000, seed=0).set_index(["variant", "measure"])
    up, down = summary.loc[("oracle", "nDCG@10")], summary.loc[("reversed", "nDCG@10")]
    assert up["lift_abs"] > 0 and up["lift_ci_low"] > 0 and up["losses"] == 0 and up["wins"] > 0
    assert down["lift_abs"] < 0 and down["lift_ci_high"] < 0 and down["p_value"] < 0.05
    assert summarize(table, 2000, 0).equals(summarize(table, 2000, 0))  # same seed, same statistics


def test_summary_rows_carry_the_evidence_a_claim_is_checked_on(fixture_run):
    collection, query_ids, first, keys, _ = fixture_run
    base = evaluate(first, collection.qrels, query_ids, MEASURES)
    summary = summarize(pd.concat([quality(base, "bm25"), quality(base, "rerank", "same")]), 500, 0)
    row = summary[(summary["system"] == "rerank") & (summary["measure"] == "nDCG@10")].iloc[0]
    assert (row["dataset"], row["first_stage"], row["first_stage_depth"], row["rerank_depth"]) == ("fixture:tiny", "bm25", 20, 20)
    assert row["n_queries"] == len(query_ids)
    first_row = summary[summary["system"] == "bm25"].iloc[0]
    assert pd.isna(first_row["rerank_depth"]) and first_row["first_stage_depth"] == 20


def test_one_device_measured_twice_is_refused_not_pooled(fixture_run):
    """devices [auto, cpu] on a CPU machine once gave two executions with the same device label: pooled, n doubled
    and p shrank. A summary group with a repeated query id must fail."""
    collection, query_ids, first, _, _ = fixture_run
    base = evaluate(first, collection.qrels, query_ids, MEASURES)
    twice = pd.concat([quality(base, "bm25"), quality(base, "rerank", "v"), quality(base, "rerank", "v")])
    with pytest.raises(ValueError, match="appears twice in one summary group"):
        summarize(twice, 100, 0)


def test_macro_average_rows_over_a_runs_datasets(fixture_run):
    collection, query_ids, first, keys, _ = fixture_run
    relevance = np.array([collection.qrels[q].get(d, 0) for q, d in keys], dtype=np.float32)
    oracle = evaluate(rerank_top(first, scores_by_key(keys, relevance), 20, query_ids), collection.qrels, query_ids, MEASURES)
    base = evaluate(first, collection.qrels, query_ids, MEASURES)
    frames = [quality(values, system, variant, dataset=name)
              for name in ("a", "b") for values, system, variant in ((base, "bm25", None), (oracle, "rerank", "oracle"))]
    summary = summarize(pd.concat(frames), 500, 0)
    macro = summary[(summary["dataset"] == MACRO) & (summary["measure"] == "nDCG@10")].set_index("system")
    per_dataset = summary[(summary["dataset"] != MACRO) & (summary["measure"] == "nDCG@10") & (summary["system"] == "rerank")]
    assert macro.loc["rerank", "mean"] == pytest.approx(per_dataset["mean"].mean())
    assert macro.loc["rerank", "n_queries"] == 2 * len(query_ids) and macro.loc["rerank", "datasets"] == "a, b"
    assert macro.loc["rerank", "lift_ci_low"] > 0
