"""Comparison rerankers on the same candidates, and "strict upgrade" judged on their paired differences."""

import pandas as pd
import pytest

from runlocalai_bench.quality.compare import comparisons
from runlocalai_bench.reporting.claims import CONTRADICTED, HOLDS, INCONCLUSIVE, Claim, judge
from runlocalai_bench.reporting.report import load_tables


def upgrade(reranker: str, baseline: str) -> Claim:
    return Claim(id="upgrade", text=f"{reranker} is a strict upgrade over {baseline}", group="comparisons",
                 table="comparisons", column="diff", rule="strict_upgrade",
                 filters={"reranker": reranker, "baseline": baseline})


@pytest.mark.slow
def test_two_tiny_rerankers_compared_in_one_run(smoke_bundle):
    """The smoke run reranks with twin:tiny-xlmr and, on the same candidates, with twin:tiny-bert: paired rows
    per dataset and on the macro-average, every query counted once as a win, tie or loss."""
    table = pd.read_parquet(smoke_bundle / "tables" / "comparisons.parquet")
    rows = table[table["kind"] == "baseline"]
    assert set(rows["dataset"]) == {"fixture:tiny", "fixture:multilingual", "macro-average"}
    assert (rows["reranker"] == "twin:tiny-xlmr").all() and (rows["baseline"] == "twin:tiny-bert").all()
    assert (rows["variant"] == "torch-fp32").all() and (rows["device"] == "cpu").all()
    assert (rows["wins"] + rows["ties"] + rows["losses"] == rows["n_queries"]).all()
    macro = rows[rows["dataset"] == "macro-average"].iloc[0]
    assert macro["n_queries"] == rows[rows["dataset"] != "macro-average"]["n_queries"].sum()
    assert macro["diff_ci_low"] <= macro["diff"] <= macro["diff_ci_high"]
    runs = pd.read_parquet(smoke_bundle / "tables" / "runs.parquet")
    baseline_runs = runs[runs["reranker"] == "twin:tiny-bert"]
    assert set(baseline_runs["status"]) == {"ok", "skipped"}  # cpu measured; cuda (torch-fp16) skipped here
    summary = pd.read_parquet(smoke_bundle / "tables" / "summary.parquet")
    assert {"twin:tiny-xlmr", "twin:tiny-bert", "oracle"} <= set(summary["reranker"].dropna())


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
    forward = judge(upgrade("twin:tiny-xlmr", "twin:tiny-bert"), tables, weights, {})[0]["verdict"]
    backward = judge(upgrade("twin:tiny-bert", "twin:tiny-xlmr"), tables, weights, {})[0]["verdict"]
    assert {forward, backward} in ({HOLDS, CONTRADICTED}, {INCONCLUSIVE}, {CONTRADICTED})


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
    assert verdict["verdict"] == CONTRADICTED and "significantly worse on 1 of 2 datasets (b)" in verdict["measured"]
