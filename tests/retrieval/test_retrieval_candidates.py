"""From candidates to rankings: the reranked head, the kept tail, calibration queries outside the evaluation."""

import pytest

from runlocalai_bench.data.specs import load_collection
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.quality.metrics import evaluate
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.data.rankings import rerank_top
from runlocalai_bench.data.specs import DatasetSpec
from runlocalai_bench.retrieval.calibration import (
    NONE, OTHER_DATASETS, TRAIN_SPLIT, UNEVALUATED, CalibrationSource, choose_sources, unevaluated_source,
)
from runlocalai_bench.retrieval.candidates import candidate_pairs, scores_by_key


def test_reranking_a_shallow_head_keeps_the_first_stages_tail():
    """Depth 5 of 20: the reranked run still holds 20 documents per query (tail in first-stage order), so recall
    at the first stage's depth cannot change and nDCG@10 is not cut to five documents."""
    collection = load_collection("fixture:tiny")
    query_ids = collection.judged_query_ids
    first = bm25_retrieve(collection, query_ids, FirstStageParams(kind="bm25", depth=20)).ranking
    head = {q: docs[:5] for q, docs in first.items()}
    keys, _ = candidate_pairs(collection, head, query_ids)
    reversed_scores = scores_by_key(keys, [-i for i in range(len(keys))])
    reranked = rerank_top(first, reversed_scores, 5, query_ids)
    for q in query_ids:
        assert [d for d, _ in reranked[q][5:]] == [d for d, _ in first[q][5:]]  # tail untouched, in order
        assert sorted(d for d, _ in reranked[q][:5]) == sorted(d for d, _ in first[q][:5])
        assert len(reranked[q]) == len(first[q])
    measures = ["R@20", "nDCG@10"]
    before, after = (evaluate(r, collection.qrels, query_ids, measures) for r in (first, reranked))
    assert after["R@20"] == before["R@20"]


def test_calibration_queries_are_never_evaluated_queries():
    collection = load_collection("fixture:tiny")
    spec = DatasetSpec.parse("fixture:tiny")
    evaluated = collection.sample_queries(8, seed=0)
    calibration = unevaluated_source(spec, collection, evaluated, n=16, seed=0)
    assert calibration.kind == UNEVALUATED and not set(calibration.queries) & set(evaluated)
    assert "q12" in calibration.queries  # the unjudged query
    assert unevaluated_source(spec, collection, evaluated, n=16, seed=0).queries == calibration.queries
    assert unevaluated_source(spec, collection, sorted(collection.queries), n=16, seed=0) is None


def test_calibration_source_order_train_then_other_datasets_then_unevaluated():
    train = CalibrationSource(TRAIN_SPLIT, "ir_datasets:beir/scifact/train", {"t1": "x"})
    spare = CalibrationSource(UNEVALUATED, "beir/scifact/test: ...", {"u1": "y"})
    chosen = choose_sources({"scifact": train, "arguana": None}, {"scifact": spare, "arguana": spare})
    assert chosen["scifact"] is train  # a train split beats unevaluated queries, in every dataset of the run
    assert chosen["arguana"].kind == OTHER_DATASETS and "train splits of scifact" in chosen["arguana"].source
    chosen = choose_sources({"a": None, "b": None}, {"a": spare, "b": None})
    assert chosen["a"] is spare and chosen["b"].kind == OTHER_DATASETS
    chosen = choose_sources({"a": None}, {"a": None})
    assert chosen["a"].kind == NONE and "every query" in chosen["a"].source


def test_scores_must_match_their_pairs():
    with pytest.raises(ValueError, match="2 pairs but 1 scores"):
        scores_by_key([("q", "a"), ("q", "b")], [1.0])
