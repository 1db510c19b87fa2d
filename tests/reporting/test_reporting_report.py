"""The smoke bundle's report and figures: complete, with skips and verdicts, byte-identical SVGs."""

import importlib.util

import pandas as pd
import pytest

from runlocalai_bench.reporting.figures import all_figures
from runlocalai_bench.reporting.report import load_tables


FIGURES = {"ndcg_by_variant", "lift_distribution", "throughput_by_variant", "quality_vs_speed", "peak_memory", "mfu_by_variant"}


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
