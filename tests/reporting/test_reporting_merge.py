"""Pooling bundles from several machines; refusing the same run twice and other schema versions."""

import json
import shutil

import pandas as pd
import pytest

from runlocalai_bench.cli import main
from runlocalai_bench.reporting.merge import merge_bundles
from runlocalai_bench.results.tables import BundleError

from support import REPO


@pytest.mark.slow
def test_merge_pools_bundles_and_refuses_bad_ones(smoke_bundle, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(smoke_bundle, other)
    info = json.loads((other / "bundle.json").read_text())
    (other / "bundle.json").write_text(json.dumps({**info, "run_id": "smoke-b"}))
    for table in ("quality", "summary", "throughput", "drift", "runs"):
        frame = pd.read_parquet(other / "tables" / f"{table}.parquet").assign(run_id="smoke-b")
        frame.to_parquet(other / "tables" / f"{table}.parquet", index=False)
    (other / "budget.json").write_text(json.dumps({"budget_s": 3600}))  # a budgeted run's allocation
    (other / "nodes").mkdir()
    (other / "nodes" / "first_stage.json").write_text(json.dumps({"node_id": "n1"}))  # a Ray run's node record
    merged = merge_bundles([smoke_bundle, other], tmp_path / "merged")
    assert json.loads((merged / "budgets" / "smoke-b.json").read_text()) == {"budget_s": 3600}
    assert [p.name for p in (merged / "nodes").iterdir()] == ["smoke-b--first_stage.json"]
    assert not (merged / "budgets" / "smoke-a.json").exists()  # an unbudgeted run has none
    throughput = pd.read_parquet(merged / "tables" / "throughput.parquet")
    assert set(throughput["run_id"]) == {"smoke-a", "smoke-b"}
    assert {p.stem for p in (merged / "environments").glob("*.json")} == {"smoke-a", "smoke-b"}
    assert (merged / "report.html").is_file()
    with pytest.raises(BundleError, match="same run twice"):
        merge_bundles([smoke_bundle, smoke_bundle], tmp_path / "twice")
    (other / "bundle.json").write_text(json.dumps({**info, "run_id": "smoke-c", "schema_version": 99}))
    assert main(["merge", str(smoke_bundle), str(other), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))


@pytest.mark.slow
def test_a_pooled_report_describes_every_run(smoke_bundle, tmp_path, session_cache):
    """The pooled report once described every run as the first one was (trained weights, dense top 100, '?'
    queries). Each pooled run now gets its own line, and the figures' footers name them all."""
    twin = tmp_path / "twin"
    assert main(["run", str(REPO / "params" / "smoke.yaml"), "--out", str(twin), "--set", "run_id=twin-bm25",
                 "--set", f"cache_dir={session_cache}", "--set", "first_stage.kind=bm25", "--set", "first_stage.depth=16",
                 "--set", "reranker.depth=8", "--set", "reranker.weights=random", "--set", "queries.n=8",
                 "--set", "reranker.variants=[torch-fp32]", "--set", "reranker.baselines=[]",
                 "--set", "stages=[first_stage, rerank]"]) == 0
    merged = merge_bundles([smoke_bundle, twin], tmp_path / "pooled")
    report = (merged / "report.md").read_text()
    what = report[report.index("## What was run"):report.index("##", report.index("## What was run") + 3)]
    lines = [line for line in what.splitlines() if line.startswith("- ")]
    assert len(lines) == 2
    smoke_line = next(line for line in lines if "smoke-a" in line)
    twin_line = next(line for line in lines if "twin-bm25" in line)
    assert "fixture:tiny (13 queries), fixture:multilingual (12 queries)" in smoke_line and "dense" in smoke_line and "top 10" in smoke_line and "tiny random test model" in smoke_line
    assert "(8 queries)" in twin_line and "bm25 top 16" in twin_line and "top 8" in twin_line
    svg = (merged / "figures" / "throughput_by_variant.svg").read_text()
    assert "smoke-a" in svg and "twin-bm25" in svg
    assert "stand-in" not in smoke_line  # tiny test models' tokenizer is their own
    # Whose parameters the pooled params.yaml are, and which code derived the pooled verdicts and figures.
    assert (merged / "params.yaml").read_text().startswith("# A pooled bundle (smoke-a, twin-bm25).")
    manifest = json.loads((merged / "bundle.json").read_text())
    built = json.loads((merged / "report.json").read_text())
    assert built["commit"] and set(manifest["merged_by"]) == {"commit", "dirty"}
    assert built["tables_digest"] in (merged / "report.md").read_text()

    # A pooled bundle is an input too: one of its runs replaced by its rerun (here the same bundle again).
    with pytest.raises(BundleError, match="same run twice"):
        merge_bundles([merged, twin], tmp_path / "twice")
    with pytest.raises(BundleError, match="no such run"):
        merge_bundles([merged, twin], tmp_path / "unknown", drop=["twin-cpu"])
    replaced = merge_bundles([merged, twin], tmp_path / "replaced", drop=["twin-bm25"])
    assert json.loads((replaced / "bundle.json").read_text())["merged_from"] == ["smoke-a", "twin-bm25"]
    for table in ("throughput", "quality", "runs"):
        before = pd.read_parquet(merged / "tables" / f"{table}.parquet")
        after = pd.read_parquet(replaced / "tables" / f"{table}.parquet")
        assert len(after) == len(before) and set(after["run_id"]) == set(before["run_id"])
    assert {p.stem for d in ("environments", "params", "provenance") for p in (replaced / d).iterdir()} == {
        "smoke-a", "twin-bm25"}


def test_a_length_sweep_and_a_stand_in_tokenizer_are_said_in_the_run_line():
    from runlocalai_bench.reporting.provenance import RunDescription

    sweep = RunDescription(run_id="length", datasets=["fixture:tiny"], split="test", n_queries=4,
                           first_stage="bm25 top 4", reranker="X shape twin (random weights, seed 0)", weights="random",
                           rerank_depth=4, variants=["torch-fp32"], devices=["cpu"], hardware=["CPU"],
                           tokenizer="xlmr-unigram:pkg:m", fixed_lengths=[256, 8192])
    assert sweep.measured() == "X shape twin (random weights, seed 0) timed on one pair of 256, 8,192 tokens (a length sweep)"
    assert "tokenized with the stand-in xlmr-unigram:pkg:m" in sweep.line()
