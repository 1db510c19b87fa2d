"""The headline table: its rows, levels, order and the numbers across datasets, from small hand-made tables."""

import pandas as pd
import pytest

from runlocalai_bench.reporting.headline import headline_table, summary_sentences
from runlocalai_bench.results.tables import COLUMNS

CPU = {"label": "Test CPU (2 cores)", "cores": 2}


def tables(datasets: list[str], rates: dict[str, float]) -> dict[str, pd.DataFrame]:
    """One run: a first stage, the reranker under test in two variants, a comparison reranker, the oracle."""
    summary, throughput = [], []
    levels = datasets + (["macro-average"] if len(datasets) > 1 else [])
    for dataset in levels:
        for system, reranker, variant, mean in (("dense", None, None, 0.40), ("oracle", "oracle", None, 0.90),
                                                ("rerank", "main", "torch-fp32", 0.50), ("rerank", "main", "onnx-int8", 0.49),
                                                ("rerank", "old", "torch-fp32", 0.45)):
            summary.append({"run_id": "r", "dataset": dataset, "system": system, "reranker": reranker, "variant": variant,
                            "device": "cpu" if variant else None, "measure": "nDCG@10", "n_queries": 50, "mean": mean,
                            "ci_low": mean - 0.05, "ci_high": mean + 0.05, "lift_abs": mean - 0.4,
                            "lift_rel": (mean - 0.4) / 0.4, "first_stage": "dense:x", "first_stage_depth": 100,
                            "rerank_depth": 100})
    for dataset in datasets:
        for reranker, variant in (("main", "torch-fp32"), ("main", "onnx-int8"), ("old", "torch-fp32")):
            rate = rates[dataset] * (2 if variant == "onnx-int8" else 1)
            throughput.append({"run_id": "r", "reranker": reranker, "variant": variant, "device": "cpu",
                               "workload": "candidates", "dataset": dataset, "n_pairs": 100, "pairs_per_s": rate,
                               "peak_rss_mb": 1000.0, "peak_vram_mb": None, "model_bytes": 1e9, "file_bytes": 2e9,
                               "mfu": 0.1, "executed_precision": "fp32"})
    runs = pd.DataFrame([{"run_id": "r", "stage": "rerank", "reranker": r, "variant": v, "device": d, "status": s,
                          "reason": why} for r, v, d, s, why in (("main", "torch-fp32", "cpu", "ok", None),
                                                                 ("main", "onnx-int8", "cpu", "ok", None),
                                                                 ("main", "gguf-q4_k_m", "cpu", "skipped", "no llama_cpp"),
                                                                 ("old", "torch-fp32", "cpu", "ok", None))])
    return {"summary": pd.DataFrame(summary), "throughput": pd.DataFrame(throughput), "runs": runs,
            "drift": pd.DataFrame(columns=COLUMNS["drift"]), "comparisons": pd.DataFrame(columns=COLUMNS["comparisons"])}


def test_a_single_dataset_run_has_no_macro_average_row():
    rows = headline_table(tables(["a"], {"a": 10.0}), {"r": ["a"]}, {"r|cpu": CPU}, {"r": "trained"}, {"r": "main"})
    assert set(rows["dataset"]) == {"a"} and rows["level"].all()


def test_rows_order_rates_across_datasets_and_roles():
    data = tables(["a", "b"], {"a": 10.0, "b": 30.0})
    rows = headline_table(data, {"r": ["a", "b"]}, {"r|cpu": CPU}, {"r": "trained"}, {"r": "main"})
    level = rows[rows["level"]]
    assert list(level["system"]) == ["rerank", "rerank", "rerank", "rerank", "first stage", "oracle"]
    assert list(level["variant"])[:3] == ["torch-fp32", "onnx-int8", "torch-fp32"]  # by quality
    assert list(level["comparison"])[:3] == [False, False, True] and level.iloc[3]["status"] == "skipped"
    fp32 = level[(level["variant"] == "torch-fp32") & ~level["comparison"]].iloc[0]
    # 100 pairs at 10/s and 100 at 30/s: 200 pairs in 13.3 s = 15 pairs/s, not the mean of rates (20)
    assert fp32["pairs_per_s"] == pytest.approx(15.0)
    assert fp32["hardware"] == CPU["label"] and fp32["peak_memory_bytes"] == 1000.0 * 2**20
    text = " ".join(summary_sentences(rows))
    assert "Best quality: torch-fp32" in text and "Fastest: onnx-int8" in text
    assert "gguf-q4_k_m on cpu skipped (no llama_cpp)" in text and "old" not in text.split("Not measured")[0]


