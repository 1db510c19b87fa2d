"""Claims and verdicts: every outcome, CPU-class claims, the shipped claims file."""

import pandas as pd

from runlocalai_bench.reporting.claims import CONTRADICTED, HOLDS, NOT_MEASURABLE, NOT_TESTED, Claim, judge, load_claims

from support import REPO


def test_shipped_claims_file_validates():
    claims = load_claims(REPO / "params" / "claims" / "bge-reranker-v2-m3.yaml")
    assert {c.id for c in claims.claims} == {"ndcg-lift", "cpu-throughput", "gpu-throughput", "fp16-file", "fp16-vram"}


def test_verdict_for_each_outcome():
    claim = Claim(id="cpu", text="10-30 pairs/s", table="throughput", column="pairs_per_s", low=10, high=30, unit=" pairs/s",
                  filters={"workload": "candidates"}, device_kind="cpu")
    table = pd.DataFrame({"run_id": ["r1", "r2", "r3"], "workload": "candidates", "variant": "torch-fp32",
                          "device": ["cpu", "cpu", "cuda"], "pairs_per_s": [12.0, 3.0, 400.0], "pairs_per_s_iqr": 0.5})
    rows = judge(claim, {"throughput": table}, {"r1": "random"}, {"r1|cpu": "EPYC"})
    assert [r["verdict"] for r in rows] == [HOLDS, CONTRADICTED] and rows[0]["hardware"] == "EPYC"
    assert "r1" in rows[0]["evidence"] and rows[0]["measured"].startswith("12 pairs/s")
    gpu = claim.model_copy(update={"device_kind": "mps"})
    assert judge(gpu, {"throughput": table}, {}, {})[0]["verdict"] == NOT_TESTED
    lift = Claim(id="lift", text="8-15%", table="summary", column="lift_rel", low=8, high=15, scale=100,
                 filters={"system": "rerank"}, needs_trained_weights=True)
    assert judge(lift, {"summary": pd.DataFrame()}, {"r1": "random"}, {})[0]["verdict"] == NOT_MEASURABLE
    summary = pd.DataFrame({"run_id": ["r"], "system": ["rerank"], "variant": ["torch-fp32"], "device": ["cpu"],
                            "lift_rel": [0.1], "lift_rel_ci_low": [0.05], "lift_rel_ci_high": [0.16]})
    verdict = judge(lift, {"summary": summary}, {"r": "trained"}, {})[0]
    assert verdict["verdict"] == HOLDS and "95% CI 5 to 16" in verdict["measured"]


def test_claims_about_a_class_of_cpu_are_not_tested_by_smaller_machines():
    claim = Claim(id="cpu", text="10-30 pairs/s on a modern CPU", table="throughput", column="pairs_per_s", low=10,
                  high=30, device_kind="cpu", min_cpu_cores=8)
    table = pd.DataFrame({"run_id": ["small", "big"], "device": "cpu", "pairs_per_s": [0.4, 12.0]})
    rows = judge(claim, {"throughput": table}, {}, {}, {"small": 2, "big": 16})
    assert [r["verdict"] for r in rows] == [NOT_TESTED, HOLDS] and "2 cores" in rows[0]["evidence"]
    assert rows[0]["measured"] == "0.4"
