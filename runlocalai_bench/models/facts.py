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

from safetensors import safe_open  # the weight format transformers writes; reads the header without loading

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
