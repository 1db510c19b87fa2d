"""Loading a reranker in one variant on one device, and scoring query-document pairs with it.

Every backend but GGUF goes through sentence-transformers' ``CrossEncoder`` (torch, ONNX Runtime via
optimum, OpenVINO via optimum-intel), so tokenization and the model call are the same code for all of them.
GGUF variants run in llama.cpp (:mod:`runlocalai_bench.llamacpp`) with the file's own vocabulary, as its
users run them. Exports and quantized files are written once under
``<cache>/exports/<model>-<fingerprint>/<variant>``.

Scores are the raw relevance logits upcast to float32. No sigmoid: in half precision a sigmoid maps
most relevant documents to exactly 1.0, turning a ranking into ties.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runlocalai_bench.environment import cpu_info
from runlocalai_bench.models import ModelRef
from runlocalai_bench.variants import Variant

log = logging.getLogger(__name__)
Pair = tuple[str, str]


class VariantUnavailable(RuntimeError):
    """This variant cannot run here (device absent, backend missing): a recorded skip, not a failure."""


def scores_from_logits(logits: Any) -> np.ndarray:
    """Relevance scores from a model's logits: float32 first, never an activation.

    One-label rerankers (bge-reranker) give the logit itself; two-label classifiers give the margin of the
    positive class, which orders pairs the same way a softmax would without squashing them into ties.
    """
    import torch

    logits = logits.detach().to(torch.float32) if isinstance(logits, torch.Tensor) else torch.as_tensor(
        np.asarray(logits, dtype=np.float32))
    if logits.ndim == 2 and logits.shape[1] == 2:
        logits = logits[:, 1] - logits[:, 0]
    return logits.reshape(-1).cpu().numpy().astype(np.float32)


def check_device(variant: Variant, device: str) -> None:
    """Raise :class:`VariantUnavailable` with the reason when ``variant`` cannot run on ``device``."""
    missing = variant.missing_modules()
    if missing:
        raise VariantUnavailable(f"{variant.name} needs {', '.join(missing)} (install the '{variant.backend}' extra)")
    kind = device.split(":")[0]
    if kind not in variant.devices:
        raise VariantUnavailable(f"{variant.name} runs on {', '.join(variant.devices)}, not {device}")
    import torch

    if kind == "cuda" and not torch.cuda.is_available():
        raise VariantUnavailable(f"{device} requested but torch sees no CUDA device on this machine")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise VariantUnavailable("mps requested but this machine has no Apple MPS device")
    if variant.backend == "onnx" and kind == "cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise VariantUnavailable("onnxruntime here has no CUDAExecutionProvider (install onnxruntime-gpu)")
    if variant.backend == "gguf" and kind == "cuda":
        import llama_cpp

        if not llama_cpp.llama_supports_gpu_offload():
            raise VariantUnavailable("llama-cpp-python here was built without a GPU backend "
                                     "(rebuild with CMAKE_ARGS=-DGGML_CUDA=on)")


@dataclass
class ScoreRun:
    scores: np.ndarray  # float32, in the order of the input pairs
    batch_seconds: list[float]
    batch_pairs: list[int]
    tokens: int  # real (non-pad) tokens
    padded_tokens: int  # tokens the model computed on, pads included

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.tokens / self.padded_tokens if self.padded_tokens else 0.0


@dataclass
class Reranker:
    variant: Variant
    device: str
    cross_encoder: Any
    folder: Path  # the checkpoint or export folder it was loaded from
    weight_files: list[Path]
    load_s: float
    executed_precision: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> Any:
        return self.cross_encoder.model

    @property
    def config(self) -> Any:
        return self.cross_encoder.model.config

    @property
    def tokenizer(self) -> Any:
        return self.cross_encoder.tokenizer

    @property
    def file_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.weight_files if p.is_file())

    @property
    def param_bytes(self) -> int | None:
        """Bytes of weights in memory at the variant's precision (torch only; what an export at it weighs)."""
        if self.variant.backend != "torch":
            return None
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return int(sum(_tensor_bytes(t) for t in tensors))

    def tokenize(self, pairs: Sequence[Pair], max_length: int) -> dict[str, Any]:
        return self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True, truncation="longest_first",
                              max_length=max_length, return_tensors="pt")

    def token_lengths(self, pairs: Sequence[Pair], max_length: int) -> np.ndarray:
        encoded = self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], truncation="longest_first",
                                 max_length=max_length, return_attention_mask=False, return_token_type_ids=False)
        return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)

    def forward(self, features: dict[str, Any]) -> np.ndarray:
        """Model only: features in, float32 scores out (device work finished when this returns)."""
        import torch

        if self.variant.backend == "torch":
            features = {k: v.to(self.device) for k, v in features.items()}
            with torch.inference_mode():
                logits = self.model(**features, return_dict=True).logits
            synchronize(self.device)
            return scores_from_logits(logits)
        return scores_from_logits(self.model(**features).logits)

    def score(self, pairs: Sequence[Pair], batch_size: int, max_length: int, length_sorted: bool = True) -> ScoreRun:
        """End to end (text in, scores out). Pairs are tokenized once; with ``length_sorted`` batches hold
        pairs of similar length, which cuts the pad tokens the model computes on. Scores come back in input
        order either way."""
        encoded = self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], truncation="longest_first",
                                 max_length=max_length)
        lengths = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable") if length_sorted else np.arange(len(pairs))
        scores = np.empty(len(pairs), dtype=np.float32)
        seconds, sizes, padded = [], [], 0
        for start in range(0, len(pairs), batch_size):
            index = order[start:start + batch_size]
            began = time.perf_counter()
            features = self.tokenizer.pad({k: [v[i] for i in index] for k, v in encoded.items()}, return_tensors="pt")
            scores[index] = self.forward(features)
            seconds.append(time.perf_counter() - began)
            sizes.append(len(index))
            padded += int(features["attention_mask"].numel())
        return ScoreRun(scores, seconds, sizes, int(lengths.sum()), padded)


