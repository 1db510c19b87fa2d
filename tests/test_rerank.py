"""Reranking, statistics and drift: oracle rerankers on the fixture, the half-precision tie hazard,
and a tiny model through every variant that can run on this CPU."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import kendalltau

from runlocalai_bench.aggregate import summarize
from runlocalai_bench.backends import VariantUnavailable, check_device, load_reranker, scores_from_logits
from runlocalai_bench.data import load_collection
from runlocalai_bench.drift import compare
from runlocalai_bench.first_stage import bm25_retrieve
from runlocalai_bench.metrics import evaluate
from runlocalai_bench.models import resolve
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.rerank import candidate_pairs, rerank
from runlocalai_bench.results import quality_rows
from runlocalai_bench.variants import VARIANTS, get_variant

MEASURES = ["nDCG@10", "RR@10", "R@20"]


@pytest.fixture(scope="module")
def fixture_run():
    collection = load_collection("fixture:tiny")
    query_ids = collection.judged_query_ids
    first = bm25_retrieve(collection, query_ids, FirstStageParams(kind="bm25", depth=20)).ranking
    keys, pairs = candidate_pairs(collection, first, query_ids)
    return collection, query_ids, first, keys, pairs


def quality(values, system, variant=None):
    return quality_rows(values, run_id="t", dataset="fixture:tiny", split="test", system=system, first_stage="bm25",
                        reranker="oracle" if variant else None, variant=variant, device="cpu" if variant else None)


def test_oracle_reaches_the_ideal_order_and_reversed_oracle_lowers(fixture_run):
    collection, query_ids, first, keys, _ = fixture_run
    relevance = np.array([collection.qrels[q].get(d, 0) for q, d in keys], dtype=np.float32)
    oracle = rerank(keys, relevance, query_ids)
    reverse = rerank(keys, -relevance, query_ids)
    base = evaluate(first, collection.qrels, query_ids, MEASURES)
    best = evaluate(oracle, collection.qrels, query_ids, MEASURES)
    worst = evaluate(reverse, collection.qrels, query_ids, MEASURES)
    for q in query_ids:  # ideal ordering of the candidates, computed independently
        ideal = sorted(first[q], key=lambda item: (-collection.qrels[q].get(item[0], 0), item[0]))
        assert best["nDCG@10"][q] == pytest.approx(evaluate({q: ideal}, collection.qrels, [q], ["nDCG@10"])["nDCG@10"][q])
    assert best["R@20"] == base["R@20"] == worst["R@20"]  # same candidates, same ceiling
    table = pd.concat([quality(base, "bm25"), quality(best, "rerank", "oracle"), quality(worst, "rerank", "reversed")])
    summary = summarize(table, samples=2000, seed=0).set_index(["variant", "measure"])
    up, down = summary.loc[("oracle", "nDCG@10")], summary.loc[("reversed", "nDCG@10")]
    assert up["lift_abs"] > 0 and up["lift_ci_low"] > 0 and up["losses"] == 0 and up["wins"] > 0
    assert down["lift_abs"] < 0 and down["lift_ci_high"] < 0 and down["p_value"] < 0.05
    assert summarize(table, 2000, 0).equals(summarize(table, 2000, 0))  # same seed, same statistics


def test_half_precision_sigmoid_collapses_scores_but_ours_keep_order():
    logits = torch.tensor([[5.0], [6.0], [7.0], [8.0], [9.0], [10.0]], dtype=torch.bfloat16)
    assert torch.sigmoid(logits).unique().numel() <= 3  # the hazard: bf16 sigmoids of good matches tie
    scores = scores_from_logits(logits)
    assert scores.dtype == np.float32 and np.unique(scores).size == 6
    assert np.all(np.diff(scores) > 0)
    two_label = scores_from_logits(torch.tensor([[0.0, 2.0], [1.0, 0.0]]))
    np.testing.assert_allclose(two_label, [2.0, -1.0])


def test_unavailable_device_is_a_recorded_reason():
    with pytest.raises(VariantUnavailable, match="runs on cpu, not cuda"):
        check_device(get_variant("onnx-int8"), "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(VariantUnavailable, match="no CUDA device"):
            check_device(get_variant("torch-fp16"), "cuda")


def test_drift_comparison():
    ref = pd.DataFrame({"query_id": ["q"] * 12, "doc_id": [f"d{i:02d}" for i in range(12)], "score": np.arange(12.0)})
    same = compare(ref, ref.copy())
    assert same["max_abs_diff"] == 0 and same["top10_overlap"] == 1 and same["kendall_tau"] == pytest.approx(1)
    flipped = compare(ref, ref.assign(score=-ref["score"]))
    assert flipped["kendall_tau"] == pytest.approx(-1) and flipped["top10_overlap"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="same pairs"):
        compare(ref, ref.iloc[:5])


@pytest.mark.slow
def test_tiny_model_through_every_cpu_variant(fixture_run, session_cache):
    _, _, _, _, pairs = fixture_run
    ref = resolve("twin:tiny-bert", None, session_cache)
    scores = {}
    for name, variant in VARIANTS.items():
        if "cpu" not in variant.devices or variant.missing_modules() or variant.backend == "gguf":
            continue  # GGUF cannot represent a BERT cross-encoder (test_gguf covers its variants on XLM-R)
        reranker = load_reranker(variant, "cpu", ref.location, ref, session_cache, 128, pairs[:16])
        run = reranker.score(pairs, batch_size=8, max_length=128)
        assert run.scores.shape == (len(pairs),) and run.scores.dtype == np.float32 and np.isfinite(run.scores).all()
        assert 0 <= run.padding_fraction < 1 and reranker.file_bytes > 0
        unsorted = reranker.score(pairs, batch_size=8, max_length=128, length_sorted=False)
        assert run.padding_fraction <= unsorted.padding_fraction
        if variant.precision == "fp32":  # batch composition must not change an fp32 score
            np.testing.assert_allclose(run.scores, unsorted.scores, atol=1e-4)
        else:  # reduced precision and dynamic int8 (per-batch activation scales) may move scores a little
            assert kendalltau(run.scores, unsorted.scores).statistic > (0.6 if variant.precision == "int8" else 0.9)
        scores[name] = run.scores
    assert {"torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8"} <= set(scores)
    for name in ("onnx-fp32", "openvino-fp32"):  # fp32 exports compute the same function
        np.testing.assert_allclose(scores[name], scores["torch-fp32"], atol=1e-3)
