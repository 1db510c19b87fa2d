"""OpenVINO IR through sentence-transformers (optimum-intel export): fp32 and bf16 with the inference precision
pinned, and static int8 by nncf. openvino, optimum-intel and nncf are imported inside the functions."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

from runlocalai_bench.rerankers.base import Backend, LoadRequest, Pair, Variant, VariantUnavailable
from runlocalai_bench.rerankers.crossencoder import CrossEncoderReranker, load_cross_encoder
from runlocalai_bench.rerankers.exports import export_once

REQUIRES = ("openvino", "optimum.intel")
VARIANTS = (
    Variant("openvino-fp32", "openvino", "fp32", ("cpu",), REQUIRES,
            "OpenVINO IR in float32, inference precision pinned to f32"),
    Variant("openvino-bf16", "openvino", "bf16", ("cpu",), REQUIRES,
            "OpenVINO IR, inference precision pinned to bf16 (OpenVINO's own default on AMX CPUs)"),
    Variant("openvino-int8", "openvino", "int8", ("cpu",), REQUIRES + ("nncf",),
            "OpenVINO IR, static int8 (nncf) calibrated on pairs of queries the run does not evaluate", calibrated=True),
)


def _executed_precision(ce: Any, quantized: bool) -> str:
    """What the compiled model runs in. The inference-precision hint covers the ops that are not quantized: on
    an AMX CPU OpenVINO picks bf16 for them, so a static int8 model reads "int8 matmuls, bf16 elsewhere" (the
    hint alone, "bf16", would hide the int8)."""
    try:
        hint = ce.model.request.get_property("INFERENCE_PRECISION_HINT")
        hint = hint.to_string() if hasattr(hint, "to_string") else str(hint)
    except Exception:  # noqa: BLE001 - property names differ across OpenVINO versions; record what we can
        hint = "unknown"
    return f"int8 matmuls, {hint} elsewhere" if quantized else hint


def _exports(request: LoadRequest) -> tuple[Path, str, dict[str, str], dict[str, Any]]:
    """The IR folder, the model file inside it, the inference-precision hint and the quantization details;
    builds what is missing (the float IR; for int8, nncf's calibrated copy)."""
    folder, max_length, precision = request.folder, request.max_length, request.variant.precision
    fp32 = export_once(request.exports / "openvino-fp32", lambda staging: load_cross_encoder(
        folder, "cpu", max_length, backend="openvino").save_pretrained(str(staging)))
    file_name, hint, details = "openvino/openvino_model.xml", {"INFERENCE_PRECISION_HINT": "f32"}, {}
    target = fp32
    if precision == "bf16":
        hint = {"INFERENCE_PRECISION_HINT": "bf16"}
    elif precision == "int8":
        pairs = request.calibration_pairs
        if not pairs:
            raise VariantUnavailable(
                "openvino-int8 calibrates on queries the run does not evaluate, and this run has none: no dataset "
                "of it has a train split in ir_datasets and every query of each is evaluated (stages/first_stage.json, "
                "'calibration'); calibrating on the evaluated pairs would leak test data")
        digest = hashlib.sha256(json.dumps(list(pairs)).encode()).hexdigest()[:10]

        def quantize(staging: Path) -> None:
            shutil.copytree(fp32, staging)
            _nncf_quantize(staging, max_length, pairs)

        target = export_once(request.exports / f"openvino-int8-cal{digest}", quantize)
        file_name, hint = "openvino/openvino_model_qint8_static.xml", {}
        details["quantization"] = (f"nncf static int8, calibrated on {len(pairs)} pairs of queries outside the evaluated "
                                   f"set ({digest})")
    return target, file_name, hint, details


def prepare(request: LoadRequest) -> None:
    _exports(request)


def load(request: LoadRequest) -> CrossEncoderReranker:
    target, file_name, hint, details = _exports(request)
    precision, max_length = request.variant.precision, request.max_length
    # The run's one thread count (OpenVINO's CPU plugin otherwise picks its own from the machine's cores).
    ov_config = {**hint, "INFERENCE_NUM_THREADS": str(request.threads)}
    ce = load_cross_encoder(target, request.device, max_length, backend="openvino",
                            model_kwargs={"file_name": file_name, "ov_config": ov_config})
    xml = target / file_name
    return CrossEncoderReranker(variant=request.variant, device=request.device, weight_files=[xml, xml.with_suffix(".bin")],
                                executed_precision=_executed_precision(ce, precision == "int8"), config=ce.model.config,
                                details={**details, "ov_config": ov_config, "threads": request.threads}, cross_encoder=ce)


def _nncf_quantize(folder: Path, max_length: int, pairs: Sequence[Pair]) -> None:
    """Static int8 quantization of the OpenVINO IR in ``folder``, calibrated on ``pairs`` (one per item)."""
    import nncf
    import openvino as ov

    ce = load_cross_encoder(folder, "cpu", max_length, backend="openvino")
    ov_model = ce.model.model
    input_names = {port.get_any_name() for port in ov_model.inputs}
    items = []
    for query, doc in pairs:
        features = ce.tokenizer([query], [doc], truncation="longest_first", max_length=max_length, return_tensors="np")
        items.append({k: v for k, v in features.items() if k in input_names})
    quantized = nncf.quantize(ov_model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(items))
    ov.save_model(quantized, str(folder / "openvino" / "openvino_model_qint8_static.xml"))


def artifacts(variant: Variant) -> tuple[str, ...]:
    # int8 is calibrated on each run's own calibration pairs: a cached file fits only the run that made it.
    return ("openvino-fp32",) + (("openvino-int8-cal*",) if variant.precision == "int8" else ())


BACKEND = Backend(name="openvino", extra="openvino", variants=VARIANTS, load=load,
                  runtime_modules=("sentence_transformers",), prepare=prepare, artifacts=artifacts,
                  family_note="the suite's OpenVINO path exports sequence classifiers (optimum-intel's "
                              "text-classification task); an LLM reranker needs a text-generation export read at "
                              "the last position, which it does not build yet")
