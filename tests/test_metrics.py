import math

import numpy as np
import pytest

from runlocalai_bench.metrics import bootstrap_mean, evaluate, paired_comparison
from runlocalai_bench.runs import order, read_trec, write_trec


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


def test_trec_round_trip(tmp_path):
    ranking = {"q2": [("d9", 1.5), ("d1", -0.25)], "q1": [("d3", 2.0)]}
    write_trec(tmp_path / "run.trec", ranking, tag="t")
    assert read_trec(tmp_path / "run.trec") == ranking
    assert (tmp_path / "run.trec").read_text().splitlines()[0] == "q1 Q0 d3 1 2 t"


def test_bootstrap_is_reproducible_for_a_seed():
    values = np.random.default_rng(0).random(200)
    assert bootstrap_mean(values, 2000, seed=7) == bootstrap_mean(values, 2000, seed=7)
    assert bootstrap_mean(values, 2000, seed=7) != bootstrap_mean(values, 2000, seed=8)
    interval = bootstrap_mean(values, 2000, seed=7)
    assert interval.low < interval.estimate < interval.high


def test_paired_comparison_detects_a_consistent_lift():
    rng = np.random.default_rng(1)
    base = rng.random(100) * 0.5
    treated = base + 0.1 + rng.normal(0, 0.02, 100)
    result = paired_comparison(treated, base, samples=2000, seed=0)
    assert result.lift_abs.low > 0.05 and result.p_value < 0.01 and result.wins > 90
    assert result.lift_rel.estimate == pytest.approx((treated - base).mean() / base.mean())
    assert result.lift_rel.low < result.lift_rel.estimate < result.lift_rel.high
    assert paired_comparison(treated, base, 2000, 0) == result


def test_paired_comparison_of_identical_systems():
    values = np.linspace(0, 1, 20)
    result = paired_comparison(values, values, samples=500, seed=0)
    assert result.ties == 20 and result.p_value == 1.0 and result.lift_abs.estimate == 0.0
    with pytest.raises(ValueError, match="same length"):
        paired_comparison(values, values[:5], 10, 0)
