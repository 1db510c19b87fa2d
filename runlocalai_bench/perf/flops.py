"""The work a pair costs: FLOPs per pair from the model's config and its token counts, and the memory one
batch needs (weights at their stored precision plus activations).

FLOPs per pair follow the usual encoder count: 2 FLOPs per encoder parameter per token (every token passes
every dense layer once), 2 per classification-head parameter once (the head reads the first token only), and
the attention term 4 x layers x hidden x T^2 (QK^T and AV). With pairs of different lengths the attention
term needs the mean of T^2, not the square of the mean T.
"""

from __future__ import annotations

from typing import Any

# Bytes per parameter as stored in memory: (encoder and head matrices, embedding tables). Dynamic int8 in
# torchao (every nn.Linear), ONNX Runtime (MatMul) and nncf (MatMul) leaves the embedding tables in fp32.
# GGUF block formats quantize the token table too (Q8_0: 32 weights in 34 bytes; Q4_K: 256 in 144; Q4_K_M keeps
# a few tensors in Q6_K, so its entry is a lower bound).
BYTES_PER_PARAM: dict[str, tuple[float, float]] = {
    "fp32": (4.0, 4.0), "fp16": (2.0, 2.0), "bf16": (2.0, 2.0), "int8": (1.0, 4.0),
    "f16": (2.0, 2.0), "q8_0": (34 / 32, 34 / 32), "q4_k_m": (144 / 256, 144 / 256),
}
# Formats whose activations stay in fp32 (int8 and the GGUF formats dequantize into fp32 compute).
FP32_ACTIVATIONS = {"fp32", "int8", "f16", "q8_0", "q4_k_m"}


def _is_decoder(config: Any) -> bool:
    architectures = getattr(config, "architectures", None) or [""]
    return architectures[0].endswith("ForCausalLM")


def model_shape(config: Any) -> dict[str, int]:
    """Layers, widths and parameter counts of a reranker from its transformers config: a cross-encoder, or a
    decoder LLM reranker (Qwen3, Qwen2, Gemma: grouped-query attention, a gated MLP, RMS norms, rotary positions
    and so no position table; its "head" is the LM head's rows read at the last position only, one vocabulary
    row per logit, i.e. vocab x hidden once per pair)."""
    layers, hidden = config.num_hidden_layers, config.hidden_size
    intermediate = getattr(config, "intermediate_size", 4 * hidden)
    heads = config.num_attention_heads
    if _is_decoder(config):
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        attention_width = heads * head_dim
        # q and o (hidden x heads*head_dim), k and v (hidden x kv_heads*head_dim), the gated MLP's three
        # matrices, two RMS norms (Qwen3 adds q/k norms of head_dim each: negligible, counted)
        per_layer = (2 * hidden * attention_width + 2 * hidden * kv_heads * head_dim + 3 * hidden * intermediate
                     + 2 * hidden + 2 * head_dim)
        embedding = config.vocab_size * hidden
        head = config.vocab_size * hidden  # the LM head at the last position (tied or not, it is computed)
        return {"layers": layers, "hidden": hidden, "intermediate": intermediate, "heads": heads,
                "attention_width": attention_width, "encoder_params": layers * per_layer + hidden,
                "head_params": head, "non_embedding_params": layers * per_layer + hidden
                + (0 if getattr(config, "tie_word_embeddings", False) else head), "embedding_params": embedding}
    # attention q,k,v,o (+ biases), two FFN matrices (+ biases), two layer norms (weight + bias each)
    per_layer = 4 * hidden * hidden + 4 * hidden + 2 * hidden * intermediate + hidden + intermediate + 4 * hidden
    head = hidden * hidden + hidden + (hidden + 1) * max(getattr(config, "num_labels", 1), 1)  # dense + out_proj
    embedding = (config.vocab_size + config.max_position_embeddings + getattr(config, "type_vocab_size", 1)) * hidden
    embedding += 2 * hidden  # the embedding layer norm
    return {"layers": layers, "hidden": hidden, "intermediate": intermediate, "heads": heads,
            "attention_width": hidden, "encoder_params": layers * per_layer, "head_params": head,
            "non_embedding_params": layers * per_layer + head, "embedding_params": embedding}


def flops_per_pair(shape: dict[str, int], mean_tokens: float, mean_sq_tokens: float | None = None) -> float:
    """Forward FLOPs of one pair: encoder per token, head once, attention with the mean of T^2."""
    if mean_sq_tokens is None:
        mean_sq_tokens = mean_tokens ** 2
    dense = 2.0 * shape["encoder_params"] * mean_tokens + 2.0 * shape["head_params"]
    attention = 4.0 * shape["layers"] * shape.get("attention_width", shape["hidden"]) * mean_sq_tokens
    return dense + attention


def attention_share(shape: dict[str, int], mean_tokens: float, mean_sq_tokens: float | None = None) -> float:
    """The fraction of a pair's FLOPs spent in the T^2 attention term: what makes long pairs superlinear."""
    if mean_sq_tokens is None:
        mean_sq_tokens = mean_tokens ** 2
    return (4.0 * shape["layers"] * shape.get("attention_width", shape["hidden"]) * mean_sq_tokens
            / flops_per_pair(shape, mean_tokens, mean_sq_tokens))


def activation_bytes(shape: dict[str, int], batch: int, tokens: int, bytes_per_value: float) -> float:
    """Peak activations of one encoder layer at inference: the live hidden state, the FFN's widest tensor
    and one head-batched attention score matrix (plus its softmax), none kept across layers."""
    hidden_states = 3 * batch * tokens * shape["hidden"]
    ffn = batch * tokens * shape["intermediate"]
    scores = 2 * batch * shape["heads"] * tokens * tokens
    return (hidden_states + ffn + scores) * bytes_per_value


def weight_bytes(shape: dict[str, int], weights_format: str) -> float:
    matrices, embeddings = BYTES_PER_PARAM[weights_format]
    return shape["non_embedding_params"] * matrices + shape["embedding_params"] * embeddings


def memory_estimate_mb(shape: dict[str, int], weights_format: str, batch: int, tokens: int) -> float:
    """'Will it fit': weights as stored plus one batch's activations (no runtime overhead)."""
    activations = activation_bytes(shape, batch, tokens, 4.0 if weights_format in FP32_ACTIVATIONS else 2.0)
    return (weight_bytes(shape, weights_format) + activations) / 2**20
