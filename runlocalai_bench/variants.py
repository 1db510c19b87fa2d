"""The variant registry: which backend and precision a variant means, and where it can run.

Kept free of heavy imports so parameter validation and ``runlocalai-bench variants`` stay instant;
the loading code lives in :mod:`runlocalai_bench.backends`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    backend: str  # torch | onnx | openvino | gguf
    precision: str  # fp32 | fp16 | bf16 | int8; GGUF file types f16 | q8_0 | q4_k_m
    devices: tuple[str, ...]
    requires: tuple[str, ...]  # importable modules; missing ones turn the variant into a recorded skip
    description: str

    def missing_modules(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m.split(".")[0]) is None]


_ALL_TORCH = ("cpu", "cuda", "mps")
_REGISTRY = [
    Variant("torch-fp32", "torch", "fp32", _ALL_TORCH, ("torch",), "PyTorch, float32 weights and compute (reference)"),
    Variant("torch-fp16", "torch", "fp16", _ALL_TORCH, ("torch",), "PyTorch, weights cast to float16"),
    Variant("torch-bf16", "torch", "bf16", _ALL_TORCH, ("torch",), "PyTorch, weights cast to bfloat16 (AMX on recent x86)"),
    Variant(
        "torch-int8", "torch", "int8", ("cpu",), ("torch", "torchao"),
        "torchao dynamic int8 activations x int8 weights on every Linear layer",
    ),
    Variant(
        "onnx-fp32", "onnx", "fp32", ("cpu", "cuda"), ("onnxruntime", "optimum.onnxruntime"),
        "ONNX Runtime, float32 export via optimum",
    ),
    Variant(
        "onnx-int8", "onnx", "int8", ("cpu",), ("onnxruntime", "optimum.onnxruntime"),
        "ONNX Runtime, dynamic int8 quantization (sentence-transformers export helper)",
    ),
    Variant(
        "openvino-fp32", "openvino", "fp32", ("cpu",), ("openvino", "optimum.intel"),
        "OpenVINO IR in float32, inference precision pinned to f32",
    ),
    Variant(
        "openvino-bf16", "openvino", "bf16", ("cpu",), ("openvino", "optimum.intel"),
        "OpenVINO IR, inference precision pinned to bf16 (OpenVINO's own default on AMX CPUs)",
    ),
    Variant(
        "openvino-int8", "openvino", "int8", ("cpu",), ("openvino", "optimum.intel", "nncf"),
        "OpenVINO IR, static int8 (nncf) calibrated on the run's own query-document pairs",
    ),
    Variant(
        "gguf-f16", "gguf", "f16", ("cpu", "cuda"), ("llama_cpp", "gguf"),
        "llama.cpp (llama-cpp-python), GGUF F16 from llama.cpp's converter, rank pooling",
    ),
    Variant(
        "gguf-q8_0", "gguf", "q8_0", ("cpu", "cuda"), ("llama_cpp", "gguf"),
        "llama.cpp, GGUF Q8_0 (8-bit blocks of 32) quantized from the F16 file",
    ),
    Variant(
        "gguf-q4_k_m", "gguf", "q4_k_m", ("cpu", "cuda"), ("llama_cpp", "gguf"),
        "llama.cpp, GGUF Q4_K_M (4-bit k-quants, some tensors 6-bit): the usual local-AI starting point",
    ),
]
VARIANTS: dict[str, Variant] = {v.name: v for v in _REGISTRY}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; accepted: {', '.join(VARIANTS)}") from None