def _tensor_bytes(tensor: Any) -> int:
    """Bytes of a tensor, counting the int8 data and scales inside torchao's quantized tensor subclasses."""
    inner = [getattr(tensor, name) for name in getattr(tensor, "tensor_data_names", [])] if hasattr(
        tensor, "tensor_data_names") else []
    if inner:
        return sum(_tensor_bytes(t) for t in inner if t is not None)
    return tensor.numel() * tensor.element_size()


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    elif device == "mps":
        torch.mps.synchronize()


# ------------------------------------------------------------------------------------------- loading


def export_root(ref: ModelRef, cache_dir: Path) -> Path:
    slug = ref.spec.replace("/", "--").replace(":", "-")
    return Path(cache_dir) / "exports" / f"{slug}-{ref.fingerprint}"


def load_reranker(
    variant: Variant, device: str, folder: Path, ref: ModelRef, cache_dir: Path, max_length: int,
    calibration_pairs: Sequence[Pair] = (), gguf_file: Path | None = None,
) -> Any:
    """Load ``folder`` (a local checkpoint: hub snapshot, twin or user folder) as ``variant`` on ``device``.

    Returns a :class:`Reranker`, or for GGUF variants a :class:`~runlocalai_bench.llamacpp.LlamaCppReranker`
    (same surface). ``gguf_file`` replaces the conversion of ``folder`` with an existing file."""
    check_device(variant, device)
    started = time.perf_counter()
    if variant.backend == "gguf":
        reranker = _load_gguf(variant, device, Path(folder), export_root(ref, cache_dir), gguf_file)
    else:
        loader = {"torch": _load_torch, "onnx": _load_onnx, "openvino": _load_openvino}[variant.backend]
        reranker = loader(variant, device, Path(folder), export_root(ref, cache_dir), max_length, calibration_pairs)
    reranker.load_s = time.perf_counter() - started
    return reranker


