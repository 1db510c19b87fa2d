"""Comparison rerankers on the same candidates, and "strict upgrade" judged on their paired differences."""

import pandas as pd
import pytest

from runlocalai_bench.quality.compare import comparisons
from runlocalai_bench.reporting.claims import CONTRADICTED, HOLDS, INCONCLUSIVE, Claim, judge
from runlocalai_bench.reporting.report import load_tables


def upgrade(reranker: str, baseline: str, **evidence) -> Claim:
    """The rule at the smoke bundle's size (a handful of queries on two tiny datasets) unless told otherwise:
    the shipped claims ask for 3 datasets of 50+ queries, which a smoke run never has."""
    return Claim(id="upgrade", text=f"{reranker} is a strict upgrade over {baseline}", group="comparisons",
                 table="comparisons", column="diff", rule="strict_upgrade",
                 filters={"reranker": reranker, "baseline": baseline},
                 **{"min_datasets": 1, "min_queries": 1, **evidence})


@pytest.mark.slow
def test_two_tiny_rerankers_compared_in_one_run(smoke_bundle):
    """The smoke run reranks with twin:tiny-xlmr and, on the same candidates, with twin:tiny-bert and the LLM
    reranker twin:tiny-qwen3: paired rows per dataset and on the macro-average, every query counted once as a
    win, tie or loss; each comparison reranker's torch-bf16 against its own torch-fp32 (kind quantization)."""
    table = pd.read_parquet(smoke_bundle / "tables" / "comparisons.parquet")
    rows = table[table["kind"] == "baseline"]
    assert set(rows["dataset"]) == {"fixture:tiny", "fixture:multilingual", "macro-average"}
    assert (rows["reranker"] == "twin:tiny-xlmr").all()
    assert set(rows["baseline"]) == {"twin:tiny-bert", "twin:tiny-qwen3"}
    import torch

    cpu = rows[rows["device"] == "cpu"]
    assert len(cpu) == 6 and (cpu["variant"] == "torch-fp32").all()  # torch-fp16 on cuda, where there is one
    rows = cpu
    assert (rows["wins"] + rows["ties"] + rows["losses"] == rows["n_queries"]).all()
    for _, by_baseline in rows.groupby("baseline"):
        macro = by_baseline[by_baseline["dataset"] == "macro-average"].iloc[0]
        assert macro["n_queries"] == by_baseline[by_baseline["dataset"] != "macro-average"]["n_queries"].sum()
        assert macro["diff_ci_low"] <= macro["diff"] <= macro["diff_ci_high"]
    # The comparison rerankers' second variant, each against its own torch-fp32 on the same queries.
    own = table[(table["kind"] == "quantization") & (table["reranker"] != "twin:tiny-xlmr") & (table["device"] == "cpu")]
    assert set(zip(own["reranker"], own["variant"], own["baseline_variant"])) == {
        ("twin:tiny-bert", "torch-bf16", "torch-fp32"), ("twin:tiny-qwen3", "torch-bf16", "torch-fp32"),
        ("twin:tiny-qwen3", "gguf-q8_0", "torch-fp32")}  # BERT's GGUF: a recorded skip (no faithful head)
    assert (own["reranker"] == own["baseline"]).all() and len(own) == 9
    runs = pd.read_parquet(smoke_bundle / "tables" / "runs.parquet")
    bert = runs[runs["reranker"] == "twin:tiny-bert"]
    assert "cannot be represented in GGUF" in bert[bert["variant"] == "gguf-q8_0"]["reason"].iloc[0]
    baseline_runs = bert[bert["variant"].isin(["torch-fp32", "torch-fp16"])].set_index("device")
    assert baseline_runs.loc["cpu", "status"] == "ok" and baseline_runs.loc["cuda", "variant"] == "torch-fp16"
    assert baseline_runs.loc["cuda", "status"] == ("ok" if torch.cuda.is_available() else "skipped")
    summary = pd.read_parquet(smoke_bundle / "tables" / "summary.parquet")
    assert {"twin:tiny-xlmr", "twin:tiny-bert", "twin:tiny-qwen3", "oracle"} <= set(summary["reranker"].dropna())
    model = pd.read_parquet(smoke_bundle / "tables" / "model.parquet").drop_duplicates("reranker").set_index("reranker")
    assert model.loc["twin:tiny-qwen3", "family"] == "qwen3-reranker"
    assert model.loc["twin:tiny-bert", "family"] == "cross-encoder"
    assert model["licence"].str.startswith("none (tiny test checkpoint").all()


