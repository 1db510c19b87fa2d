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


def test_ndcg_conventions_are_what_the_methods_section_says():
    """metrics.NDCG_CONVENTION is quoted in every report: linear gain, grades <= 0 gain nothing, the ideal from
    every judgment. Checked against ir-measures itself, so a library change cannot make the text wrong."""
    from runlocalai_bench.quality.metrics import NDCG_CONVENTION

    assert "linear gain" in NDCG_CONVENTION and "0 or below" in NDCG_CONVENTION
    ranking = {"q": [("a", 2.0), ("b", 1.0)]}
    graded = evaluate(ranking, {"q": {"a": 1, "b": 2}}, ["q"], ["nDCG@10"])["nDCG@10"]["q"]
    assert graded == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))  # linear, not 2^g - 1
    negative = evaluate(ranking, {"q": {"a": -1, "b": 1}}, ["q"], ["nDCG@10"])["nDCG@10"]["q"]
    zero = evaluate(ranking, {"q": {"a": 0, "b": 1}}, ["q"], ["nDCG@10"])["nDCG@10"]["q"]
    assert negative == zero == pytest.approx(1 / math.log2(3))
    unretrieved = evaluate(ranking, {"q": {"a": 1, "z": 1}}, ["q"], ["nDCG@10"])["nDCG@10"]["q"]
    assert unretrieved == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_non_finite_scores_fail_with_one_line_and_are_never_ranked():
    import numpy as np

    from runlocalai_bench.quality.finite import NonFiniteScores, check_finite

    with pytest.raises(ValueError, match="cannot rank 1 of 4 documents scored NaN"):
        order([("a", 1.0), ("b", float("nan")), ("c", 3.0), ("d", 2.0)])  # used to put a first
    check_finite(np.array([0.1, -3.0], dtype=np.float32), "m torch-fp16 on cpu", "beir/scifact/test")
    with pytest.raises(NonFiniteScores) as error:
        check_finite(np.array([0.1, np.nan, np.inf, np.nan], dtype=np.float32), "m torch-fp16 on cuda", "beir/scifact/test")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("m torch-fp16 on cuda: 3 of 4 pairs of beir/scifact/test scored non-finite (2 NaN, 1 infinite)")
