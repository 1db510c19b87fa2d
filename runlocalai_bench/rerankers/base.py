"""The reranker contract: what every backend provides, and the records a backend registers itself with.

A backend is one module under :mod:`runlocalai_bench.rerankers.backends` that defines ``BACKEND``, a
:class:`Backend` naming its variants and its loader; the loader returns a :class:`Reranker`. Everything
outside the backend's own module (timing, memory, roofline, stages) talks to that contract only, so a new
runtime (vLLM, TensorRT, MLX, ...) is one module, its variant rows and its install extra.
"""

from __future__ import annotations

import importlib.util
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from runlocalai_bench.models.refs import ModelRef

Pair = tuple[str, str]  # (query text, document text)
Features = dict[str, Any]  # padded ``input_ids`` + ``attention_mask`` (+ backend extras), one row per pair
Progress = Callable[[int, int], None]  # (pairs done, pairs in total)


def truncate_pair(query: list[int], doc: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Cut a pair to ``budget`` tokens the way Hugging Face tokenizers' ``longest_first`` does.

    The shorter side (the query on a tie) keeps up to half the budget, the longer side gets the rest. For
    runtimes that tokenize outside Hugging Face's pair call (llama.cpp in process, and the served variants,
    whose client cuts texts before a server sees them), so they see the same tokens as the torch/ONNX variants
    of the same run.
    """
    if budget < 2:
        raise ValueError(f"max_length leaves {budget} tokens for query and document; need at least 2")
    if len(query) + len(doc) <= budget:
        return query, doc
    if len(query) > len(doc):
        keep_doc = min(len(doc), budget // 2)
        return query[: budget - keep_doc], doc[:keep_doc]
    keep_query = min(len(query), budget // 2)
    return query[:keep_query], doc[: budget - keep_query]


class VariantUnavailable(RuntimeError):
    """This variant cannot run here (device absent, backend missing): a recorded skip, not a failure."""


@dataclass(frozen=True)
class Variant:
    """One way of running the reranker: a backend at a precision, on the devices it supports."""

    name: str
    backend: str  # the registering backend's name
    precision: str  # fp32 | fp16 | bf16 | int8; GGUF file types f16 | q8_0 | q4_k_m
    devices: tuple[str, ...]
    requires: tuple[str, ...]  # importable modules; missing ones turn the variant into a recorded skip
    description: str
    calibrated: bool = False  # static quantization: its converted file depends on the run's calibration pairs
    # A served variant: the in-process variant that scores the same file (its throughput rows are the reference
    # point of the served variant's load curve).
    same_file_as: str | None = None
    # Behind a server this process starts: no model-only workload (the server tokenizes and batches itself), and a
    # load sweep (tables/load) after the throughput workloads.
    served: bool = False

    def missing_modules(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m.split(".")[0]) is None]


@dataclass(frozen=True)
class LoadRequest:
    """What a backend's loader gets: the checkpoint folder and everything a conversion may need."""

    variant: Variant
    device: str
    folder: Path  # a local checkpoint: hub snapshot, twin or user folder
    ref: ModelRef  # its identity (keys the export cache)
    exports: Path  # ``<cache>/exports/<model>-<fingerprint>``: where this backend may write converted files
    max_length: int
    calibration_pairs: Sequence[Pair] = ()  # for static quantization: pairs of queries the run does not evaluate
    user_file: Path | None = None  # an existing file in the backend's own format, used instead of converting
    threads: int = 1  # CPU threads the runtime computes with (environment.compute_threads): the same for every backend
    tokens_per_call: int | None = None  # llama.cpp: the most tokens one call packs (None: the backend's default)
    server_slots: int = 4  # served variants: requests (or candidates of one request) the server decodes together
    server_timeout_s: float = 1800.0  # served variants: the longest one request (a query's candidates) may take
    instruction: str | None = None  # LLM rerankers: the instruction their prompt carries (None: the family's default)
    trust_remote_code: bool = False  # the parameters allowed this checkpoint's own code at a pinned revision
    code_revision: str | None = None  # the pinned commit of another repository whose code its auto_map names


