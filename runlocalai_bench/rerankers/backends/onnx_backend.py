"""ONNX Runtime through sentence-transformers (optimum export): fp32, and dynamic int8 with the preset that
matches this CPU. onnxruntime and optimum are imported inside the functions (optional extra, heavy)."""

from __future__ import annotations

import platform
import shutil
from pathlib import Path
from typing import Any

from runlocalai_bench.environment import cpu_info
from runlocalai_bench.rerankers.base import Backend, LoadRequest, Variant, VariantUnavailable
from runlocalai_bench.rerankers.crossencoder import CrossEncoderReranker, load_cross_encoder
from runlocalai_bench.rerankers.exports import export_once

REQUIRES = ("onnxruntime", "optimum.onnxruntime")
VARIANTS = (
    Variant("onnx-fp32", "onnx", "fp32", ("cpu", "cuda"), REQUIRES, "ONNX Runtime, float32 export via optimum"),
    Variant("onnx-int8", "onnx", "int8", ("cpu",), REQUIRES,
            "ONNX Runtime, dynamic int8 quantization (sentence-transformers export helper)"),
)


def quantization_preset() -> str:
    """The ONNX Runtime dynamic-quantization preset matching this CPU's vector extensions."""
    flags = set(cpu_info()["flags"])
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "arm64" if platform.machine() in ("arm64", "aarch64") else "avx2"


def check_device(variant: Variant, device: str) -> None:
    if device.startswith("cuda"):
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise VariantUnavailable("onnxruntime here has no CUDAExecutionProvider (install onnxruntime-gpu)")


def _exports(request: LoadRequest) -> tuple[Path, str, dict[str, Any]]:
    """The export folder, the ONNX file inside it and what the quantization was; builds what is missing."""
    folder, max_length = request.folder, request.max_length
    fp32 = export_once(request.exports / "onnx-fp32", lambda staging: load_cross_encoder(
        folder, "cpu", max_length, backend="onnx").save_pretrained(str(staging)))
    file_name = "onnx/model.onnx"
    details: dict[str, Any] = {}
    if request.variant.precision == "int8":
        preset = quantization_preset()

        def quantize(staging: Path) -> None:
            from sentence_transformers.backend import export_dynamic_quantized_onnx_model

            shutil.copytree(fp32, staging)
            export_dynamic_quantized_onnx_model(load_cross_encoder(staging, "cpu", max_length, backend="onnx"), preset,
                                                str(staging))

        target = export_once(request.exports / f"onnx-int8-{preset}", quantize)
        # The helper names the file after its data type: qint8 for avx512/vnni presets, quint8 for avx2/arm64.
        quantized = sorted((target / "onnx").glob(f"model_q*int8_{preset}.onnx"))
        if not quantized:
            raise FileNotFoundError(f"{target / 'onnx'}: no int8 model for preset {preset} (export incomplete?)")
        file_name = f"onnx/{quantized[0].name}"
        details["quantization"] = f"onnxruntime dynamic int8, preset {preset}"
    else:
        target = fp32
    return target, file_name, details


def prepare(request: LoadRequest) -> None:
    _exports(request)


def load(request: LoadRequest) -> CrossEncoderReranker:
    target, file_name, details = _exports(request)
    max_length = request.max_length
    provider = "CUDAExecutionProvider" if request.device.startswith("cuda") else "CPUExecutionProvider"
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # The run's one thread count (ONNX Runtime's default is one per logical CPU, torch's one per physical core).
    options.intra_op_num_threads = request.threads
    ce = load_cross_encoder(target, request.device, max_length, backend="onnx",
                            model_kwargs={"file_name": file_name, "provider": provider, "session_options": options})
    files = [p for p in (target / file_name, target / (file_name + "_data")) if p.exists()]
    return CrossEncoderReranker(variant=request.variant, device=request.device, weight_files=files,
                                executed_precision=request.variant.precision, config=ce.model.config,
                                details={**details, "provider": provider, "threads": request.threads}, cross_encoder=ce)


def artifacts(variant: Variant) -> tuple[str, ...]:
    return ("onnx-fp32",) + (("onnx-int8-*",) if variant.precision == "int8" else ())


BACKEND = Backend(name="onnx", extra="onnx", variants=VARIANTS, load=load,
                  runtime_modules=("sentence_transformers",), prepare=prepare, check_device=check_device,
                  artifacts=artifacts)
