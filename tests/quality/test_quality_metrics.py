"""Per-query measures: graded nDCG by hand, empty rankings score 0, ties evaluated in our order."""

import math

import pytest

from runlocalai_bench.data.rankings import order
from runlocalai_bench.quality.metrics import evaluate


def test_graded_ndcg_matches_hand_computation():
    qrels = {"q": {"a": 2, "b": 1, "z": 0}}
    ranking = {"q": [("b", 3.0), ("x", 2.0), ("a", 1.0)]}
    # DCG = 1/log2(2) + 2/log2(4) = 2; ideal = 2/log2(2) + 1/log2(3)
    expected = 2.0 / (2.0 + 1.0 / math.log2(3))
    values = evaluate(ranking, qrels, ["q"], ["nDCG@10", "RR@10", "R@2"])
    assert values["nDCG@10"]["q"] == pytest.approx(expected, abs=1e-6)
    assert values["RR@10"]["q"] == pytest.approx(1.0)
    assert values["R@2"]["q"] == pytest.approx(0.5)


def test_query_with_nothing_retrieved_scores_zero_not_dropped():
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    values = evaluate({"q1": [("a", 1.0)]}, qrels, ["q1", "q2"], ["nDCG@10"])
    assert values["nDCG@10"] == {"q1": 1.0, "q2": 0.0}


def test_equal_scores_are_evaluated_in_our_doc_id_order():
    """trec_eval breaks ties by doc id descending; we rank ascending and the evaluation must follow us."""
    qrels = {"q": {"a": 1}}
    ranking = {"q": order([("b", 0.5), ("a", 0.5)])}
    assert ranking["q"][0][0] == "a"
    assert evaluate(ranking, qrels, ["q"], ["RR@10"])["RR@10"]["q"] == 1.0