def test_a_run_timed_on_fixed_shapes_only_gets_its_rows_through_parquet(tmp_path):
    """The length sweep times no candidates and no query workload. Read back from parquet (pyarrow-backed
    strings under pandas 3), merging its two empty workload groups once crashed the report."""
    data = tables(["a"], {"a": 10.0})
    data["throughput"] = data["throughput"].assign(workload="fixed", max_length=8192)
    for name in ("summary", "throughput", "drift"):
        data[name].to_parquet(tmp_path / f"{name}.parquet", index=False)
        data[name] = pd.read_parquet(tmp_path / f"{name}.parquet")
    rows = headline_table(data, {"r": ["a"]}, {"r|cpu": CPU}, {"r": "trained"}, {"r": "main"})
    fp32 = rows[(rows["variant"] == "torch-fp32") & ~rows["comparison"].astype(bool)].iloc[0]
    assert pd.isna(fp32["pairs_per_s"])  # no end-to-end rate from fixed shapes
    assert fp32["peak_memory_bytes"] == 1000.0 * 2**20 and fp32["file_bytes"] == 2e9


def test_the_figures_pool_rates_across_datasets_as_the_headline_does():
    """quality_vs_speed and throughput_by_variant plot the macro-average row's pairs/s, not a mean of rates."""
    from runlocalai_bench.reporting.figures import _pooled_rates

    data = tables(["a", "b"], {"a": 10.0, "b": 30.0})
    rows = headline_table(data, {"r": ["a", "b"]}, {"r|cpu": CPU}, {"r": "trained"}, {"r": "main"})
    macro = rows[rows["level"] & (rows["variant"] == "onnx-int8")].iloc[0]
    plotted = _pooled_rates(data["throughput"]).set_index(["reranker", "variant"]).loc[("main", "onnx-int8")]
    assert plotted["pairs_per_s"] == pytest.approx(macro["pairs_per_s"]) == pytest.approx(30.0)
    assert (plotted["low"], plotted["high"]) == (20.0, 60.0)


def test_a_faster_comparison_reranker_is_said_in_the_summary():
    data = tables(["a"], {"a": 10.0})
    old = data["throughput"]["reranker"] == "old"
    data["throughput"].loc[old, "pairs_per_s"] *= 10  # the older reranker is faster than every variant
    rows = headline_table(data, {"r": ["a"]}, {"r|cpu": CPU}, {"r": "trained"}, {"r": "main"})
    text = " ".join(summary_sentences(rows))
    assert "Fastest: onnx-int8 of main on" in text and "Comparison reranker old (torch-fp32) is faster: 100 pairs/s" in text


def test_under_a_budget_the_best_quality_comes_from_the_largest_sample_and_the_figure_says_so(tmp_path):
    """A time budget gives executions nested samples of different sizes: a variant's mean over 20 queries does not
    outrank torch-fp32's over 50, and the by-variant figure does not claim its lines share their queries."""
    from runlocalai_bench.reporting.figures import ndcg_by_variant

    data = tables(["a"], {"a": 10.0})
    summary = data["summary"]
    int8 = summary["variant"] == "onnx-int8"
    summary.loc[int8, ["mean", "ci_low", "ci_high", "n_queries"]] = [0.60, 0.52, 0.68, 20]  # higher, on a smaller sample
    rows = headline_table(data, {"r": ["a"]}, {"r|cpu": CPU}, {"r": "trained"}, {"r": "main"})
    text = " ".join(summary_sentences(rows))
    assert "Best quality: torch-fp32 of main" in text
    assert "among the executions that evaluated all 50 queries; 1 evaluated a smaller sample" in text
    figure = ndcg_by_variant(summary, tmp_path, "footer")
    assert "not on the same queries" in figure.caption and "tables/comparisons" in figure.caption
    summary.loc[int8, "n_queries"] = 50  # the same sample again: the plain caption, the plain best
    assert "the same queries of the same run" in ndcg_by_variant(summary, tmp_path, "footer").caption
    rows = headline_table(data, {"r": ["a"]}, {"r|cpu": CPU}, {"r": "trained"}, {"r": "main"})
    assert "Best quality: onnx-int8 of main" in " ".join(summary_sentences(rows))
