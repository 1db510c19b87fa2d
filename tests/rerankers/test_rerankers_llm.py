"""LLM rerankers (Qwen3-Reranker, mxbai-rerank-v2, bge-reranker-v2-gemma) on tiny random-weight twins: the suite's
score equals each card's formula computed here independently, truncation never cuts the template, left-padded
batches score as each pair alone, and what cannot run is a recorded skip that says why."""

from __future__ import annotations

import importlib.util
import json
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from runlocalai_bench.models.resolve import resolve
from runlocalai_bench.params import RerankerParams
from runlocalai_bench.rerankers.base import VariantUnavailable
from runlocalai_bench.rerankers.families import family_of, remote_code_needed
from runlocalai_bench.rerankers.registry import get_variant, load_reranker
from runlocalai_bench.models.twins import tiny_checkpoint

# The cards' prompts, typed here from the sources (not imported from the package under test).
QWEN3_PREFIX = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
                "Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n")
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
MXBAI_PREFIX = ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                "<|im_start|>user\n")
MXBAI_TASK = ("You are a search relevance expert who evaluates how well documents match search queries. For each "
              "query-document pair, carefully analyze the semantic relationship between them, then provide your "
              "binary relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:")
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
GEMMA_PROMPT = ("Given a query A and a passage B, determine whether the passage contains an answer to the query by "
                "providing a prediction of either 'Yes' or 'No'.")


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def card_input(name: str, tokenizer, query: str, doc: str, instruction: str | None = None) -> list[int]:
    """The token ids each card's reference code builds for one short pair (no truncation needed)."""
    if name == "tiny-qwen3":  # QwenLM/Qwen3-Embedding README: prefix + tokenized body + suffix
        body = f"<Instruct>: {instruction or QWEN3_INSTRUCTION}\n<Query>: {query}\n<Document>: {doc}"
        return _ids(tokenizer, QWEN3_PREFIX) + _ids(tokenizer, body) + _ids(tokenizer, QWEN3_SUFFIX)
    if name == "tiny-mxbai":  # mxbai_rerank_v2.py: prefix + query + sep + document + sep + task + suffix
        return (_ids(tokenizer, MXBAI_PREFIX) + _ids(tokenizer, f"query: {query}") + _ids(tokenizer, "\n")
                + _ids(tokenizer, f"document: {doc}") + _ids(tokenizer, "\n") + _ids(tokenizer, MXBAI_TASK)
                + _ids(tokenizer, MXBAI_SUFFIX))
    # FlagLLMReranker: BOS + "A: query" + sep + "B: passage" + sep + prompt
    return ([tokenizer.bos_token_id] + _ids(tokenizer, f"A: {query}") + _ids(tokenizer, "\n")
            + _ids(tokenizer, f"B: {doc}") + _ids(tokenizer, "\n") + _ids(tokenizer, GEMMA_PROMPT))