@pytest.mark.slow
def test_strict_upgrade_flips_when_the_roles_are_swapped(smoke_bundle):
    """Against the oracle (the candidates in their judged order) a random tiny reranker is significantly worse
    on every dataset: "tiny-xlmr over oracle" is contradicted and "oracle over tiny-xlmr" holds, from the same
    rows read the other way round. Between the two tiny rerankers the verdicts mirror each other."""
    tables = load_tables(smoke_bundle)
    weights = {"smoke-a": "trained"}
    assert [v["verdict"] for v in judge(upgrade("twin:tiny-xlmr", "oracle"), tables, weights, {})] == [CONTRADICTED]
    flipped = judge(upgrade("oracle", "twin:tiny-xlmr"), tables, weights, {})
    assert [v["verdict"] for v in flipped] == [HOLDS] and "other way round" in flipped[0]["evidence"]
    # Between the two tiny rerankers, read both ways: the same rows, the difference and its CI negated.
    forward = judge(upgrade("twin:tiny-xlmr", "twin:tiny-bert"), tables, weights, {})
    backward = judge(upgrade("twin:tiny-bert", "twin:tiny-xlmr"), tables, weights, {})
    cpu = lambda verdicts: next(v for v in verdicts if "on cpu" in v["evidence"])  # noqa: E731
    there, back = cpu(forward)["measured"].split(" nDCG@10")[0], cpu(backward)["measured"].split(" nDCG@10")[0]
    assert float(there) == -float(back) and there != back
    # Whatever these random tiny models score, both cannot be a strict upgrade over the other.
    assert not (cpu(forward)["verdict"] == HOLDS and cpu(backward)["verdict"] == HOLDS)
    if cpu(forward)["verdict"] == HOLDS:
        assert cpu(backward)["verdict"] == CONTRADICTED


def _quality(run_id: str, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": run_id, "dataset": d, "system": s, "reranker": r, "variant": v, "device": "cpu",
                          "query_id": q, "measure": "nDCG@10", "value": x} for d, s, r, v, q, x in rows])


def test_a_dataset_significantly_worse_breaks_a_strict_upgrade():
    """Better on the macro-average but clearly worse on one dataset: not a strict upgrade."""
    rows = []
    for i in range(30):
        rows += [("a", "dense", None, None, f"q{i}", 0.5), ("b", "dense", None, None, f"q{i}", 0.5),
                 ("a", "rerank", "main", "torch-fp32", f"q{i}", 0.9), ("a", "rerank", "old", "torch-fp32", f"q{i}", 0.5),
                 ("b", "rerank", "main", "torch-fp32", f"q{i}", 0.45 + 0.001 * (i % 3)),
                 ("b", "rerank", "old", "torch-fp32", f"q{i}", 0.5)]
    table = comparisons(_quality("r", rows), {"r": "main"}, 1000, 0)
    macro = table[(table["kind"] == "baseline") & (table["dataset"] == "macro-average")].iloc[0]
    assert macro["diff_ci_low"] > 0  # better overall ...
    verdict = judge(upgrade("main", "old"), {"comparisons": table}, {"r": "trained"}, {})[0]
    assert verdict["verdict"] == CONTRADICTED
    assert "worse by more than 0.01 on b; significantly worse (Holm-adjusted) on 1 (b)" in verdict["measured"]
    # The shipped evidence rule (3 datasets of 50+ queries) does not change a contradiction: a clear loss is one.
    strict = judge(upgrade("main", "old", min_datasets=3, min_queries=50), {"comparisons": table}, {"r": "trained"}, {})
    assert strict[0]["verdict"] == CONTRADICTED


