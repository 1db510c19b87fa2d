"""GGUF variants: the twin XLM-R tokenizer, pair truncation, conversion, quantization and llama.cpp scoring.

How close must llama.cpp's scores be to torch-fp32's on the same tiny XLM-R checkpoint? A random model's
sensitivity to rounding is its own (it says nothing about trained models), so the tolerance is measured, not
guessed: the test rounds the checkpoint's weights to the same format in torch (F16; Q8_0 = blocks of 32
weights sharing one f16 scale, 8-bit values) and takes that score error as the unit. llama.cpp also rounds
activations (to f16 for F16 matmuls, to 8-bit blocks for quantized ones), so its error may be up to 3x
the weight-only error; more would mean a conversion fault, not rounding. Q4_K_M's k-quants (4-bit with 6-bit
sub-block scales, some tensors Q6_K) are not re-implemented here: its scores must keep the fp32 ranking
(Kendall tau > 0.6) and err more than Q8_0 but stay below half the scores' RMS on average.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from runlocalai_bench.models.resolve import resolve
from runlocalai_bench.rerankers.backends.gguf import check_convertible
from runlocalai_bench.rerankers.backends.gguf.convert import tensor_types
from runlocalai_bench.rerankers.backends.gguf.llamacpp import pack_calls
from runlocalai_bench.rerankers.base import truncate_pair
from runlocalai_bench.rerankers.base import VariantUnavailable
from runlocalai_bench.rerankers.exports import export_root
from runlocalai_bench.rerankers.registry import get_variant, load_reranker


ACTIVATION_ROUNDING_FACTOR = 3.0  # see the module docstring


def round_weights(model, precision: str) -> None:
    """Round every matrix of ``model`` in place as GGUF ``precision`` stores it (f16 or q8_0)."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim != 2 or parameter.shape[1] % 32:
                continue  # ggml keeps 1-d tensors (norms, biases) in f32
            if precision == "f16":
                parameter.copy_(parameter.half().float())
                continue
            blocks = parameter.reshape(-1, 32).double()  # q8_0: 32 consecutive values along a row
            scale = (blocks.abs().amax(1, keepdim=True) / 127).half().double()
            values = torch.where(scale > 0, torch.round(blocks / scale), torch.zeros_like(blocks))
            parameter.copy_((values * scale).reshape(parameter.shape).float())


@pytest.mark.parametrize("budget", [3, 8, 9, 20, 41])
def test_truncate_pair_matches_hugging_face_longest_first(tiny_xlmr, budget):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr.location)
    texts = ["short query", "a somewhat longer query about cells and genes", "one " * 30, "two " * 30]
    for query in texts:
        for doc in texts:
            expected = tokenizer(query, doc, truncation="longest_first", max_length=budget + 4)["input_ids"]
            q = tokenizer(query, add_special_tokens=False)["input_ids"]
            d = tokenizer(doc, add_special_tokens=False)["input_ids"]
            q, d = truncate_pair(q, d, budget)
            got = [tokenizer.bos_token_id, *q, tokenizer.eos_token_id, tokenizer.eos_token_id, *d, tokenizer.eos_token_id]
            assert got == expected, (query, doc, budget)


def test_heads_gguf_cannot_represent_are_refused(session_cache, tmp_path):
    ref = resolve("twin:tiny-bert", None, session_cache)
    with pytest.raises(VariantUnavailable, match="BertForSequenceClassification cannot be represented.*pooler"):
        check_convertible(Path(ref.location))
    (tmp_path / "config.json").write_text('{"architectures": ["DistilBertForSequenceClassification"]}')
    with pytest.raises(VariantUnavailable, match="ReLU"):
        check_convertible(tmp_path)
    check_convertible(Path(resolve("twin:tiny-xlmr", None, session_cache).location))  # accepted


# ----------------------------------------------------------------------------- with llama-cpp-python

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python (the gguf extra) is not installed")