def card_score(name: str, model, tokenizer, ids: list[int]) -> float:
    """The card's formula on one unpadded sequence, by a plain transformers forward pass."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double()
    if name == "tiny-qwen3":
        yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
        p_yes = torch.log_softmax(torch.stack([logits[no], logits[yes]]), 0)[1].exp()  # the card's P(yes)
        log_odds = float(logits[yes] - logits[no])
        assert abs(float(torch.sigmoid(torch.tensor(log_odds, dtype=torch.float64))) - float(p_yes)) < 1e-12  # same order as P(yes)
        return log_odds
    if name == "tiny-mxbai":
        return float(logits[_ids(tokenizer, "1")[0]] - logits[_ids(tokenizer, "0")[0]])
    return float(logits[_ids(tokenizer, "Yes")[0]])


@pytest.mark.parametrize("name", ["tiny-qwen3", "tiny-mxbai", "tiny-gemma"])
def test_suite_scores_equal_the_cards_formula_and_batches_score_like_single_pairs(name, session_cache, fixture_pairs):
    folder = tiny_checkpoint(name, session_cache)
    ref = resolve(f"twin:{name}", None, session_cache)
    reranker = load_reranker(get_variant("torch-fp32"), "cpu", folder, ref, session_cache, 512)
    pairs = fixture_pairs[:12]
    batched = reranker.score(pairs, 5, 512).values  # left-padded batches of mixed lengths
    single = np.array([reranker.score([p], 1, 512).values[0] for p in pairs])
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    reference = np.array([card_score(name, model, tokenizer, card_input(name, tokenizer, q, d)) for q, d in pairs])
    spread = float(np.ptp(reference))
    assert spread > 0.1  # random weights still separate the pairs, so agreement means something
    assert np.max(np.abs(single - reference)) <= 1e-5 * spread
    assert np.max(np.abs(batched - reference)) <= 1e-5 * spread
    assert reranker.details["prompt_rule"] == family_of(ref.spec, folder).name
    reranker.close()


def test_truncation_cuts_query_and_document_never_the_template(session_cache):
    folder = tiny_checkpoint("tiny-qwen3", session_cache)
    reranker = load_reranker(get_variant("torch-fp32"), "cpu", folder, resolve("twin:tiny-qwen3", None, session_cache),
                             session_cache, 24)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    query, doc = "what do cells need", "cells need energy from food and oxygen " * 20
    ids = reranker.encoder.encode([(query, doc)], 24)[0]
    prefix, suffix = _ids(tokenizer, QWEN3_PREFIX), _ids(tokenizer, QWEN3_SUFFIX)
    assert ids[:len(prefix)] == prefix and ids[-len(suffix):] == suffix  # the template is whole at both ends
    body = tokenizer.decode(ids[len(prefix):-len(suffix)])
    assert body.startswith(f"<Instruct>: {QWEN3_INSTRUCTION}\n<Query>: {query}\n<Document>: cells need")
    # longest-first: the short query is kept whole and the document takes the rest of the 24 tokens
    kept_doc = body.split("<Document>: ", 1)[1]
    assert len(_ids(tokenizer, query)) + len(_ids(tokenizer, kept_doc)) <= 24 < len(_ids(tokenizer, query + doc))
    assert reranker.details["template_tokens"] == len(reranker.encoder.encode([("", "")], 24)[0])
    assert np.isfinite(reranker.score([(query, doc)], 1, 24).values).all()


def test_the_instruction_is_a_parameter_and_is_recorded(session_cache):
    folder = tiny_checkpoint("tiny-qwen3", session_cache)
    ref = resolve("twin:tiny-qwen3", None, session_cache)
    mine = "Given a claim, retrieve documents that support or refute it"
    reranker = load_reranker(get_variant("torch-fp32"), "cpu", folder, ref, session_cache, 512, instruction=mine)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert reranker.details["instruction"] == mine
    assert reranker.encoder.encode([("q", "d")], 512)[0] == card_input("tiny-qwen3", tokenizer, "q", "d", mine)
    default = load_reranker(get_variant("torch-fp32"), "cpu", folder, ref, session_cache, 512)
    assert default.details["instruction"] == QWEN3_INSTRUCTION
    mxbai = load_reranker(get_variant("torch-fp32"), "cpu", tiny_checkpoint("tiny-mxbai", session_cache),
                          resolve("twin:tiny-mxbai", None, session_cache), session_cache, 512, instruction=mine)
    assert mxbai.details["instruction"].startswith("none")  # mxbai-v2's default prompt carries no instruction


def test_every_torch_variant_runs_an_llm_reranker_and_other_backends_say_why_not(session_cache, fixture_pairs):
    folder = tiny_checkpoint("tiny-qwen3", session_cache)
    ref = resolve("twin:tiny-qwen3", None, session_cache)
    scores = {}
    for name in ("torch-fp32", "torch-fp16", "torch-bf16", "torch-int8"):
        reranker = load_reranker(get_variant(name), "cpu", folder, ref, session_cache, 128)
        scores[name] = reranker.score(fixture_pairs[:16], 8, 128).values
        assert np.isfinite(scores[name]).all()
        reranker.close()
    spread = float(np.ptp(scores["torch-fp32"]))
    for name in ("torch-fp16", "torch-bf16", "torch-int8"):  # drift within a tenth of the spread on these 16 pairs
        assert np.max(np.abs(scores[name] - scores["torch-fp32"])) < 0.1 * spread, name
    for name in ("onnx-fp32", "openvino-fp32", "server-llama-q4_k_m", "server-infinity-torch"):
        with pytest.raises(VariantUnavailable, match="qwen3-reranker"):
            load_reranker(get_variant(name), "cpu", folder, ref, session_cache, 128)
    with pytest.raises(VariantUnavailable, match="rank head for Qwen3-Reranker only"):  # mxbai-v2 has no GGUF path
        load_reranker(get_variant("gguf-f16"), "cpu", tiny_checkpoint("tiny-mxbai", session_cache),
                      resolve("twin:tiny-mxbai", None, session_cache), session_cache, 128)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs the gguf extra (llama-cpp-python)")
def test_the_qwen3_twins_gguf_scores_like_torch(session_cache, fixture_pairs, multilingual_pairs):
    """llama.cpp's own converter (the installed llama-cpp-python's) writes Qwen3-Reranker's rank head (the
    yes/no rows of the LM head); rank pooling returns the softmax over them, turned back into log-odds. The same
    prompt ids as torch: F16 agrees within 1% of the score spread (K and V sit in llama.cpp's default f16 cache;
    measured 0.37% on these pairs), and each quantization drifts further, Q4_K_M most."""
    folder = tiny_checkpoint("tiny-qwen3", session_cache)
    ref = resolve("twin:tiny-qwen3", None, session_cache)
    pairs = fixture_pairs[:24] + multilingual_pairs[:16]
    scores = {}
    for name in ("torch-fp32", "gguf-f16", "gguf-q8_0", "gguf-q4_k_m"):
        reranker = load_reranker(get_variant(name), "cpu", folder, ref, session_cache, 128)
        scores[name] = reranker.score(pairs, 8, 128).values
        if name.startswith("gguf"):
            assert reranker.details["prompt_rule"] == "qwen3-reranker" and "f16" in reranker.details["kv_cache"]
            assert reranker.token_lengths(pairs, 128).tolist() == [len(r) for r in reranker.encoder.encode(pairs, 128)]
        reranker.close()
    spread = float(np.ptp(scores["torch-fp32"]))
    drift = {name: float(np.max(np.abs(scores[name] - scores["torch-fp32"]))) / spread for name in scores}
    assert drift["gguf-f16"] < 0.01
    assert drift["gguf-f16"] < drift["gguf-q8_0"] < drift["gguf-q4_k_m"] < 0.5


def test_a_causal_lm_without_a_known_rule_is_refused(session_cache, tmp_path):
    folder = tmp_path / "some-chat-model"
    shutil.copytree(tiny_checkpoint("tiny-qwen3", session_cache), folder)
    (folder / "runlocalai_twin.json").unlink()
    with pytest.raises(ValueError, match="no known reranking prompt"):
        family_of(str(folder), folder)
    assert family_of("Qwen/Qwen3-Reranker-4B", folder).name == "qwen3-reranker"  # the hub id says which rule


def test_remote_code_needs_a_pinned_commit():
    with pytest.raises(ValueError, match="not a commit hash"):
        RerankerParams(trust_remote_code={"jinaai/jina-reranker-v2-base-multilingual": "main"})
    pinned = RerankerParams(trust_remote_code={"jinaai/jina-reranker-v2-base-multilingual": "a" * 40})
    assert pinned.trust_remote_code["jinaai/jina-reranker-v2-base-multilingual"] == "a" * 40


@pytest.mark.slow
def test_a_remote_code_reranker_without_permission_is_a_recorded_skip_and_its_code_never_runs(session_cache, tmp_path):
    from runlocalai_bench.cli import main

    folder = tmp_path / "remote-reranker"
    shutil.copytree(tiny_checkpoint("tiny-bert", session_cache), folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_remote.RemoteModel"}
    (folder / "config.json").write_text(json.dumps(config))
    marker = tmp_path / "code-ran"
    (folder / "modeling_remote.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    assert remote_code_needed(folder)
    out = tmp_path / "bundle"
    assert main(["run", "params/smoke.yaml", "--out", str(out), "--set", f"cache_dir={session_cache}",
                 "--set", "datasets=[fixture:tiny]", "--set", "reranker.variants=[torch-fp32]",
                 "--set", f"reranker.baselines=[{folder}]", "--set", "reranker.baseline_variants=[]",
                 "--set", "throughput.enabled=false", "--set", "stages=[first_stage, rerank]"]) == 0
    stages = [json.loads(p.read_text()) for p in (out / "stages").glob("baseline--*.json")]
    assert len(stages) == 1 and stages[0]["status"] == "skipped"
    assert "trust_remote_code" in stages[0]["reason"] and "40-hex commit" in stages[0]["reason"]
    assert not marker.exists()


def test_code_from_another_repository_needs_its_own_pin(session_cache, tmp_path):
    """gte-multilingual's auto_map names modules in another repository ("org/repo--module.Class"), which
    transformers would fetch at that repository's main: the model's pin alone does not allow it."""
    from runlocalai_bench.models.refs import ModelRef
    from runlocalai_bench.params import load_params
    from runlocalai_bench.run.stages import code_revision, remote_code_refusal

    from support import REPO

    folder = tmp_path / "gte"
    shutil.copytree(tiny_checkpoint("tiny-bert", session_cache), folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "Alibaba-NLP/new-impl--configuration.NewConfig",
                          "AutoModelForSequenceClassification": "Alibaba-NLP/new-impl--modeling.NewForSequenceClassification"}
    (folder / "config.json").write_text(json.dumps(config))
    spec, commit, code = "Alibaba-NLP/gte-multilingual-reranker-base", "ab" * 20, "cd" * 20
    ref = ModelRef(spec, str(folder), commit, None)
    only_model = load_params(REPO / "params" / "smoke.yaml", [f"reranker.trust_remote_code={{{spec}: {commit}}}"])
    refusal = remote_code_refusal(only_model, spec, ref, folder)
    assert refusal and "reranker.trust_remote_code.Alibaba-NLP/new-impl" in refusal
    both = load_params(REPO / "params" / "smoke.yaml",
                       [f"reranker.trust_remote_code={{{spec}: {commit}, Alibaba-NLP/new-impl: {code}}}"])
    assert remote_code_refusal(both, spec, ref, folder) is None and code_revision(both, folder) == code
    moved = ModelRef(spec, str(folder), "ef" * 20, None)  # the snapshot found is another commit than the pin
    assert "pinned commit only" in remote_code_refusal(both, spec, moved, folder)


def test_a_classification_head_is_read_as_one_whatever_the_id(session_cache):
    folder = tiny_checkpoint("tiny-xlmr", session_cache)
    assert family_of("tomaarsen/Qwen3-Reranker-0.6B-seq-cls", folder).kind == "classifier"
