"""FLOP and memory models of bge-reranker-v2-m3, and the common peak an MFU is judged against."""

import pandas as pd
import pytest

from runlocalai_bench.models.twins import KNOWN_CONFIGS
from runlocalai_bench.perf.roofline import common_peaks, flops_per_pair, memory_estimate_mb, model_shape
from runlocalai_bench.rerankers.backends.gguf.llamacpp import LlamaCppReranker
from runlocalai_bench.rerankers.backends.torch_backend import TorchReranker
from runlocalai_bench.rerankers.registry import get_variant


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


def test_rows_of_a_run_share_the_best_observed_peak():
    table = pd.DataFrame({"run_id": "r", "device": "cpu", "compute_precision": ["fp32", "fp32", "int8"],
                          "peak_tflops": [0.08, 0.12, 0.2], "achieved_tflops": [0.09, 0.10, 0.1], "mfu": 0.0})
    out = common_peaks(table)
    assert out["peak_tflops"].tolist() == [0.12, 0.12, 0.2]
    assert out["mfu"].round(3).tolist() == [0.75, 0.833, 0.5]


def test_gguf_memory_estimate_counts_the_packed_micro_batch():
    """llama.cpp attends over all of a call's tokens at once: 8 pairs x 512 tokens cost one 4096 x 4096
    score buffer per head, 8x the eight 512 x 512 buffers of a padded torch batch."""
    from transformers import XLMRobertaConfig

    shape = model_shape(XLMRobertaConfig(**{k: v for k, v in KNOWN_CONFIGS["BAAI/bge-reranker-v2-m3"].items()
                                            if k != "model_type"}))
    gguf = LlamaCppReranker(variant=get_variant("gguf-q4_k_m"), device="cpu", weight_files=[], executed_precision="Q4_K",
                            config=None, threads=1)
    torch = TorchReranker(variant=get_variant("torch-fp32"), device="cpu", weight_files=[], executed_precision="fp32",
                          config=None, cross_encoder=None)
    assert gguf.activation_shape(8, 512) == (1, 4096) and torch.activation_shape(8, 512) == (8, 512)
    assert gguf.weights_format() == "q4_k_m" and gguf.compute_precision() == "int8"
    weights = memory_estimate_mb(shape, "q4_k_m", 1, 1)
    packed = memory_estimate_mb(shape, "q4_k_m", *gguf.activation_shape(8, 512)) - weights
    padded = memory_estimate_mb(shape, "q4_k_m", *torch.activation_shape(8, 512)) - weights
    assert packed > 5 * padded and 1500 < packed < 5000  # measured: peak RSS 1.2 GB -> 4.8 GB (1 -> 8 pairs)
