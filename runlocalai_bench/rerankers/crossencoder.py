"""The reranker behind every backend that runs through sentence-transformers' ``CrossEncoder``.

torch, ONNX Runtime (via optimum) and OpenVINO (via optimum-intel) all load through ``CrossEncoder``, so
tokenization, length-sorted batching and the score convention are one code path for the three; the backend
modules only say how to load and what precision ran.

Scores are the raw relevance logits upcast to float32. No sigmoid: in half precision a sigmoid maps most
relevant documents to exactly 1.0, turning a ranking into ties. torch and sentence-transformers are imported
inside the functions (heavy; the registry imports this module to list variants).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runlocalai_bench.devices import synchronize
from runlocalai_bench.rerankers.base import (
    NVML, TORCH_ALLOCATOR, Features, Pair, Progress, Reranker, Scores, score_in_padded_batches,
)


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


def load_cross_encoder(folder: Path, device: str, max_length: int, **kwargs: Any) -> Any:
    """A ``CrossEncoder`` from a local folder (never the hub: the stages resolve hub ids to snapshots first)."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(folder), device=device, max_length=max_length, local_files_only=True, **kwargs)


@dataclass(eq=False, kw_only=True)
class CrossEncoderReranker(Reranker):
    """A ``CrossEncoder`` whose model is a torch module, an ONNX Runtime session or an OpenVINO request."""

    cross_encoder: Any
    runs_in_torch: bool = False  # a torch module: torch's allocator counters see its memory
    # Inputs must be on ``device`` before the call: torch modules, and ONNX Runtime's CUDA provider, to which optimum
    # binds each input's data_ptr() as device memory (IO binding). OpenVINO and ONNX on the CPU take host tensors.
    inputs_on_device: bool = False

    @property
    def model(self) -> Any:
        return self.cross_encoder.model

    @property
    def tokenizer(self) -> Any:
        return self.cross_encoder.tokenizer

    def tokenize(self, pairs: Sequence[Pair], max_length: int) -> Features:
        return self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], padding=True, truncation="longest_first",
                              max_length=max_length, return_tensors="pt")

    def token_lengths(self, pairs: Sequence[Pair], max_length: int) -> np.ndarray:
        encoded = self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], truncation="longest_first",
                                 max_length=max_length, return_attention_mask=False, return_token_type_ids=False)
        return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)

    @property
    def input_device(self) -> str:
        """Where the model reads its inputs from."""
        return self.device if self.inputs_on_device else "cpu"

    def place(self, features: Features) -> Features:
        """``features`` on :attr:`input_device` (tensors only; a no-op where they already are)."""
        return {k: v.to(self.input_device) if hasattr(v, "to") else v for k, v in features.items()}

    def forward(self, features: Features) -> np.ndarray:
        features = self.place(features)
        if self.runs_in_torch:
            import torch

            with torch.inference_mode():
                logits = self.model(**features, return_dict=True).logits
        else:
            logits = self.model(**features).logits
        synchronize(self.device)  # the clock read after forward covers queued GPU work (a no-op on the CPU)
        return scores_from_logits(logits)

    def score(self, pairs: Sequence[Pair], batch_size: int, max_length: int, length_sorted: bool = True,
              progress: Progress | None = None) -> Scores:
        """Pairs are tokenized once; with ``length_sorted`` batches hold pairs of similar length, which cuts
        the pad tokens the model computes on. Scores come back in input order either way."""
        encoded = self.tokenizer([q for q, _ in pairs], [d for _, d in pairs], truncation="longest_first",
                                 max_length=max_length)
        lengths = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)
        return score_in_padded_batches(
            lengths, batch_size, length_sorted,
            lambda index: self.tokenizer.pad({k: [v[i] for i in index] for k, v in encoded.items()}, return_tensors="pt"),
            self.forward, progress)

    def compute_precision(self) -> str:
        if self.variant.precision == "int8":
            return "int8"
        executed = self.executed_precision.lower()
        if "bf16" in executed:
            return "bf16"
        if "f16" in executed or "fp16" in executed:
            return "fp16"
        return "fp32"

    def memory_counters(self) -> tuple[str, ...]:
        if self.device == "cpu":
            return super().memory_counters()
        return (NVML, TORCH_ALLOCATOR) if self.runs_in_torch else (NVML,)
