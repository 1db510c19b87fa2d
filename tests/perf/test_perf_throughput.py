"""Throughput rows on a tiny model: columns, units, ordering. Never speed itself."""

import pytest

from runlocalai_bench.models.resolve import resolve
from runlocalai_bench.params import validate_params
from runlocalai_bench.perf.throughput import measure_throughput
from runlocalai_bench.rerankers.registry import get_variant, load_reranker
from runlocalai_bench.results.tables import COLUMNS


@pytest.mark.slow
def test_throughput_rows_on_a_tiny_model(session_cache):
    params = validate_params({"dataset": "fixture:tiny", "run_id": "t", "reranker": {"model": "twin:tiny-bert", "depth": 10,
                              "batch_size": 4, "max_length": 64}, "first_stage": {"depth": 10},
                              "throughput": {"warmup_rounds": 1, "min_seconds": 0, "min_rounds": 3, "max_pairs": 12,
                                             "batch_sizes": [2], "max_lengths": [32, 64]}})
    ref = resolve("twin:tiny-bert", None, session_cache)
    reranker = load_reranker(get_variant("torch-fp32"), "cpu", ref.location, ref, session_cache, 64)
    pairs = [("what is the capital", "a long document about capitals " * (i + 1)) for i in range(20)]
    table = measure_throughput(reranker, pairs, params, "torch-fp32", "cpu")
    assert list(table.columns[:len(COLUMNS["throughput"])]) == COLUMNS["throughput"]
    assert table["workload"].tolist() == ["candidates", "fixed", "fixed"]
    candidates = table.iloc[0]
    assert candidates["n_pairs"] == 12 and 0 < candidates["mean_tokens"] <= 64 and candidates["padding_fraction"] < 1
    fixed = table[table["workload"] == "fixed"]
    assert fixed["max_length"].tolist() == [32, 64] and fixed["mean_tokens"].tolist() == [32.0, 64.0]
    assert (table["latency_p50_ms"] <= table["latency_p99_ms"]).all() and (table["pairs_per_s"] > 0).all()
    assert (table["peak_rss_mb"] > 0).all() and (table["model_bytes"] > 0).all() and table["peak_vram_mb"].isna().all()
    assert (table["mfu"] > 0).all() and (table["achieved_tflops"] < table["peak_tflops"] * 10).all()
    assert (table["flops_per_pair"].iloc[2] > table["flops_per_pair"].iloc[1])