def _load_gguf(variant: Variant, device: str, folder: Path, exports: Path, gguf_file: Path | None) -> Any:
    from transformers import AutoConfig

    from runlocalai_bench.gguf_export import gguf_file as converted, llama_cpp_version, tensor_types
    from runlocalai_bench.llamacpp import LlamaCppReranker

    check_gguf_convertible(folder)
    details: dict[str, Any] = {"llama_cpp_python": llama_cpp_version()}
    if gguf_file is not None:
        path = Path(gguf_file)
        details["source"] = f"user file {path}"
    else:
        path = converted(folder, exports, variant.precision)
        details["source"] = "llama.cpp convert_hf_to_gguf.py (F16)" + (
            "" if variant.precision == "f16" else f" then llama_model_quantize to {variant.precision.upper()}")
    details["tensor_types"] = tensor_types(path)
    config = AutoConfig.from_pretrained(folder, local_files_only=True) if (folder / "config.json").is_file() else None
    reranker = LlamaCppReranker.load(variant, device, path, config)
    reranker.details = {**details, **reranker.details}
    return reranker


# Heads llama.cpp's converter and rank-pooling graph do not reproduce: the graph computes
# out_proj(tanh(dense(h_cls))) when a dense layer is present, out_proj(h_cls) otherwise.
GGUF_UNFAITHFUL_HEADS = {
    "BertForSequenceClassification": "the converter drops BERT's pooler (tanh(pooler.dense)), so the classifier "
                                     "would read the raw [CLS] state",
    "DistilBertForSequenceClassification": "DistilBERT's pre_classifier is followed by ReLU, the rank graph applies tanh",
}


def check_gguf_convertible(folder: Path) -> None:
    """Refuse checkpoints whose GGUF would not be the same model (see :data:`GGUF_UNFAITHFUL_HEADS`):
    a BERT cross-encoder such as ms-marco-MiniLM would score differently in GGUF. XLM-R/RoBERTa heads
    (dense, tanh, out_proj) convert faithfully: bge-reranker-v2-m3 is one."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        return
    for architecture in json.loads(config_file.read_text()).get("architectures") or []:
        if architecture in GGUF_UNFAITHFUL_HEADS:
            raise VariantUnavailable(
                f"{folder}: {architecture} cannot be represented in GGUF: {GGUF_UNFAITHFUL_HEADS[architecture]}; "
                "GGUF variants support XLM-RoBERTa/RoBERTa cross-encoders")


def _cross_encoder(folder: Path, device: str, max_length: int, **kwargs: Any) -> Any:
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(folder), device=device, max_length=max_length, local_files_only=True, **kwargs)


def _load_torch(variant: Variant, device: str, folder: Path, exports: Path, max_length: int, _: Sequence[Pair]) -> Reranker:
    import torch

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "int8": torch.float32}[variant.precision]
    ce = _cross_encoder(folder, device, max_length, model_kwargs={"dtype": dtype})
    ce.model.eval()
    details: dict[str, Any] = {}
    if variant.precision == "int8":
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        quantize_(ce.model, Int8DynamicActivationInt8WeightConfig())
        details["quantization"] = "torchao Int8DynamicActivationInt8WeightConfig (all nn.Linear)"
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin"))
    executed = {"fp32": "fp32", "fp16": "fp16", "bf16": "bf16", "int8": "int8 linear, fp32 elsewhere"}[variant.precision]
    return Reranker(variant, device, ce, folder, files, 0.0, executed, details)


def _export_once(target: Path, build) -> Path:
    """Run ``build(staging)`` unless ``target`` exists; rename into place so a crash leaves no half export."""
    if target.is_dir():
        return target
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    build(staging)
    staging.rename(target)
    return target


def onnx_quantization_config() -> str:
    """The ONNX Runtime dynamic-quantization preset matching this CPU's vector extensions."""
    flags = set(cpu_info()["flags"])
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    import platform

    return "arm64" if platform.machine() in ("arm64", "aarch64") else "avx2"


