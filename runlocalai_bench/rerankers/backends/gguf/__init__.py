"""llama.cpp with GGUF files (F16 from llama.cpp's own converter, Q8_0 and Q4_K_M quantized from it), scored
with rank pooling as ``llama-server``'s ``/rerank`` does. :mod:`.convert` writes the files, :mod:`.llamacpp`
scores with them. llama_cpp, gguf and transformers are imported inside the functions (optional extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runlocalai_bench.rerankers.backends.gguf.convert import FILE_TYPES, gguf_file, llama_cpp_version
from runlocalai_bench.rerankers.backends.gguf.llamacpp import TOKENS_PER_CALL, LlamaCppReranker
from runlocalai_bench.rerankers.base import Backend, LoadRequest, Variant, VariantUnavailable

REQUIRES = ("llama_cpp", "gguf")
DEVICES = ("cpu", "cuda")
VARIANTS = (
    Variant("gguf-f16", "gguf", "f16", DEVICES, REQUIRES,
            "llama.cpp (llama-cpp-python), GGUF F16 from llama.cpp's converter, rank pooling"),
    Variant("gguf-q8_0", "gguf", "q8_0", DEVICES, REQUIRES, "llama.cpp, GGUF Q8_0 (8-bit blocks of 32) quantized from the F16 file"),
    Variant("gguf-q4_k_m", "gguf", "q4_k_m", DEVICES, REQUIRES,
            "llama.cpp, GGUF Q4_K_M (4-bit k-quants, some tensors 6-bit): the usual local-AI starting point"),
)

# Heads llama.cpp's converter and rank-pooling graph do not reproduce: the graph computes
# out_proj(tanh(dense(h_cls))) when a dense layer is present, out_proj(h_cls) otherwise.
UNFAITHFUL_HEADS = {
    "BertForSequenceClassification": "the converter drops BERT's pooler (tanh(pooler.dense)), so the classifier "
                                     "would read the raw [CLS] state",
    "DistilBertForSequenceClassification": "DistilBERT's pre_classifier is followed by ReLU, the rank graph applies tanh",
}


def check_convertible(folder: Path) -> None:
    """Refuse checkpoints whose GGUF would not be the same model (see :data:`UNFAITHFUL_HEADS`): a BERT
    cross-encoder such as ms-marco-MiniLM would score differently in GGUF. XLM-R/RoBERTa heads (dense, tanh,
    out_proj) convert faithfully: bge-reranker-v2-m3 is one."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return
    for architecture in json.loads(config_file.read_text()).get("architectures") or []:
        if architecture in UNFAITHFUL_HEADS:
            raise VariantUnavailable(
                f"{folder}: {architecture} cannot be represented in GGUF: {UNFAITHFUL_HEADS[architecture]}; "
                "GGUF variants support XLM-RoBERTa/RoBERTa cross-encoders")


def check_device(variant: Variant, device: str) -> None:
    if device.startswith("cuda"):
        import llama_cpp

        if not llama_cpp.llama_supports_gpu_offload():
            raise VariantUnavailable("llama-cpp-python here was built without a GPU backend "
                                     "(rebuild with CMAKE_ARGS=-DGGML_CUDA=on)")


def prepare(request: LoadRequest) -> None:
    """Convert to F16 with llama.cpp's converter and quantize from it (nothing for a user's own file)."""
    if request.user_file is None:
        check_convertible(request.folder)
        gguf_file(request.folder, request.exports, request.variant.precision)


def load(request: LoadRequest) -> LlamaCppReranker:
    from transformers import AutoConfig

    folder, precision = request.folder, request.variant.precision
    check_convertible(folder)
    details: dict[str, Any] = {"llama_cpp_python": llama_cpp_version()}
    if request.user_file is not None:
        path = request.user_file
        details["source"] = f"user file {path.name}"
    else:
        path = gguf_file(folder, request.exports, precision)
        details["source"] = "llama.cpp convert_hf_to_gguf.py (F16)" + (
            "" if precision == "f16" else f" then llama_model_quantize to {precision.upper()}")
    config = AutoConfig.from_pretrained(folder, local_files_only=True) if (folder / "config.json").is_file() else None
    reranker = LlamaCppReranker.load(request.variant, request.device, path, config, threads=request.threads,
                                     tokens_per_call=request.tokens_per_call or TOKENS_PER_CALL)
    reranker.details = {**details, **reranker.details}
    return reranker


def artifacts(variant: Variant) -> tuple[str, ...]:
    return (f"gguf/llama.cpp-*/model-{FILE_TYPES[variant.precision][0]}.gguf",)


# Why an LLM reranker has no GGUF variant here yet (also the llama-server variants' reason).
LLM_NOTE = ("llama.cpp scores Qwen3-Reranker through rank pooling over a GGUF its converter writes in reranker mode "
            "(files converted before llama.cpp b6578 score wrong: llama.cpp issues 13820, 16407); the suite does "
            "not build that conversion yet")

BACKEND = Backend(name="gguf", extra="gguf", variants=VARIANTS, load=load, runtime_modules=("llama_cpp.llama",),
                  prepare=prepare, check_device=check_device, user_file_suffix=".gguf", artifacts=artifacts,
                  family_note=LLM_NOTE)
