"""The sentence-transformers backends (torch, ONNX, OpenVINO): score conventions and a tiny model through every CPU variant."""

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from runlocalai_bench.data.specs import load_collection
from runlocalai_bench.models.resolve import resolve
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.rerankers.crossencoder import scores_from_logits
from runlocalai_bench.rerankers.registry import VARIANTS, load_reranker
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.retrieval.candidates import candidate_pairs


@pytest.fixture(scope="module")
def fixture_run():
    collection = load_collection("fixture:tiny")
    query_ids = collection.judged_query_ids
    first = bm25_retrieve(collection, query_ids, FirstStageParams(kind="bm25", depth=20)).ranking
    keys, pairs = candidate_pairs(collection, first, query_ids)
    return collection, query_ids, first, keys, pairs


def test_half_precision_sigmoid_collapses_scores_but_ours_keep_order():
    logits = torch.tensor([[5.0], [6.0], [7.0], [8.0], [9.0], [10.0]], dtype=torch.bfloat16)
    assert torch.sigmoid(logits).unique().numel() <= 3  # the hazard: bf16 sigmoids of good matches tie
    scores = scores_from_logits(logits)
    assert scores.dtype == np.float32 and np.unique(scores).size == 6
    assert np.all(np.diff(scores) > 0)
    two_label = scores_from_logits(torch.tensor([[0.0, 2.0], [1.0, 0.0]]))
    np.testing.assert_allclose(two_label, [2.0, -1.0])


@pytest.mark.slow
def test_tiny_model_through_every_cpu_variant(fixture_run, session_cache):
    _, _, _, _, pairs = fixture_run
    ref = resolve("twin:tiny-bert", None, session_cache)
    scores = {}
    for name, variant in VARIANTS.items():
        if "cpu" not in variant.devices or variant.missing_modules() or variant.backend in ("gguf", "server"):
            continue  # GGUF cannot represent a BERT cross-encoder (test_gguf and test_served cover them on XLM-R)
        reranker = load_reranker(variant, "cpu", ref.location, ref, session_cache, 128, pairs[:16])
        run = reranker.score(pairs, batch_size=8, max_length=128)
        assert run.values.shape == (len(pairs),) and run.values.dtype == np.float32 and np.isfinite(run.values).all()
        assert 0 <= run.padding_fraction < 1 and reranker.file_bytes > 0
        unsorted = reranker.score(pairs, batch_size=8, max_length=128, length_sorted=False)
        assert run.padding_fraction <= unsorted.padding_fraction
        if variant.precision == "fp32":  # batch composition must not change an fp32 score
            np.testing.assert_allclose(run.values, unsorted.values, atol=1e-4)
        else:  # reduced precision and dynamic int8 (per-batch activation scales) may move scores a little
            assert kendalltau(run.values, unsorted.values).statistic > (0.6 if variant.precision == "int8" else 0.9)
        if variant.precision == "int8":  # what ran says int8, whatever the runtime picks for the other ops
            assert "int8" in reranker.executed_precision, (name, reranker.executed_precision)
        scores[name] = run.values
    assert {"torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8"} <= set(scores)
    for name in ("onnx-fp32", "openvino-fp32"):  # fp32 exports compute the same function
        np.testing.assert_allclose(scores[name], scores["torch-fp32"], atol=1e-3)


def test_every_backend_computes_with_the_runs_thread_count(session_cache):
    """Equal terms for speed: torch, ONNX Runtime and OpenVINO are all given the run's one count (here 1, not the
    machine's default) and record it; each runtime is asked what it was configured with."""
    ref = resolve("twin:tiny-bert", None, session_cache)
    before = torch.get_num_threads()
    try:
        for name in ("torch-fp32", "onnx-fp32", "openvino-fp32"):
            variant = VARIANTS[name]
            if variant.missing_modules():
                continue
            reranker = load_reranker(variant, "cpu", ref.location, ref, session_cache, 128, threads=1)
            assert reranker.details["threads"] == 1 and torch.get_num_threads() == 1, name
            model = reranker.cross_encoder.model
            if variant.backend == "onnx":
                assert model.session.get_session_options().intra_op_num_threads == 1
            elif variant.backend == "openvino":
                assert int(model.request.get_property("INFERENCE_NUM_THREADS")) == 1
            reranker.close()
    finally:
        torch.set_num_threads(before)


