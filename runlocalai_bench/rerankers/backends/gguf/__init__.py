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
from runlocalai_bench.rerankers.families import QWEN3_RERANKER, family_of
from runlocalai_bench.rerankers.llm import PromptEncoder

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


def check_rank_head_written(folder: Path, spec: str) -> None:
    """llama.cpp's converter writes Qwen3-Reranker's rank head only when it recognises the checkpoint (its model
    card's "# Qwen3-Reranker" heading, or the name in its folder or config): without that the file would be a plain
    LLM. A hub snapshot cached before model cards were fetched has none: a recorded skip saying so."""
    if family_of(spec, folder).rule is not QWEN3_RERANKER:
        return
    card = Path(folder) / "README.md"
    hints = [Path(folder).name.lower(), json.loads((Path(folder) / "config.json").read_text()).get("_name_or_path", "").lower()]
    if (card.is_file() and "# qwen3-reranker" in card.read_text(encoding="utf-8", errors="replace").lower()) or any(
            "qwen3-reranker" in h for h in hints):
        return
    raise VariantUnavailable(f"{folder}: llama.cpp's converter would not recognise this Qwen3-Reranker (no model card "
                             "README.md with its '# Qwen3-Reranker' heading): download the snapshot again with its "
                             "README.md")


def prepare(request: LoadRequest) -> None:
    """Convert to F16 with llama.cpp's converter and quantize from it (nothing for a user's own file)."""
    if request.user_file is None:
        check_convertible(request.folder)
        check_rank_head_written(request.folder, request.ref.spec)
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
    family = family_of(request.ref.spec, folder)
    encoder = None
    if family.rule is not None:  # an LLM reranker: the family's prompt, with the checkpoint's own tokenizer
        from transformers import AutoTokenizer

        encoder = PromptEncoder(AutoTokenizer.from_pretrained(str(folder), local_files_only=True), family.rule,
                                request.instruction)
        details.update(prompt_rule=family.rule.name, score=f"{family.rule.formula}, as log(p_yes) - log(p_no) of "
                       "llama.cpp's rank output (a softmax over the two answer tokens)",
                       instruction=(encoder.instruction if encoder.instruction is not None
                                    else family.rule.default_instruction),
                       template_tokens=encoder.template_tokens(),
                       tokenizer="the checkpoint's Hugging Face tokenizer (the ids the torch variants score)")
    reranker = LlamaCppReranker.load(request.variant, request.device, path, config, threads=request.threads,
                                     tokens_per_call=request.tokens_per_call or TOKENS_PER_CALL, encoder=encoder)
    reranker.details = {**details, **reranker.details}
    return reranker


def artifacts(variant: Variant) -> tuple[str, ...]:
    return (f"gguf/llama.cpp-*/model-{FILE_TYPES[variant.precision][0]}.gguf",)


# Which LLM rerankers have GGUF variants: llama.cpp's converter has a reranker mode for Qwen3-Reranker only (the
# "yes"/"no" rows of the LM head become a rank head; files converted before llama.cpp b6578 crash or score wrong,
# llama.cpp issues 13820 and 16407, so the file is always converted with the installed llama-cpp-python's own
# converter). mxbai-rerank-v2 (Qwen2) and bge-reranker-v2-gemma convert as plain LLMs with no rank head.
LLM_NOTE = ("llama.cpp's converter writes a rank head for Qwen3-Reranker only; mxbai-rerank-v2 and "
            "bge-reranker-v2-gemma convert as plain language models without one")
# llama-server's /rerank builds an LLM reranker's prompt from the GGUF's own template (the card's default
# instruction) with llama.cpp's tokenizer; the suite's served client does not drive that path yet.
SERVED_LLM_NOTE = ("the served client sends cross-encoder pairs; llama-server's prompt-template rerank path for "
                   "LLM rerankers is not driven by the suite yet")

BACKEND = Backend(name="gguf", extra="gguf", variants=VARIANTS, load=load, runtime_modules=("llama_cpp.llama",),
                  prepare=prepare, check_device=check_device, user_file_suffix=".gguf", artifacts=artifacts,
                  families=("classifier", QWEN3_RERANKER.name), family_note=LLM_NOTE)