@dataclass(frozen=True)
class Backend:
    """A runtime that can load the reranker, as it registers itself with the variant registry."""

    name: str
    extra: str  # the pyproject extra that installs it
    variants: tuple[Variant, ...]
    load: Callable[[LoadRequest], "Reranker"]
    # Builds every converted file the variant's loader reads (conversion, quantization, calibration) and returns
    # nothing; None for backends that read the checkpoint as it is. The registry runs it in a process of its own
    # before the measured one loads: that process never holds the checkpoint an export was made from.
    prepare: Callable[[LoadRequest], None] | None = None
    # Extra device checks beyond "is the device there" (e.g. a CUDA build of the runtime); raises VariantUnavailable.
    check_device: Callable[[Variant, str], None] = lambda variant, device: None
    # The suffix of files ``reranker.gguf_files``-style parameters may hand this backend instead of a conversion.
    user_file_suffix: str | None = None
    # Modules the loader imports beyond the variant's ``requires`` (e.g. sentence-transformers): imported before
    # the memory read that precedes loading, so their code is not counted as the model's memory.
    runtime_modules: tuple[str, ...] = ()
    # Glob patterns, relative to the export root, of the converted files a variant's loader builds (none for
    # backends that load the checkpoint as it is): lets a plan tell a cached export from one still to build.
    artifacts: Callable[[Variant], tuple[str, ...]] = lambda variant: ()
    # The extra that installs the runtime's CUDA build, where it is another package (onnxruntime-gpu).
    gpu_extra: str | None = None
    # Whether the runtime computes fp16/bf16 through fp32 conversions op by op on a CPU without a native path for
    # them (several times slower than fp32 there), rather than choosing fp32 kernels for such weights itself.
    emulates_half_on_cpu: bool = False
    # The reranker families this backend has a scoring path for: kinds (rerankers/families.py: classifier, llm) or
    # single LLM rules (qwen3-reranker); another family's checkpoint is a recorded skip that says why (``family_note``).
    families: tuple[str, ...] = ("classifier",)
    family_note: str = ""
    # Whether the backend can run a checkpoint's own Python code (``trust_remote_code``: jina-v2, gte-multilingual).
    remote_code: bool = False

    def extra_for(self, device: str) -> str:
        """The pyproject extra that installs what this backend needs on ``device``."""
        return self.gpu_extra if self.gpu_extra and device.startswith("cuda") else self.extra

    def exports_built(self, variant: Variant, exports: Path) -> bool | None:
        """Whether ``variant``'s converted files exist under ``exports`` (None when it needs none)."""
        patterns = self.artifacts(variant)
        if not patterns:
            return None
        return all(any(exports.glob(pattern)) for pattern in patterns)


@dataclass
class Scores:
    """One scoring pass: scores in the input order, and what the batches cost."""

    values: np.ndarray  # float32, in the order of the input pairs
    batch_seconds: list[float]
    batch_pairs: list[int]
    tokens: int  # real (non-pad) tokens
    padded_tokens: int  # tokens the model computed on, pads included

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.tokens / self.padded_tokens if self.padded_tokens else 0.0


def score_in_padded_batches(lengths: np.ndarray, batch_size: int, length_sorted: bool,
                            pad: Callable[[np.ndarray], Features], forward: Callable[[Features], np.ndarray],
                            progress: Progress | None = None) -> Scores:
    """Score pairs tokenized beforehand (``lengths`` tokens each) in padded batches of ``batch_size``: with
    ``length_sorted`` a batch holds pairs of similar length, which cuts the pad tokens the model computes on;
    scores come back in input order either way. ``pad(index)`` builds a batch's features (its time counts in the
    batch's seconds, as the model cannot start before it), ``forward`` scores them."""
    order = np.argsort(-lengths, kind="stable") if length_sorted else np.arange(len(lengths))
    scores = np.empty(len(lengths), dtype=np.float32)
    seconds, sizes, padded = [], [], 0
    for start in range(0, len(lengths), batch_size):
        index = order[start:start + batch_size]
        began = time.perf_counter()
        features = pad(index)
        scores[index] = forward(features)
        seconds.append(time.perf_counter() - began)
        sizes.append(len(index))
        padded += int(features["attention_mask"].numel())
        if progress:
            progress(start + len(index), len(lengths))
    return Scores(scores, seconds, sizes, int(lengths.sum()), padded)


# Memory counters a backend's device memory is visible to. NVML sees the whole process (any runtime's
# allocations, ONNX Runtime's arena and llama.cpp's buffers included); torch's allocator only its own tensors.
NVML, TORCH_ALLOCATOR, RESIDENT_SET = "nvml", "torch allocator", "resident set"


