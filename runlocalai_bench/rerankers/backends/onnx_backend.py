"""ONNX Runtime through sentence-transformers (optimum export): fp32, and dynamic int8 with the preset that
matches this CPU. onnxruntime and optimum are imported inside the functions (optional extra, heavy).

On CUDA three things keep the numbers honest:
- TF32 off: ONNX Runtime's CUDA provider computes fp32 matmuls in TF32 unless ``use_tf32`` is 0, while this
  variant is recorded as fp32 and its MFU judged against the non-tensor fp32 peak; the option is set and read back.
- The provider read back from the session: a CUDA provider that fails to start (a missing cuDNN, a CPU-only
  wheel) makes ONNX Runtime fall back to the CPU quietly; that is a failure of this execution, never CPU numbers
  labelled cuda.
- Inputs on the GPU: with the CUDA provider optimum binds inputs and outputs to device memory (IO binding) and
  hands ONNX Runtime each input's ``data_ptr()`` as a device pointer; the reranker moves its inputs to the
  device first (``CrossEncoderReranker.inputs_on_device``).
"""

from __future__ import annotations

import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from runlocalai_bench.devices import device_index
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


CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"
# Distributions that install the one ``onnxruntime`` module: with two of them the last one installed wins file by
# file, and which build runs is anybody's guess.
RUNTIME_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")


class ProviderFallback(RuntimeError):
    """ONNX Runtime runs on another execution provider than the one asked for (a failure, not a skip)."""


def installed_runtimes() -> list[str]:
    found = []
    for name in RUNTIME_DISTRIBUTIONS:
        try:
            metadata.distribution(name)
            found.append(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def runtime_conflict(installed: list[str]) -> str | None:
    """Why the installed ONNX Runtime builds cannot be trusted (two distributions for one module), or None."""
    if len(installed) < 2:
        return None
    return (f"{' and '.join(installed)} are both installed and share the onnxruntime module: pip uninstall -y "
            f"{' '.join(installed)}, then install one (the 'onnx' extra for CPUs, 'onnx-gpu' for CUDA)")


def check_device(variant: Variant, device: str) -> None:
    conflict = runtime_conflict(installed_runtimes())
    if conflict:
        raise VariantUnavailable(conflict)
    if device.startswith("cuda"):
        import onnxruntime

        if CUDA_PROVIDER not in onnxruntime.get_available_providers():
            raise VariantUnavailable("onnxruntime here has no CUDAExecutionProvider (install the 'onnx-gpu' extra, "
                                     "which replaces onnxruntime with onnxruntime-gpu)")


def provider_for(device: str) -> tuple[str, dict[str, Any]]:
    """The execution provider ``device`` needs and its options: on CUDA the device's ordinal and TF32 off."""
    if not device.startswith("cuda"):
        return CPU_PROVIDER, {}
    # The arena grows by what each allocation asks for rather than doubling, so a job's GPU memory is closer to what
    # it needs. ONNX Runtime keeps its arena for the session's life: later (larger) jobs' peaks include earlier ones'.
    return CUDA_PROVIDER, {"device_id": device_index(device), "use_tf32": 0, "arena_extend_strategy": "kSameAsRequested"}


def check_provider(requested: str, in_use: list[str], options: dict[str, dict[str, Any]]) -> None:
    """Raise :class:`ProviderFallback` unless the session runs on ``requested`` first, and on CUDA with TF32
    off (``options``: the session's provider options, as ONNX Runtime reports them: strings)."""
    if not in_use or in_use[0] != requested:
        raise ProviderFallback(f"ONNX Runtime was asked for {requested} and runs on {', '.join(in_use) or 'nothing'} "
                               "(its log says why the provider did not start): these would be CPU numbers")
    if requested == CUDA_PROVIDER:
        tf32 = str(options.get(requested, {}).get("use_tf32", "unreported"))
        if tf32 != "0":
            raise ProviderFallback(f"ONNX Runtime's CUDA provider reports use_tf32={tf32}: fp32 would run in TF32")


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
    provider, provider_options = provider_for(request.device)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # The run's one thread count (ONNX Runtime's default is one per logical CPU, torch's one per physical core).
    options.intra_op_num_threads = request.threads
    ce = load_cross_encoder(target, request.device, max_length, backend="onnx",
                            model_kwargs={"file_name": file_name, "provider": provider, "session_options": options,
                                          "provider_options": provider_options})
    session = ce.model  # optimum's ORTModel around the ONNX Runtime session, asked what it really runs on
    in_use, options_in_use = session.providers, session.provider_options
    check_provider(provider, in_use, options_in_use)
    details.update(provider=in_use[0], threads=request.threads)
    if provider == CUDA_PROVIDER:
        details["use_tf32"] = options_in_use[provider].get("use_tf32")
        details["io_binding"] = bool(session.use_io_binding)
    files = [p for p in (target / file_name, target / (file_name + "_data")) if p.exists()]
    return CrossEncoderReranker(variant=request.variant, device=request.device, weight_files=files,
                                executed_precision=request.variant.precision, config=ce.model.config, details=details,
                                cross_encoder=ce, inputs_on_device=provider == CUDA_PROVIDER)


def artifacts(variant: Variant) -> tuple[str, ...]:
    return ("onnx-fp32",) + (("onnx-int8-*",) if variant.precision == "int8" else ())


BACKEND = Backend(name="onnx", extra="onnx", gpu_extra="onnx-gpu", variants=VARIANTS, load=load, emulates_half_on_cpu=True,
                  runtime_modules=("sentence_transformers",), prepare=prepare, check_device=check_device,
                  artifacts=artifacts,
                  family_note="the suite's ONNX path exports sequence classifiers (optimum's text-classification "
                              "task); an LLM reranker needs a text-generation export read at the last position, "
                              "which it does not build yet")
