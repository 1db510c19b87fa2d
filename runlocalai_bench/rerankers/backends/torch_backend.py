"""PyTorch eager: fp32 (the reference every other variant is compared with), fp16, bf16, and torchao's dynamic
int8. Cross-encoders load through sentence-transformers' ``CrossEncoder``; LLM rerankers (Qwen3-Reranker,
mxbai-v2, bge-gemma) through transformers' causal LM and their family's prompt (rerankers/llm.py). torch and
torchao are imported inside the loader (heavy, optional)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runlocalai_bench.devices import precision_unavailable
from runlocalai_bench.rerankers.base import Backend, LoadRequest, Variant, VariantUnavailable
from runlocalai_bench.rerankers.crossencoder import CrossEncoderReranker, load_cross_encoder
from runlocalai_bench.rerankers.families import LLM, family_of
from runlocalai_bench.rerankers.llm import LLMReranker, PromptEncoder

ALL_DEVICES = ("cpu", "cuda", "mps")
VARIANTS = (
    Variant("torch-fp32", "torch", "fp32", ALL_DEVICES, ("torch",), "PyTorch, float32 weights and compute (reference)"),
    Variant("torch-fp16", "torch", "fp16", ALL_DEVICES, ("torch",), "PyTorch, weights cast to float16"),
    Variant("torch-bf16", "torch", "bf16", ALL_DEVICES, ("torch",), "PyTorch, weights cast to bfloat16 (AMX on recent x86)"),
    Variant("torch-int8", "torch", "int8", ("cpu",), ("torch", "torchao"),
            "torchao dynamic int8 activations x int8 weights on every Linear layer"),
)


def _tensor_bytes(tensor: Any) -> int:
    """Bytes of a tensor, counting the int8 data and scales inside torchao's quantized tensor subclasses."""
    inner = [getattr(tensor, name) for name in getattr(tensor, "tensor_data_names", [])] if hasattr(
        tensor, "tensor_data_names") else []
    if inner:
        return sum(_tensor_bytes(t) for t in inner if t is not None)
    return tensor.numel() * tensor.element_size()


@dataclass(eq=False, kw_only=True)
class TorchReranker(CrossEncoderReranker):
    runs_in_torch: bool = True
    inputs_on_device: bool = True

    @property
    def weight_bytes(self) -> int:
        """Bytes of parameters and buffers in memory at the variant's precision (what an export at it weighs)."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return int(sum(_tensor_bytes(t) for t in tensors))


@dataclass(eq=False, kw_only=True)
class TorchLLMReranker(LLMReranker):
    @property
    def weight_bytes(self) -> int:
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return int(sum(_tensor_bytes(t) for t in tensors))


def _quantize_int8(model: Any) -> str:
    """torchao's dynamic int8 on every Linear layer of ``model``, in place; returns what was done."""
    import torch
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    # transformers maps the safetensors file and the fp32 tensors alias that mapping: quantizing touches every
    # Linear weight, and those file pages stay resident as long as any tensor (the embeddings) keeps the
    # mapping alive, so int8 would hold the int8 copy *and* the fp32 pages. Moving the parameters into the
    # process's own memory first releases the mapping; the fp32 Linear weights are then freed as quantize_
    # replaces them.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.data = parameter.data.clone()
    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    return "torchao Int8DynamicActivationInt8WeightConfig (all nn.Linear)"


def _load_llm(request: LoadRequest, dtype: Any, details: dict[str, Any]) -> TorchLLMReranker:
    """A causal LM reranker: transformers' model at ``dtype``, its tokenizer, its family's prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rule = family_of(request.ref.spec, request.folder).rule
    tokenizer = AutoTokenizer.from_pretrained(str(request.folder), local_files_only=True,
                                              trust_remote_code=request.trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(str(request.folder), dtype=dtype, local_files_only=True,
                                                 trust_remote_code=request.trust_remote_code).to(request.device)
    model.eval()
    if request.variant.precision == "int8":
        details["quantization"] = _quantize_int8(model)
    encoder = PromptEncoder(tokenizer, rule, request.instruction)
    details.update(prompt_rule=rule.name, score=rule.formula, prompt_source=rule.source,
                   instruction=(request.instruction if request.instruction is not None else rule.default_instruction)
                   if any("{instruction}" in segment for segment in rule.segments) else "none (the family's prompt has no instruction)",
                   template_tokens=encoder.template_tokens(),
                   truncation="query and document cut longest-first to max_length tokens together; the template "
                              "is never cut and comes on top")
    return TorchLLMReranker(variant=request.variant, device=request.device, weight_files=_weight_files(request),
                            executed_precision=_executed(request), config=model.config, details=details,
                            model=model, encoder=encoder)


def _weight_files(request: LoadRequest) -> list:
    return sorted(request.folder.glob("*.safetensors")) or sorted(request.folder.glob("pytorch_model*.bin"))


def _executed(request: LoadRequest) -> str:
    return {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "int8 linear, fp32 elsewhere"}[request.variant.precision]


def load(request: LoadRequest) -> TorchReranker | TorchLLMReranker:
    import torch

    variant = request.variant
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "int8": torch.float32}[variant.precision]
    if request.device.startswith("cuda"):
        # fp32 means fp32: TF32 tensor-core matmuls would be faster and judged against the wrong peak. torch's
        # default is already "highest"; a library imported on the way may have lowered it for the process.
        torch.set_float32_matmul_precision("highest")
    details: dict[str, Any] = {"threads": torch.get_num_threads()}  # set by the registry for every backend
    if request.device.startswith("cuda"):
        details["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    remote: dict[str, Any] = {}
    if request.trust_remote_code:
        details["trust_remote_code"] = f"allowed for {request.ref.spec} at {request.ref.revision}" + (
            f", its code repository at {request.code_revision}" if request.code_revision else "")
        # transformers fetches code named "repo--module.Class" at that repository's main unless told the commit
        remote = {"code_revision": request.code_revision} if request.code_revision else {}
    if family_of(request.ref.spec, request.folder).kind == LLM:
        return _load_llm(request, dtype, details)
    ce = load_cross_encoder(request.folder, request.device, request.max_length, model_kwargs={"dtype": dtype, **remote},
                            config_kwargs=remote or None, processor_kwargs=remote or None,
                            trust_remote_code=request.trust_remote_code)
    ce.model.eval()
    if variant.precision == "int8":
        details["quantization"] = _quantize_int8(ce.model)
    return TorchReranker(variant=variant, device=request.device, weight_files=_weight_files(request),
                         executed_precision=_executed(request), config=ce.model.config, details=details,
                         cross_encoder=ce)


def check_device(variant: Variant, device: str) -> None:
    """A half precision the GPU has no native arithmetic for (bf16 before Ampere) is a recorded skip."""
    reason = precision_unavailable(variant.precision, device)
    if reason:
        raise VariantUnavailable(reason)


# torch itself is a core dependency; the extra covers what torch-int8 adds.
BACKEND = Backend(name="torch", extra="torchao", variants=VARIANTS, load=load, runtime_modules=("sentence_transformers",),
                  emulates_half_on_cpu=True, families=("classifier", "llm"), remote_code=True,
                  check_device=check_device)
