"""PyTorch eager through sentence-transformers: fp32 (the reference every other variant is compared with),
fp16, bf16, and torchao's dynamic int8. torch and torchao are imported inside the loader (heavy, optional)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runlocalai_bench.devices import precision_unavailable
from runlocalai_bench.rerankers.base import Backend, LoadRequest, Variant, VariantUnavailable
from runlocalai_bench.rerankers.crossencoder import CrossEncoderReranker, load_cross_encoder

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


def load(request: LoadRequest) -> TorchReranker:
    import torch

    variant = request.variant
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "int8": torch.float32}[variant.precision]
    if request.device.startswith("cuda"):
        # fp32 means fp32: TF32 tensor-core matmuls would be faster and judged against the wrong peak. torch's
        # default is already "highest"; a library imported on the way may have lowered it for the process.
        torch.set_float32_matmul_precision("highest")
    ce = load_cross_encoder(request.folder, request.device, request.max_length, model_kwargs={"dtype": dtype})
    ce.model.eval()
    details: dict[str, Any] = {"threads": torch.get_num_threads()}  # set by the registry for every backend
    if request.device.startswith("cuda"):
        details["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    if variant.precision == "int8":
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        # transformers maps the safetensors file and the fp32 tensors alias that mapping: quantizing touches every
        # Linear weight, and those file pages stay resident as long as any tensor (the embeddings) keeps the
        # mapping alive, so int8 would hold the int8 copy *and* the fp32 pages. Moving the parameters into the
        # process's own memory first releases the mapping; the fp32 Linear weights are then freed as quantize_
        # replaces them.
        with torch.no_grad():
            for parameter in ce.model.parameters():
                parameter.data = parameter.data.clone()
        quantize_(ce.model, Int8DynamicActivationInt8WeightConfig())
        details["quantization"] = "torchao Int8DynamicActivationInt8WeightConfig (all nn.Linear)"
    files = sorted(request.folder.glob("*.safetensors")) or sorted(request.folder.glob("pytorch_model*.bin"))
    executed = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "int8 linear, fp32 elsewhere"}[variant.precision]
    return TorchReranker(variant=variant, device=request.device, weight_files=files, executed_precision=executed,
                         config=ce.model.config, details=details, cross_encoder=ce)


def check_device(variant: Variant, device: str) -> None:
    """A half precision the GPU has no native arithmetic for (bf16 before Ampere) is a recorded skip."""
    reason = precision_unavailable(variant.precision, device)
    if reason:
        raise VariantUnavailable(reason)


# torch itself is a core dependency; the extra covers what torch-int8 adds.
BACKEND = Backend(name="torch", extra="torchao", variants=VARIANTS, load=load, runtime_modules=("sentence_transformers",),
                  emulates_half_on_cpu=True,
                  check_device=check_device)
