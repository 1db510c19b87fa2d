"""The timing harness's logic on a tiny model: rows, units, ordering, warm-up; never speed itself."""

import pandas as pd
import pytest

from runlocalai_bench.backends import load_reranker
from runlocalai_bench.measure import measure_throughput
from runlocalai_bench.models import resolve
from runlocalai_bench.params import validate_params
from runlocalai_bench.results import COLUMNS
from runlocalai_bench.roofline import flops_per_pair, memory_estimate_mb, model_shape
from runlocalai_bench.throughput import run_rounds, summarize_rounds
from runlocalai_bench.twin import KNOWN_CONFIGS


def test_rounds_respect_minimums_and_do_not_count_warmup():
    calls = []

    def step():
        calls.append(1)
        return 4, [0.001, 0.002]

    rounds = run_rounds(step, warmup_rounds=3, min_seconds=0.0, min_rounds=5)
    assert len(calls) == 8 and len(rounds.pairs_per_s) == 5 and rounds.pairs_total == 20
    stats = summarize_rounds(rounds)
    assert stats["latency_p50_ms"] <= stats["latency_p90_ms"] <= stats["latency_p99_ms"]
    assert stats["pairs_per_s_iqr"] >= 0 and stats["rounds"] == 5


def test_flops_and_memory_model_of_bge_reranker_v2_m3():
    from transformers import XLMRobertaConfig

    config = dict(KNOWN_CONFIGS["BAAI/bge-reranker-v2-m3"])
    config.pop("model_type")
    shape = model_shape(XLMRobertaConfig(**config))
    total = shape["non_embedding_params"] + shape["embedding_params"]
    assert 560e6 < total < 575e6  # the published ~568M parameters
    assert flops_per_pair(shape, 256) == pytest.approx(2 * shape["non_embedding_params"] * 256 + 4 * 24 * 256**2 * 1024)
    fp16 = memory_estimate_mb(shape, "fp16", 1, 512)
    assert 1000 < fp16 < memory_estimate_mb(shape, "fp32", 1, 512) < memory_estimate_mb(shape, "fp32", 16, 512)


@pytest.mark.slow
def test_throughput_rows_on_a_tiny_model(session_cache):
    params = validate_params({"dataset": "fixture:tiny", "run_id": "t", "reranker": {"model": "twin:tiny-bert", "depth": 10,
                              "batch_size": 4, "max_length": 64}, "first_stage": {"depth": 10},
                              "throughput": {"warmup_rounds": 1, "min_seconds": 0, "min_rounds": 3, "max_pairs": 12,
                                             "batch_sizes": [2], "max_lengths": [32, 64]}})
    ref = resolve("twin:tiny-bert", None, session_cache)
    from runlocalai_bench.variants import get_variant

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


def test_rows_of_a_run_share_the_best_observed_peak():
    from runlocalai_bench.aggregate import common_peaks

    table = pd.DataFrame({"run_id": "r", "device": "cpu", "compute_precision": ["fp32", "fp32", "int8"],
                          "peak_tflops": [0.08, 0.12, 0.2], "achieved_tflops": [0.09, 0.10, 0.1], "mfu": 0.0})
    out = common_peaks(table)
    assert out["peak_tflops"].tolist() == [0.12, 0.12, 0.2]
    assert out["mfu"].round(3).tolist() == [0.75, 0.833, 0.5]


def test_gguf_memory_estimate_counts_the_packed_micro_batch():
    """llama.cpp attends over all of a call's tokens at once: 8 pairs x 512 tokens cost one 4096 x 4096
    score buffer per head, 8x the eight 512 x 512 buffers of a padded torch batch."""
    from types import SimpleNamespace

    from runlocalai_bench.measure import estimate_shape
    from runlocalai_bench.twin import KNOWN_CONFIGS
    from runlocalai_bench.variants import get_variant
    from transformers import XLMRobertaConfig

    shape = model_shape(XLMRobertaConfig(**{k: v for k, v in KNOWN_CONFIGS["BAAI/bge-reranker-v2-m3"].items()
                                            if k != "model_type"}))
    gguf, torch = (SimpleNamespace(variant=get_variant(n)) for n in ("gguf-q4_k_m", "torch-fp32"))
    assert estimate_shape(gguf, 8, 512) == (1, 4096) and estimate_shape(torch, 8, 512) == (8, 512)
    weights = memory_estimate_mb(shape, "q4_k_m", 1, 1)
    packed = memory_estimate_mb(shape, "q4_k_m", *estimate_shape(gguf, 8, 512)) - weights
    padded = memory_estimate_mb(shape, "q4_k_m", *estimate_shape(torch, 8, 512)) - weights
    assert packed > 5 * padded and 1500 < packed < 5000  # measured: peak RSS 1.2 GB -> 4.8 GB (1 -> 8 pairs)