@pytest.fixture(scope="module")
def torch_scores(tiny_xlmr, session_cache, fixture_pairs) -> np.ndarray:
    reranker = load_reranker(get_variant("torch-fp32"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 128)
    return reranker.score(fixture_pairs, batch_size=8, max_length=128).values


@pytest.fixture(scope="module")
def gguf_rerankers(tiny_xlmr, session_cache):
    loaded = {name: load_reranker(get_variant(name), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 128)
              for name in ("gguf-f16", "gguf-q8_0", "gguf-q4_k_m")}
    yield loaded
    for reranker in loaded.values():
        reranker.close()


@needs_llama_cpp
def test_conversion_and_quantization_write_the_requested_types(gguf_rerankers, tiny_xlmr, session_cache):
    files = {name: r.weight_files[0] for name, r in gguf_rerankers.items()}
    assert all(p.is_file() and p.parent.is_relative_to(export_root(tiny_xlmr, session_cache)) for p in files.values())
    types = {name: r.details["tensor_types"] for name, r in gguf_rerankers.items()}
    # read from llama.cpp's loader log in the measured process: the same counts gguf-py's reader finds in the file
    assert types == {name: tensor_types(path) for name, path in files.items()}
    buffers = gguf_rerankers["gguf-q4_k_m"].runtime_memory()  # llama.cpp's own account, beside the measured peak
    assert any(k.startswith("model (") for k in buffers) and all(v > 0 for v in buffers.values())
    assert "F16" in types["gguf-f16"] and not {"Q8_0", "Q4_K"} & set(types["gguf-f16"])
    assert "Q8_0" in types["gguf-q8_0"]
    assert "Q4_K" in types["gguf-q4_k_m"] and "Q6_K" in types["gguf-q4_k_m"]  # the "M" mix
    sizes = [files[n].stat().st_size for n in ("gguf-f16", "gguf-q8_0", "gguf-q4_k_m")]
    assert sizes == sorted(sizes, reverse=True)
    assert gguf_rerankers["gguf-q4_k_m"].executed_precision.startswith("Q4_K")
    assert gguf_rerankers["gguf-f16"].details["layout"] == "<s> query </s> </s> document </s>"


@needs_llama_cpp
def test_llama_cpp_tokenizes_pairs_like_hugging_face(gguf_rerankers, tiny_xlmr, fixture_pairs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr.location)
    reranker = gguf_rerankers["gguf-f16"]
    for max_length in (512, 48):  # untruncated, then every pair cut by longest_first
        expected = tokenizer([q for q, _ in fixture_pairs], [d for _, d in fixture_pairs], truncation="longest_first",
                             max_length=max_length)["input_ids"]
        assert reranker.encode(fixture_pairs, max_length).ids == expected


@needs_llama_cpp
def test_gguf_scores_agree_with_torch_fp32(gguf_rerankers, torch_scores, fixture_pairs, tiny_xlmr, session_cache):
    rms = float(np.sqrt(np.mean(torch_scores ** 2)))
    errors = {}
    for name, reranker in gguf_rerankers.items():
        run = reranker.score(fixture_pairs, batch_size=8, max_length=128)
        assert run.values.dtype == np.float32 and np.isfinite(run.values).all() and run.padding_fraction == 0
        errors[name] = np.abs(run.values - torch_scores) / rms
        tau = kendalltau(run.values, torch_scores).statistic
        print(f"{name}: |diff|/rms max {errors[name].max():.4f} mean {errors[name].mean():.4f}, tau {tau:.3f}")
        if name == "gguf-q4_k_m":
            assert errors[name].mean() < 0.5 and tau > 0.6
            continue
        reference = load_reranker(get_variant("torch-fp32"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 128)
        round_weights(reference.model, reranker.variant.precision)
        weight_only = np.abs(reference.score(fixture_pairs, batch_size=8, max_length=128).values - torch_scores) / rms
        print(f"  torch with {reranker.variant.precision} weights: max {weight_only.max():.4f} mean {weight_only.mean():.4f}")
        assert errors[name].mean() < ACTIVATION_ROUNDING_FACTOR * weight_only.mean()
        assert errors[name].max() < ACTIVATION_ROUNDING_FACTOR * weight_only.max()
    assert errors["gguf-f16"].mean() < errors["gguf-q8_0"].mean() < errors["gguf-q4_k_m"].mean()


@needs_llama_cpp
@pytest.mark.parametrize("name", ["gguf-f16", "gguf-q8_0"])
def test_packed_pairs_do_not_see_each_other(gguf_rerankers, fixture_pairs, name):
    """Pairs packed into one llama_decode attend only within themselves: a pair's score does not depend on
    its neighbours. (It may depend on the number of tokens in the call: ggml picks matmul kernels by
    shape, which moves scores at the level of the file's rounding error; measured, not asserted.)"""
    reranker = gguf_rerankers[name]
    ids = reranker.encode(fixture_pairs[:8], 128).ids
    first = reranker.decode(ids[:4])
    other_neighbours = reranker.decode([ids[0], ids[5], ids[6], ids[7]])
    assert abs(first[0] - other_neighbours[0]) <= 1e-5 * abs(first[0])
    alone = reranker.decode([ids[0]])[0]
    print(f"{name}: alone {alone:.5f}, packed with 3 others {first[0]:.5f}")


@needs_llama_cpp
def test_pairs_at_max_length_fit_one_physical_batch(gguf_rerankers, tiny_xlmr, session_cache):
    long_text = "cells " * 600
    pairs = [(long_text, long_text), ("a query", long_text), (long_text, "a document")]
    torch = load_reranker(get_variant("torch-fp32"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 512)
    reference = torch.score(pairs, batch_size=3, max_length=512).values
    for name in ("gguf-f16", "gguf-q8_0"):
        reranker = gguf_rerankers[name]
        run = reranker.score(pairs, batch_size=3, max_length=512)
        assert run.tokens == 3 * 512 and np.isfinite(run.values).all()
        # Three pairs of 512 tokens and a 512-token budget per call: one pair per call, the context one call big.
        assert reranker.details["pairs_per_call"] == 1 and reranker.details["context_tokens"] >= 512
        assert run.batch_pairs == [3]  # latency samples cover batch_size pairs, however the calls were packed
        assert reranker._largest_call == 512
        if name == "gguf-f16":  # same tolerance as at 128 tokens: weight and activation rounding only
            relative = np.abs(run.values - reference) / float(np.sqrt(np.mean(reference ** 2)))
            assert relative.max() < 0.02, relative
    # A budget of three pairs packs them into one call: same scores, a context (and logits buffer) three times as big.
    packed = load_reranker(get_variant("gguf-f16"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 512,
                           user_file=gguf_rerankers["gguf-f16"].weight_files[0], tokens_per_call=3 * 512)
    run = packed.score(pairs, batch_size=3, max_length=512)
    assert packed.details["pairs_per_call"] == 3 and packed.details["context_tokens"] >= 3 * 512
    np.testing.assert_allclose(run.values, gguf_rerankers["gguf-f16"].score(pairs, 3, 512).values, rtol=1e-4, atol=1e-5)
    assert packed.logits_buffer_mib() == pytest.approx(3 * gguf_rerankers["gguf-f16"].logits_buffer_mib())
    packed.close()


@needs_llama_cpp
def test_a_call_needs_its_tokens_not_n_ctx_per_sequence(gguf_rerankers, fixture_pairs, tiny_xlmr, session_cache):
    """The context is sized for one call (the budget), not n_seq_max x the longest pair: with 8 sequences in a
    128-token context each sequence's share is 16 tokens, and pairs of up to 64 tokens must still score as
    they do alone."""
    fresh = load_reranker(get_variant("gguf-f16"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 64,
                          user_file=gguf_rerankers["gguf-f16"].weight_files[0], tokens_per_call=128)
    run = fresh.score(fixture_pairs[:8], batch_size=8, max_length=64)
    assert fresh.details["context_tokens"] <= 136 and fresh.details["context_sequences"] == 8
    assert fresh.details["pairs_per_call"] > 1  # pairs shared calls
    # The same calls in a context with room for 8 x 64 tokens give the same scores ...
    roomy = load_reranker(get_variant("gguf-f16"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 64,
                          user_file=gguf_rerankers["gguf-f16"].weight_files[0], tokens_per_call=128)
    roomy._ensure_context(8 * 64, 8)
    np.testing.assert_allclose(run.values, roomy.score(fixture_pairs[:8], 8, 64).values, rtol=1e-5, atol=1e-6)
    # ... and each pair alone agrees to F16 rounding (packing changes the summation shapes: measured 0.4%).
    ids = fresh.encode(fixture_pairs[:8], 64).ids
    alone = np.array([fresh.decode([seq])[0] for seq in ids])
    rms = float(np.sqrt(np.mean(alone ** 2)))
    assert np.abs(run.values - alone).max() < 0.02 * rms
    features = fresh.tokenize(fixture_pairs[:8], 64)  # the fixed workload: several calls, scores in pair order
    assert len(features["llama_batches"]) > 1
    np.testing.assert_allclose(fresh.forward(features), fresh.forward(fresh.tokenize(fixture_pairs[:8], 64)))
    assert np.abs(fresh.forward(features) - alone).max() < 0.02 * rms
    fresh.close()
    roomy.close()


def test_calls_pack_pairs_up_to_the_token_budget():
    lengths = [500, 300, 200, 120, 100, 90, 700]
    calls = pack_calls(lengths, range(len(lengths)), max_pairs=8, max_tokens=512)
    assert calls == [[0], [1, 2], [3, 4, 5], [6]]  # 700 > 512 goes alone; no call over 512 otherwise
    assert pack_calls(lengths, range(len(lengths)), max_pairs=2, max_tokens=10_000) == [[0, 1], [2, 3], [4, 5], [6]]
    assert pack_calls([10] * 5, [4, 3, 2, 1, 0], max_pairs=8, max_tokens=25) == [[4, 3], [2, 1], [0]]


@needs_llama_cpp
def test_user_supplied_gguf_file_is_used_as_is(gguf_rerankers, tiny_xlmr, session_cache):
    path = gguf_rerankers["gguf-q4_k_m"].weight_files[0]
    reranker = load_reranker(get_variant("gguf-q4_k_m"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 128,
                             user_file=path)
    assert reranker.weight_files == [path] and reranker.details["source"] == f"user file {path.name}"
    reranker.close()


@needs_llama_cpp
def test_model_only_forward_leaves_tokenization_and_batch_filling_outside(gguf_rerankers, fixture_pairs, monkeypatch):
    """The fixed workload times ``forward`` alone: filling the llama_batch (a Python loop over every token)
    happens in ``tokenize``, so forward must not tokenize or prepare anything."""
    reranker = gguf_rerankers["gguf-f16"]
    features = reranker.tokenize(fixture_pairs[:4], 64)
    expected = reranker.decode(reranker.encode(fixture_pairs[:4], 64).ids)

    def refuse(*args, **kwargs):
        raise AssertionError("forward must not tokenize or fill a batch")

    monkeypatch.setattr(reranker, "prepare", refuse)
    monkeypatch.setattr(reranker, "encode", refuse)
    np.testing.assert_allclose(reranker.forward(features), expected, rtol=1e-5)


@needs_llama_cpp
def test_llama_cpp_computes_with_the_runs_thread_count(gguf_rerankers, tiny_xlmr, session_cache):
    path = gguf_rerankers["gguf-q4_k_m"].weight_files[0]
    reranker = load_reranker(get_variant("gguf-q4_k_m"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, 128,
                             user_file=path, threads=1)
    assert reranker.threads == 1 and reranker.details["threads"] == 1
    reranker.close()


def test_flash_attention_is_asked_for_and_what_llama_cpp_chose_is_recorded(gguf_rerankers, fixture_pairs):
    """Without flash attention a long pair's attention scores are materialised (n_tokens^2 per head); llama.cpp
    is asked to use it where the backend can ("auto") and its answer is read from its own log."""
    reranker = gguf_rerankers["gguf-f16"]
    reranker.score(fixture_pairs[:4], batch_size=4, max_length=64)
    asked, _, chose = reranker.details["flash_attention"].partition(" -> ")
    assert asked == "auto" and chose in ("enabled", "disabled"), reranker.details["flash_attention"]
