"""Full smoke bundle (first stage, rerank, report), figure determinism, claims verdicts, merging bundles."""

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from runlocalai_bench.claims import CONTRADICTED, HOLDS, NOT_MEASURABLE, NOT_TESTED, Claim, judge, load_claims
from runlocalai_bench.cli import main
from runlocalai_bench.figures import all_figures
from runlocalai_bench.merge import merge_bundles
from runlocalai_bench.report import load_tables
from runlocalai_bench.results import BundleError

REPO = Path(__file__).resolve().parent.parent
FIGURES = {"ndcg_by_variant", "lift_distribution", "throughput_by_variant", "quality_vs_speed", "peak_memory", "mfu_by_variant"}


@pytest.fixture(scope="module")
def smoke_bundle(tmp_path_factory, session_cache) -> Path:
    out = tmp_path_factory.mktemp("smoke") / "bundle"
    code = main(["run", str(REPO / "params" / "smoke.yaml"), "--out", str(out), "--set", "run_id=smoke-a",
                 "--set", f"cache_dir={session_cache}", "--set", "reranker.variants=[torch-fp32,torch-bf16,onnx-int8,gguf-q4_k_m]",
                 "--set", "reranker.devices=[cpu,cuda]", "--set", f"claims={REPO / 'params/claims/bge-reranker-v2-m3.yaml'}"])
    assert code == 0
    return out


@pytest.mark.slow
def test_smoke_bundle_is_complete(smoke_bundle):
    for name in ("params.yaml", "environment.json", "bundle.json", "report.md", "report.html", "runs/first_stage.trec",
                 "runs/rerank--torch-fp32--cpu.trec", "notebooks/03_report.ipynb"):
        assert (smoke_bundle / name).is_file(), name
    for table in ("quality", "summary", "throughput", "drift", "runs"):
        assert (smoke_bundle / "tables" / f"{table}.parquet").is_file() and (smoke_bundle / "tables" / f"{table}.csv").is_file()
    assert {p.stem for p in (smoke_bundle / "figures").glob("*.svg")} == FIGURES
    assert {p.stem for p in (smoke_bundle / "figures").glob("*.png")} == FIGURES
    runs = pd.read_parquet(smoke_bundle / "tables" / "runs.parquet")
    skipped = runs[runs["status"] == "skipped"]
    cuda_expected = 0 if __import__("torch").cuda.is_available() else 3
    assert len(skipped) >= cuda_expected and skipped["reason"].str.len().gt(0).all()
    summary = pd.read_parquet(smoke_bundle / "tables" / "summary.parquet")
    reranked = summary[(summary["system"] == "rerank") & (summary["measure"] == "nDCG@10")]
    gguf = {"gguf-q4_k_m"} if importlib.util.find_spec("llama_cpp") else set()  # else a recorded skip
    assert set(reranked["variant"]) == {"torch-fp32", "torch-bf16", "onnx-int8"} | gguf
    assert reranked[["lift_abs", "lift_ci_low", "lift_ci_high", "p_value", "wins", "ties", "losses"]].notna().all().all()
    drift = pd.read_parquet(smoke_bundle / "tables" / "drift.parquet")
    assert set(drift["variant"]) == {"torch-bf16", "onnx-int8"} | gguf and (drift["reference"] == "torch-fp32@cpu").all()
    if not gguf:
        assert runs[runs["variant"] == "gguf-q4_k_m"]["reason"].str.contains("gguf' extra").all()
    report = (smoke_bundle / "report.md").read_text()
    assert "## Claims verdict" in report and "Test model" in report and "skipped" in report
    assert "not tested on this hardware" in report  # no claim is about a tiny test model
    html = (smoke_bundle / "report.html").read_text()
    assert "<table>" in html and "figures/ndcg_by_variant.svg" in html


@pytest.mark.slow
def test_figures_are_byte_identical_for_the_same_tables(smoke_bundle, tmp_path):
    tables = load_tables(smoke_bundle)
    first = all_figures(tables, tmp_path / "a", "footer", 1024.0)
    all_figures(tables, tmp_path / "b", "footer", 1024.0)
    for figure in first:
        assert (tmp_path / "a" / f"{figure.id}.svg").read_bytes() == (tmp_path / "b" / f"{figure.id}.svg").read_bytes()


@pytest.mark.slow
def test_merge_pools_bundles_and_refuses_bad_ones(smoke_bundle, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(smoke_bundle, other)
    info = json.loads((other / "bundle.json").read_text())
    (other / "bundle.json").write_text(json.dumps({**info, "run_id": "smoke-b"}))
    for table in ("quality", "summary", "throughput", "drift", "runs"):
        frame = pd.read_parquet(other / "tables" / f"{table}.parquet").assign(run_id="smoke-b")
        frame.to_parquet(other / "tables" / f"{table}.parquet", index=False)
    merged = merge_bundles([smoke_bundle, other], tmp_path / "merged")
    throughput = pd.read_parquet(merged / "tables" / "throughput.parquet")
    assert set(throughput["run_id"]) == {"smoke-a", "smoke-b"}
    assert {p.stem for p in (merged / "environments").glob("*.json")} == {"smoke-a", "smoke-b"}
    assert (merged / "report.html").is_file()
    with pytest.raises(BundleError, match="same run twice"):
        merge_bundles([smoke_bundle, smoke_bundle], tmp_path / "twice")
    (other / "bundle.json").write_text(json.dumps({**info, "run_id": "smoke-c", "schema_version": 99}))
    assert main(["merge", str(smoke_bundle), str(other), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))


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
