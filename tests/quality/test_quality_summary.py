"""The summary table on oracle rerankers: a perfect reordering lifts significantly, a reversed one lowers."""

import numpy as np
import pandas as pd
import pytest

from runlocalai_bench.data.specs import load_collection
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.quality.metrics import evaluate, quality_rows
from runlocalai_bench.quality.summary import summarize
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.retrieval.candidates import candidate_pairs, rank_by_scores


MEASURES = ["nDCG@10", "RR@10", "R@20"]


@pytest.fixture(scope="module")
def fixture_run():
    collection = load_collection("fixture:tiny")
    query_ids = collection.judged_query_ids
    first = bm25_retrieve(collection, query_ids, FirstStageParams(kind="bm25", depth=20)).ranking
    keys, pairs = candidate_pairs(collection, first, query_ids)
    return collection, query_ids, first, keys, pairs


def quality(values, system, variant=None):
    return quality_rows(values, run_id="t", dataset="fixture:tiny", split="test", system=system, first_stage="bm25",
                        reranker="oracle" if variant else None, variant=variant, device="cpu" if variant else None)


def test_oracle_reaches_the_ideal_order_and_reversed_oracle_lowers(fixture_run):
    collection, query_ids, first, keys, _ = fixture_run
    relevance = np.array([collection.qrels[q].get(d, 0) for q, d in keys], dtype=np.float32)
    oracle = rank_by_scores(keys, relevance, query_ids)
    reverse = rank_by_scores(keys, -relevance, query_ids)
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