def test_inputs_go_where_each_backend_reads_them(session_cache):
    """torch modules and ONNX Runtime's CUDA provider (IO binding: device pointers) read inputs on the model's device;
    ONNX on the CPU and OpenVINO read host tensors. Checked on the loaded rerankers' own rule and their forward."""
    from runlocalai_bench.rerankers.backends.torch_backend import TorchReranker
    from runlocalai_bench.rerankers.crossencoder import CrossEncoderReranker

    ref = resolve("twin:tiny-bert", None, session_cache)
    pairs = [("what is a reranker", "a model that orders documents"), ("q", "d")]
    for name in ("torch-fp32", "onnx-fp32", "openvino-fp32"):
        variant = VARIANTS[name]
        if variant.missing_modules():
            continue
        reranker = load_reranker(variant, "cpu", ref.location, ref, session_cache, 64)
        features = reranker.tokenize(pairs, 64)
        assert reranker.input_device == "cpu"
        assert all(t.device.type == "cpu" for t in reranker.place(features).values())
        assert reranker.forward(features).shape == (2,)
        if variant.backend == "onnx":
            assert reranker.details["provider"] == "CPUExecutionProvider" and not reranker.inputs_on_device
        reranker.close()
    # The same rule for a reranker on a GPU (no model needed to ask where its inputs go).
    on_gpu = dict(variant=VARIANTS["torch-fp32"], device="cuda:1", weight_files=[], executed_precision="fp32",
                  config=None, cross_encoder=None)
    assert TorchReranker(**on_gpu).input_device == "cuda:1"
    assert CrossEncoderReranker(**on_gpu, inputs_on_device=True).input_device == "cuda:1"  # ONNX, CUDA provider
    assert CrossEncoderReranker(**on_gpu).input_device == "cpu"


def test_onnx_cuda_asks_for_tf32_off_and_refuses_a_fallback():
    from runlocalai_bench.rerankers.backends.onnx_backend import (CPU_PROVIDER, CUDA_PROVIDER, ProviderFallback,
                                                                  check_provider, provider_for, runtime_conflict)

    assert provider_for("cpu") == (CPU_PROVIDER, {})
    assert provider_for("cuda:2") == (CUDA_PROVIDER, {"device_id": 2, "use_tf32": 0,
                                                      "arena_extend_strategy": "kSameAsRequested"})
    check_provider(CPU_PROVIDER, [CPU_PROVIDER], {CPU_PROVIDER: {}})
    check_provider(CUDA_PROVIDER, [CUDA_PROVIDER, CPU_PROVIDER], {CUDA_PROVIDER: {"use_tf32": "0"}})
    with pytest.raises(ProviderFallback, match="asked for CUDAExecutionProvider and runs on CPUExecutionProvider"):
        check_provider(CUDA_PROVIDER, [CPU_PROVIDER], {CPU_PROVIDER: {}})
    with pytest.raises(ProviderFallback, match="use_tf32=1"):
        check_provider(CUDA_PROVIDER, [CUDA_PROVIDER], {CUDA_PROVIDER: {"use_tf32": "1"}})
    assert runtime_conflict(["onnxruntime"]) is None
    assert "onnxruntime and onnxruntime-gpu are both installed" in runtime_conflict(["onnxruntime", "onnxruntime-gpu"])


def test_onnx_runtime_reads_back_tf32_off_for_the_cuda_provider():
    """The option name and value ONNX Runtime's CUDA provider reports back (where its GPU build is installed)."""
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers() or not torch.cuda.is_available():
        pytest.skip("needs onnxruntime-gpu and a CUDA device")
    from onnx import TensorProto, helper

    from runlocalai_bench.rerankers.backends.onnx_backend import CUDA_PROVIDER, check_provider, provider_for

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    provider, options = provider_for("cuda")
    session = ort.InferenceSession(helper.make_model(graph).SerializeToString(), providers=[provider],
                                   provider_options=[options])
    check_provider(CUDA_PROVIDER, session.get_providers(), session.get_provider_options())
