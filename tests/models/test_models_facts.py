"""Model facts read from a checkpoint's own files, and the model-page statements judged on them."""

import pandas as pd
import pytest

from runlocalai_bench.models.facts import context_tokens, encoder_shape, model_facts
from runlocalai_bench.models.resolve import resolve
from runlocalai_bench.models.twins import KNOWN_CONFIGS, shape_twin
from runlocalai_bench.reporting.claims import CONTRADICTED, HOLDS, load_claims, verdicts
from support import REPO


def test_context_leaves_out_the_roberta_padding_offset():
    assert context_tokens(KNOWN_CONFIGS["BAAI/bge-reranker-v2-m3"]) == 8192
    assert context_tokens(KNOWN_CONFIGS["BAAI/bge-reranker-large"]) == 512
    assert context_tokens(KNOWN_CONFIGS["cross-encoder/ms-marco-MiniLM-L-12-v2"]) == 512  # BERT: no offset
    assert encoder_shape(KNOWN_CONFIGS["BAAI/bge-m3"]) == encoder_shape(KNOWN_CONFIGS["BAAI/bge-reranker-v2-m3"])


def test_parameters_are_counted_from_the_weight_files(tiny_xlmr):
    """The tiny twin's count equals torch's own count of the loaded model's parameters."""
    from transformers import AutoModelForSequenceClassification

    facts = model_facts(tiny_xlmr.location)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_xlmr.location)
    assert facts["params_total"] == sum(p.numel() for p in model.parameters())
    embeddings = model.roberta.embeddings
    assert facts["params_embedding"] == sum(m.weight.numel() for m in (
        embeddings.word_embeddings, embeddings.position_embeddings, embeddings.token_type_embeddings))
    assert facts["layers"] == 2 and facts["model_type"] == "xlm-roberta"


@pytest.mark.slow
def test_model_page_facts_on_the_shape_twin(session_cache):
    """bge-reranker-v2-m3's shape twin (its real config, random weights, nothing downloaded): the page's
    "~568M parameters" holds, "XLM-RoBERTa base" is contradicted (24 layers: large), "same architecture as
    BGE-M3" and "8,192-token context" hold."""
    ref = resolve("BAAI/bge-reranker-v2-m3", None, session_cache, require=False)
    folder, _ = shape_twin(ref, session_cache, 0)
    facts = model_facts(folder)
    assert facts["params_total"] == 567_755_777 and facts["context_tokens"] == 8192
    model = pd.DataFrame([{"run_id": "twin", "reranker": "BAAI/bge-reranker-v2-m3", "variant": "torch-fp32",
                           "device": "cpu", "weights": "random", **facts, "file_bytes": facts["checkpoint_bytes"],
                           "source": "shape twin"}])
    claims = load_claims(REPO / "params" / "claims" / "bge-reranker-v2-m3.yaml")
    table = verdicts(claims, {"model": model}, {"twin": "random"}, {})
    by_claim = dict(zip(table["claim"], table["verdict"]))
    assert by_claim["parameters"] == HOLDS
    assert by_claim["xlmr-base"] == CONTRADICTED
    assert by_claim["same-architecture-as-bge-m3"] == HOLDS
    assert by_claim["context-8192"] == HOLDS
    measured = dict(zip(table["claim"], table["measured"]))
    assert measured["parameters"] == "568M" and measured["xlmr-base"] == "24 layers"
    # Pooled with a second run of the same checkpoint (a length sweep): one verdict per fact, naming both runs.
    pooled = pd.concat([model, model.assign(run_id="length")], ignore_index=True)
    table = verdicts(claims, {"model": pooled}, {"twin": "random", "length": "random"}, {})
    facts_verdicts = table[table["claim"] == "parameters"]
    assert len(facts_verdicts) == 1 and "runs length, twin" in facts_verdicts.iloc[0]["where"]
