"""FLOP and memory models of bge-reranker-v2-m3 (the shape twin's config is the real one)."""

import pytest
from transformers import XLMRobertaConfig

from runlocalai_bench.models.twins import KNOWN_CONFIGS
from runlocalai_bench.perf.flops import flops_per_pair, memory_estimate_mb, model_shape, weight_bytes
from runlocalai_bench.rerankers.backends.gguf.llamacpp import LlamaCppReranker
from runlocalai_bench.rerankers.backends.torch_backend import TorchReranker
from runlocalai_bench.rerankers.registry import get_variant


@pytest.fixture(scope="module")
def shape():
    return model_shape(XLMRobertaConfig(**{k: v for k, v in KNOWN_CONFIGS["BAAI/bge-reranker-v2-m3"].items()
                                           if k != "model_type"}))


def test_parameter_count_equals_the_real_model(shape):
    """Counted from the config, the same total torch reports for the model built from it (568M)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    config = XLMRobertaConfig(**{k: v for k, v in KNOWN_CONFIGS["BAAI/bge-reranker-v2-m3"].items() if k != "model_type"})
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    assert shape["non_embedding_params"] + shape["embedding_params"] == sum(p.numel() for p in model.parameters())
    assert 560e6 < shape["non_embedding_params"] + shape["embedding_params"] < 575e6


def test_flops_count_the_head_once_and_attention_by_the_mean_of_squares(shape):
    tokens = 256
    expected = 2 * shape["encoder_params"] * tokens + 2 * shape["head_params"] + 4 * 24 * 1024 * tokens ** 2
    assert flops_per_pair(shape, tokens) == pytest.approx(expected)
    # Two pairs of 100 and 300 tokens: mean 200, but attention costs the mean of T^2 (50,000), not 200^2.
    mixed = flops_per_pair(shape, 200, (100 ** 2 + 300 ** 2) / 2)
    assert mixed == pytest.approx((flops_per_pair(shape, 100) + flops_per_pair(shape, 300)) / 2)
    assert mixed > flops_per_pair(shape, 200)


def test_int8_keeps_its_embedding_tables_in_fp32(shape):
    """Dynamic int8 (torchao, ONNX Runtime, nncf) quantizes the matrices, not the 250k x 1024 token table."""
    int8 = weight_bytes(shape, "int8")
    assert int8 == shape["non_embedding_params"] + 4 * shape["embedding_params"]
    assert int8 > 0.5 * weight_bytes(shape, "fp32")  # the embeddings are almost half of the model
    fp16 = memory_estimate_mb(shape, "fp16", 1, 512)
    assert 1000 < fp16 < memory_estimate_mb(shape, "fp32", 1, 512) < memory_estimate_mb(shape, "fp32", 16, 512)


def test_gguf_memory_estimate_counts_the_packed_micro_batch(shape):
    """llama.cpp attends over all of a call's tokens at once: 8 pairs x 512 tokens cost one 4096 x 4096
    score buffer per head, 8x the eight 512 x 512 buffers of a padded torch batch."""
    gguf = LlamaCppReranker(variant=get_variant("gguf-q4_k_m"), device="cpu", weight_files=[], executed_precision="Q4_K",
                            config=None, threads=1, tokens_per_call=8 * 512)  # a budget that packs all 8 pairs
    torch = TorchReranker(variant=get_variant("torch-fp32"), device="cpu", weight_files=[], executed_precision="fp32",
                          config=None, cross_encoder=None)
    assert gguf.activation_shape(8, 512) == (1, 4096) and torch.activation_shape(8, 512) == (8, 512)
    assert gguf.weights_format() == "q4_k_m" and gguf.compute_precision() == "int8"
    weights = memory_estimate_mb(shape, "q4_k_m", 1, 1)
    packed = memory_estimate_mb(shape, "q4_k_m", *gguf.activation_shape(8, 512)) - weights
    padded = memory_estimate_mb(shape, "q4_k_m", *torch.activation_shape(8, 512)) - weights
    assert packed > 5 * padded and 1500 < packed < 5000  # the packed call's attention: 4,096^2 scores per head
    # (the peak RSS measured 1.2 GB -> 4.8 GB from 1 to 8 pairs per call; most of that was the logits buffer,
    # below: n_vocab floats per token of the call)
    vocab = {"vocab_size": 250_002}
    gguf.config = type("Config", (), vocab)()
    assert gguf.output_buffer_mb(8, 512) == pytest.approx(4096 * 250_002 * 4 / 2**20)  # 3,906 MiB
    assert torch.output_buffer_mb(8, 512) == 0
    # With the default budget (llama-server's 512-token micro-batch) a call holds at most one 512-token pair.
    default = LlamaCppReranker(variant=get_variant("gguf-q4_k_m"), device="cpu", weight_files=[],
                               executed_precision="Q4_K", config=None, threads=1)
    assert default.activation_shape(8, 512) == (1, 512) and default.activation_shape(8, 64) == (1, 512)
    assert default.activation_shape(1, 8192) == (1, 8192)  # a pair longer than the budget goes alone
    default.config = type("Config", (), vocab)()
    assert default.output_buffer_mb(8, 512) == pytest.approx(512 * 250_002 * 4 / 2**20)  # 488 MiB