@dataclass(eq=False, kw_only=True)
class Reranker(ABC):
    """A reranker loaded in one variant on one device."""

    variant: Variant
    device: str
    weight_files: list[Path]  # the files its weights were read from (export, GGUF or checkpoint)
    executed_precision: str  # what the runtime reports it computes in (may differ from the variant's name)
    config: Any | None  # the Hugging Face config (layers, widths: FLOP and memory models); None if unknown
    details: dict[str, Any] = field(default_factory=dict)
    load_s: float = 0.0  # reading the finished files into the runtime; exports are timed apart (registry)
    memory: Any = None  # perf.memory.LoadMemory, set by the registry's loader

    # -- scoring

    @abstractmethod
    def score(self, pairs: Sequence[Pair], batch_size: int, max_length: int, length_sorted: bool = True,
              progress: Progress | None = None) -> Scores:
        """End to end: text in, float32 scores out (tokenization included), device work finished on return.
        ``progress(done, total)`` is called after every batch."""

    @abstractmethod
    def tokenize(self, pairs: Sequence[Pair], max_length: int) -> Features:
        """Padded features of ``pairs`` for :meth:`forward` (the model-only workload)."""

    @abstractmethod
    def token_lengths(self, pairs: Sequence[Pair], max_length: int) -> np.ndarray:
        """Tokens per pair after truncation, specials included."""

    @abstractmethod
    def forward(self, features: Features) -> np.ndarray:
        """Model only: features in, float32 scores out, device work finished when this returns."""

    # -- what the measurements need to know

    @abstractmethod
    def compute_precision(self) -> str:
        """The precision the bulk of the FLOPs run in (fp32 | fp16 | bf16 | int8): picks the roofline peak."""

    def weights_format(self) -> str:
        """Key of :data:`perf.roofline.BYTES_PER_PARAM` for the weights as held in memory."""
        return self.compute_precision()

    def activation_shape(self, batch_size: int, tokens: int) -> tuple[int, int]:
        """(sequences, tokens each) whose activations one call of ``batch_size`` pairs holds at once."""
        return batch_size, tokens

    def output_buffer_mb(self, batch_size: int, tokens: int) -> float:
        """Memory the runtime allocates for one call's outputs beyond the activations (MiB): none for most;
        llama.cpp's encoder keeps n_vocab logits per token of a call. Part of the memory estimate."""
        return 0.0

    def memory_counters(self) -> tuple[str, ...]:
        """Counters that see this reranker's memory on its device (see :data:`NVML`)."""
        return (RESIDENT_SET,) if self.device == "cpu" else (NVML,)

    def load_target(self) -> Any | None:
        """Where a load generator reaches this reranker (a ``serving.load.Target``): served variants only; None
        for a reranker in this process (its throughput rows are its load figures)."""
        return None

    def load_requests(self, queries: Sequence[Sequence[Pair]], max_length: int) -> list[Any]:
        """The requests a load sweep sends (``serving.load.RerankRequest``: one per query, its candidates cut to
        ``max_length`` as :meth:`score` cuts them); only where :meth:`load_target` is not None."""
        raise NotImplementedError(f"{self.variant.name} is not served: no load requests")

    def check_alive(self) -> None:
        """Raise if what scores for this reranker has gone (a served variant's server exited); nothing in process."""

    def memory_pid(self) -> int | None:
        """The process whose resident set is this reranker's memory: None for this one; a served variant's
        server process (the memory a user of the server pays; the client's is not the model's)."""
        return None

    def runtime_memory(self) -> dict[str, float] | None:
        """The runtime's own account of the memory it allocated, in MiB per buffer (e.g. llama.cpp's model,
        compute and output buffers), for the cross-check beside the measured peak; None where the runtime
        reports nothing (torch on CPU, ONNX Runtime and OpenVINO on CPU expose no allocated-bytes figure)."""
        return None

    @property
    def file_bytes(self) -> int:
        """Bytes of the weight files on disk."""
        return sum(p.stat().st_size for p in self.weight_files if p.is_file())

    @property
    def weight_bytes(self) -> int:
        """Bytes the weights occupy in memory at the executed precision (file bytes unless a backend knows better)."""
        return self.file_bytes

    def close(self) -> None:
        """Free native resources now rather than at interpreter exit (contexts may hold GBs)."""