def _load_onnx(variant: Variant, device: str, folder: Path, exports: Path, max_length: int, _: Sequence[Pair]) -> Reranker:
    fp32 = _export_once(exports / "onnx-fp32", lambda staging: _cross_encoder(
        folder, "cpu", max_length, backend="onnx").save_pretrained(str(staging)))
    file_name = "onnx/model.onnx"
    details: dict[str, Any] = {}
    if variant.precision == "int8":
        preset = onnx_quantization_config()

        def quantize(staging: Path) -> None:
            from sentence_transformers.backend import export_dynamic_quantized_onnx_model

            shutil.copytree(fp32, staging)
            export_dynamic_quantized_onnx_model(_cross_encoder(staging, "cpu", max_length, backend="onnx"), preset, str(staging))

        target = _export_once(exports / f"onnx-int8-{preset}", quantize)
        # The helper names the file after its data type: qint8 for avx512/vnni presets, quint8 for avx2/arm64.
        quantized = sorted((target / "onnx").glob(f"model_q*int8_{preset}.onnx"))
        if not quantized:
            raise FileNotFoundError(f"{target / 'onnx'}: no int8 model for preset {preset} (export incomplete?)")
        file_name = f"onnx/{quantized[0].name}"
        details["quantization"] = f"onnxruntime dynamic int8, preset {preset}"
    else:
        target = fp32
    provider = "CUDAExecutionProvider" if device.startswith("cuda") else "CPUExecutionProvider"
    ce = _cross_encoder(target, device, max_length, backend="onnx",
                        model_kwargs={"file_name": file_name, "provider": provider})
    files = [p for p in (target / file_name, target / (file_name + "_data")) if p.exists()]
    return Reranker(variant, device, ce, target, files, 0.0, variant.precision, {**details, "provider": provider})


def _ov_precision(ce: Any) -> str:
    try:
        hint = ce.model.request.get_property("INFERENCE_PRECISION_HINT")
        return hint.to_string() if hasattr(hint, "to_string") else str(hint)
    except Exception:  # noqa: BLE001 - property names differ across OpenVINO versions; record what we can
        return "unknown"


def _load_openvino(variant: Variant, device: str, folder: Path, exports: Path, max_length: int,
                   calibration_pairs: Sequence[Pair]) -> Reranker:
    fp32 = _export_once(exports / "openvino-fp32", lambda staging: _cross_encoder(
        folder, "cpu", max_length, backend="openvino").save_pretrained(str(staging)))
    file_name, hint, details = "openvino/openvino_model.xml", {"INFERENCE_PRECISION_HINT": "f32"}, {}
    target = fp32
    if variant.precision == "bf16":
        hint = {"INFERENCE_PRECISION_HINT": "bf16"}
    elif variant.precision == "int8":
        if not calibration_pairs:
            raise ValueError("openvino-int8 needs calibration pairs from the run (none given)")
        digest = hashlib.sha256(json.dumps(list(calibration_pairs)).encode()).hexdigest()[:10]

        def quantize(staging: Path) -> None:
            shutil.copytree(fp32, staging)
            _nncf_quantize(staging, max_length, calibration_pairs)

        target = _export_once(exports / f"openvino-int8-cal{digest}", quantize)
        file_name, hint = "openvino/openvino_model_qint8_static.xml", {}
        details["quantization"] = f"nncf static int8, {len(calibration_pairs)} calibration pairs from this run ({digest})"
    ce = _cross_encoder(target, device, max_length, backend="openvino",
                        model_kwargs={"file_name": file_name, "ov_config": hint})
    xml = target / file_name
    return Reranker(variant, device, ce, target, [xml, xml.with_suffix(".bin")], 0.0, _ov_precision(ce),
                    {**details, "ov_config": hint})


def _nncf_quantize(folder: Path, max_length: int, pairs: Sequence[Pair]) -> None:
    """Static int8 quantization of the OpenVINO IR in ``folder``, calibrated on ``pairs`` (one per item)."""
    import nncf
    import openvino as ov

    ce = _cross_encoder(folder, "cpu", max_length, backend="openvino")
    ov_model = ce.model.model
    input_names = {port.get_any_name() for port in ov_model.inputs}
    items = []
    for query, doc in pairs:
        features = ce.tokenizer([query], [doc], truncation="longest_first", max_length=max_length, return_tensors="np")
        items.append({k: v for k, v in features.items() if k in input_names})
    quantized = nncf.quantize(ov_model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(items))
    ov.save_model(quantized, str(folder / "openvino" / "openvino_model_qint8_static.xml"))
