"""What a checkpoint is, read from its own files: architecture and shape from config.json, parameters counted
from the weight files' tensor shapes, the context a pair may fill from the position table.

A model page's "~568M parameters", "XLM-RoBERTa base" or "8,192-token context" are statements about these
numbers; a shape twin (random weights, the real config) has exactly the real model's, so they are checked
without downloading the weights. Parameters are counted from the safetensors header (tensor shapes only,
nothing is loaded) or, for an old ``pytorch_model.bin``, from the tensors torch memory-maps.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml
from safetensors import safe_open  # the weight format transformers writes; reads the header without loading

from runlocalai_bench.models.twins import twin_note

# Tensors that are embedding tables (a vocabulary, position or segment lookup), not computation: the
# "non-embedding" parameter count leaves them out, as scaling-law papers and model cards do.
EMBEDDING_SUFFIXES = ("word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight")
# RoBERTa-family position tables start after the padding index: XLM-R's 8,194 rows hold 8,192 tokens.
OFFSET_POSITION_TYPES = {"xlm-roberta", "roberta", "camembert", "xlm-roberta-xl"}


def tensor_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every weight tensor of the checkpoint in ``folder``."""
    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if files:
        shapes: dict[str, tuple[int, ...]] = {}
        for path in files:
            with safe_open(str(path), framework="numpy") as handle:
                for name in handle.keys():
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        return shapes
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        import torch

        state = torch.load(binary, map_location="cpu", weights_only=True, mmap=True)
        return {name: tuple(t.shape) for name, t in state.items()}
    raise FileNotFoundError(f"{folder}: no *.safetensors or pytorch_model.bin to count parameters from")


def context_tokens(config: dict[str, Any]) -> int | None:
    """Tokens one sequence (query + document + special tokens) may hold: the position table's size, less the
    padding offset RoBERTa-family models reserve."""
    positions = config.get("max_position_embeddings")
    if positions is None:
        return None
    if config.get("model_type") in OFFSET_POSITION_TYPES:
        return int(positions) - (int(config.get("pad_token_id", 1)) + 1)
    return int(positions)


def encoder_shape(config: dict[str, Any]) -> str:
    """'xlm-roberta 24x1024, 16 heads': the family and shape two checkpoints share when they share an
    architecture (bge-reranker-v2-m3 and BGE-M3, say)."""
    return (f"{config.get('model_type', '?')} {config.get('num_hidden_layers', '?')}x{config.get('hidden_size', '?')}, "
            f"{config.get('num_attention_heads', '?')} heads")


def model_facts(folder: Path) -> dict[str, Any]:
    """The facts of the checkpoint in ``folder`` (config.json plus its weight files)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    shapes = tensor_shapes(folder)
    total = sum(math.prod(shape) for shape in shapes.values())
    embedding = sum(math.prod(shape) for name, shape in shapes.items() if name.endswith(EMBEDDING_SUFFIXES))
    return {
        "architecture": (config.get("architectures") or ["?"])[0], "model_type": config.get("model_type"),
        "encoder_shape": encoder_shape(config), "layers": config.get("num_hidden_layers"),
        "hidden": config.get("hidden_size"), "heads": config.get("num_attention_heads"),
        "intermediate": config.get("intermediate_size"), "vocab": config.get("vocab_size"),
        "max_positions": config.get("max_position_embeddings"), "context_tokens": context_tokens(config),
        "params_total": total, "params_embedding": embedding, "params_non_embedding": total - embedding,
        "checkpoint_bytes": sum(p.stat().st_size for p in folder.iterdir()
                                if p.suffix in (".safetensors", ".bin") and p.is_file()),
    }


# Licences of the rerankers a reader weighs against v2-m3, as their model cards state them (the cards' `license`
# metadata, quoted in the open-rerankers issue): what tables/model says before the card is downloaded. A
# downloaded checkpoint's own card always wins.
KNOWN_LICENCES = {
    "Qwen/Qwen3-Reranker-0.6B": "apache-2.0", "Qwen/Qwen3-Reranker-4B": "apache-2.0",
    "Qwen/Qwen3-Reranker-8B": "apache-2.0", "mixedbread-ai/mxbai-rerank-base-v2": "apache-2.0",
    "mixedbread-ai/mxbai-rerank-large-v2": "apache-2.0", "jinaai/jina-reranker-v2-base-multilingual": "cc-by-nc-4.0",
    "Alibaba-NLP/gte-multilingual-reranker-base": "apache-2.0",
}
NON_COMMERCIAL = ("-nc", "non-commercial", "noncommercial")


def card_licence(folder: Path) -> str | None:
    """The ``license`` of the model card (README.md metadata) in ``folder``, or None without one."""
    path = Path(folder) / "README.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    try:
        meta = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError:
        return None
    licence = meta.get("license") if isinstance(meta, dict) else None
    if licence == "other" and meta.get("license_name"):
        licence = f"other ({meta['license_name']})"
    return str(licence) if licence else None


def licence_of(folder: Path, spec: str) -> str:
    """The licence to print beside a reranker: its card's, else the known one of the model (or of the model a
    shape twin copies), else what is missing."""
    note = twin_note(folder) or {}
    if note.get("kind") == "tiny test checkpoint":
        return "none (tiny test checkpoint, random weights)"
    found = card_licence(folder)
    if found:
        return found
    of = note.get("of") or spec
    return KNOWN_LICENCES.get(of, "unknown (no model card in the checkpoint)")


def is_non_commercial(licence: str | None) -> bool:
    """Whether a licence forbids commercial use (CC BY-NC and the like): the report says so beside the row."""
    return bool(licence) and any(mark in licence.lower() for mark in NON_COMMERCIAL)