def test_holm_keeps_chance_findings_across_many_datasets_from_breaking_an_upgrade():
    """Ten datasets, one with p = 0.03 against the reranker: significant alone, not after Holm's adjustment
    (0.03 > 0.05 / 10); at p = 0.001 it stays significant."""
    from runlocalai_bench.reporting.claims import holm_worse

    rows = pd.DataFrame({"dataset": [f"d{i}" for i in range(10)], "diff": [-0.02] + [0.01] * 9,
                         "p_value": [0.03] + [0.5] * 9})
    assert holm_worse(rows) == []
    assert holm_worse(rows.assign(p_value=[0.001] + [0.5] * 9)) == ["d0"]
    assert holm_worse(rows.assign(p_value=[0.5] * 9 + [0.001], diff=[0.01] * 9 + [0.02])) == []  # better, not worse


def test_a_quantization_that_changes_nothing_does_not_trade_quality():
    """The costs_quality rule: a CI of [0, 0] (identical rankings) contradicts "trades quality"; a CI below 0
    holds; one that straddles the margin is inconclusive."""
    claim = Claim(id="q", text="trades quality", group="quantization", table="comparisons", column="diff",
                  rule="costs_quality", filters={"kind": "quantization"})

    def verdict(low, high):
        table = pd.DataFrame([{"run_id": "r", "dataset": "d", "kind": "quantization", "reranker": "m", "variant": "v",
                               "device": "cpu", "baseline": "m", "baseline_variant": "torch-fp32", "measure": "nDCG@10",
                               "n_queries": 50, "mean": 0.5, "baseline_mean": 0.5, "diff": (low + high) / 2,
                               "diff_ci_low": low, "diff_ci_high": high, "p_value": 0.5, "wins": 1, "ties": 48,
                               "losses": 1}])
        return judge(claim, {"comparisons": table}, {"r": "trained"}, {})[0]["verdict"]

    assert verdict(0.0, 0.0) == CONTRADICTED and verdict(-0.002, 0.003) == CONTRADICTED
    assert verdict(0.001, 0.02) == CONTRADICTED
    assert verdict(-0.03, -0.01) == HOLDS
    assert verdict(-0.03, 0.002) == INCONCLUSIVE


@pytest.mark.slow
def test_the_comparison_reranker_is_named_as_such_and_timed_at_its_own_speed(smoke_bundle):
    """The report and its cite block name the reranker under test (not the comparison one, whose stage
    records sort first), and each reranker's predicted time per query uses its own measured rate."""
    report = (smoke_bundle / "report.md").read_text()
    assert "reranker twin:tiny-xlmr" in report and "Reranker benchmark of twin:tiny-xlmr" in report
    assert "compared on the same candidates with twin:tiny-bert" in report
    depth = pd.read_parquet(smoke_bundle / "tables" / "depth.parquet")
    throughput = pd.read_parquet(smoke_bundle / "tables" / "throughput.parquet")
    for reranker in ("twin:tiny-xlmr", "twin:tiny-bert"):
        row = depth[(depth["reranker"] == reranker) & (depth["variant"] == "torch-fp32") & (depth["device"] == "cpu")
                    & (depth["dataset"] == "fixture:tiny")].sort_values("depth").iloc[-1]
        rate = throughput[(throughput["reranker"] == reranker) & (throughput["variant"] == "torch-fp32")
                          & (throughput["workload"] == "candidates") & (throughput["dataset"] == "fixture:tiny")]
        assert row["ms_per_query"] == pytest.approx(row["pairs_per_query"] / float(rate["pairs_per_s"].iloc[0]) * 1e3)
