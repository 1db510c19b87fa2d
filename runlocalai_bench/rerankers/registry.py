"""The variant registry: every backend module under ``rerankers/backends/`` registers itself by defining
``BACKEND``; this module collects them, checks a variant can run on a device, and loads it.

Discovery imports each backend module, so backend modules keep their runtimes (torch, onnxruntime,
openvino, llama_cpp) inside functions: listing variants or validating parameters must stay instant and
must work when an optional runtime is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import multiprocessing
import pkgutil
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from runlocalai_bench.devices import device_kind, resolve_device, unavailable_reason
from runlocalai_bench.environment import compute_threads
from runlocalai_bench.models.refs import ModelRef
from runlocalai_bench.rerankers import backends as backends_package
from runlocalai_bench.rerankers.exports import export_root, reading_only
from runlocalai_bench.rerankers.base import Backend, LoadRequest, Reranker, Variant, VariantUnavailable
from runlocalai_bench.rerankers.families import Family, family_of


def _discover() -> dict[str, Backend]:
    found: dict[str, Backend] = {}
    for info in sorted(pkgutil.iter_modules(backends_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{backends_package.__name__}.{info.name}")
        backend = getattr(module, "BACKEND", None)
        if not isinstance(backend, Backend):
            raise TypeError(f"{module.__name__} defines no BACKEND = Backend(...): every module in "
                            "rerankers/backends/ is a backend")
        if backend.name in found:
            raise ValueError(f"backend {backend.name!r} registered twice ({module.__name__})")
        found[backend.name] = backend
    return found


BACKENDS: dict[str, Backend] = _discover()
# Registry order: the order backends list their variants, backends in ORDER first (the reference first).
ORDER = ("torch", "onnx", "openvino", "gguf", "server", "infinity")
VARIANTS: dict[str, Variant] = {
    v.name: v
    for name in sorted(BACKENDS, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for v in BACKENDS[name].variants
}
REFERENCE_VARIANT = "torch-fp32"  # what drift and agreement are measured against
# The variant comparison rerankers run in, per kind of device: how each is deployed there (half precision is
# the norm on CUDA; on CPUs without fast half-precision units fp32 is both the norm and the faster one).
DEVICE_REFERENCE = {"cuda": "torch-fp16"}


def reference_variant(device: str) -> str:
    """The variant comparison rerankers run in on ``device`` (torch-fp32 on CPU and MPS, torch-fp16 on CUDA;
    ``auto`` as it resolves on this machine)."""
    return DEVICE_REFERENCE.get(device_kind(resolve_device(device)), REFERENCE_VARIANT)


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise KeyError(f"unknown variant {name!r}; accepted: {', '.join(VARIANTS)}") from None


def backend_of(variant: Variant) -> Backend:
    return BACKENDS[variant.backend]


def is_served(name: str) -> bool:
    """Whether the variant named ``name`` runs behind a server (False for names this registry does not know, e.g.
    a variant of an older bundle)."""
    return name in VARIANTS and VARIANTS[name].served


def user_file_variants() -> list[str]:
    """Variants whose backend accepts a ready-made file instead of converting the checkpoint."""
    return [name for name, v in VARIANTS.items() if backend_of(v).user_file_suffix]


def check_available(variant: Variant, device: str) -> None:
    """Raise :class:`VariantUnavailable` with the reason when ``variant`` cannot run on ``device`` here."""
    missing = variant.missing_modules()
    if missing:
        backend = backend_of(variant)
        raise VariantUnavailable(f"{variant.name} needs {', '.join(missing)} (install the "
                                 f"'{backend.extra_for(device)}' extra)")
    if device_kind(device) not in variant.devices:
        raise VariantUnavailable(f"{variant.name} runs on {', '.join(variant.devices)}, not {device}")
    reason = unavailable_reason(device)
    if reason:
        raise VariantUnavailable(reason)
    backend_of(variant).check_device(variant, device)


class ExportFailed(RuntimeError):
    """The process building a variant's exports died without an answer."""


@dataclass(frozen=True)
class ExportRecord:
    """What the prepare step cost, in its own process: wall time (seconds; small when everything was cached),
    which exports it had to build, and that process's peak resident set (the memory a conversion needs)."""

    seconds: float
    built: bool
    peak_rss_mb: float

    def as_dict(self) -> dict[str, float | bool]:
        return {"seconds": self.seconds, "built": self.built, "peak_rss_mb": self.peak_rss_mb}


def _prepare_here(request: LoadRequest) -> ExportRecord:
    """The child's side of :func:`prepare_exports` (module level: a spawned process imports it by name). The
    child is fresh, so its lifetime peak resident set is what building the exports took."""
    backend = backend_of(request.variant)
    built_before = backend.exports_built(request.variant, request.exports)
    started = time.perf_counter()
    backend.prepare(request)
    return ExportRecord(time.perf_counter() - started, built_before is False, _own_peak_mb())


def _own_peak_mb() -> float:
    """This process's peak resident set, or its children's if larger (llama.cpp's converter is a subprocess).
    Linux: VmHWM, because ``ru_maxrss`` of a spawned process starts at its parent's resident set at fork time."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    children = children / 2**20 if sys.platform == "darwin" else children / 2**10  # bytes on macOS, KiB on Linux
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return max(int(line.split()[1]) / 1024, children)
    except OSError:
        pass
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max(own / 2**20 if sys.platform == "darwin" else own / 2**10, children)


def prepare_exports(request: LoadRequest) -> ExportRecord | None:
    """Build ``request``'s exports in a fresh process (spawned: it shares no memory, no imported runtime and
    no allocator state with this one) and wait for it; None for backends that need none.

    Why a process: converting, quantizing or calibrating loads the full-precision checkpoint; done in the
    measured process, its residue (freed but resident heap, mapped files, runtime arenas) stays in every memory
    reading that follows. Errors raised by the backend (VariantUnavailable included) come back unchanged."""
    if backend_of(request.variant).prepare is None:
        return None
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_prepare_here, request).result()
        except BrokenProcessPool as exc:  # killed (out of memory, a signal): say what was being built
            raise ExportFailed(f"building the {request.variant.name} export of {request.folder.name} under "
                               f"{request.exports} killed its process (out of memory? a conversion holds the full "
                               "checkpoint at least once): no export was written") from exc


# Imported by every rerank process whatever the variant: torch (tensors in the timing harness, the roofline's
# matmul probe), transformers (configs, tokenizers), pyarrow's parquet writer (the stage's tables).
ALWAYS_IMPORTED = ("torch", "transformers", "pyarrow.parquet")
# Imported where installed: the roofline's int8 probe runs ONNX Runtime's MatMulInteger for every int8 variant.
IMPORTED_IF_INSTALLED = ("onnxruntime", "onnx")


def import_runtime(variant: Variant) -> None:
    """Import every library the variant's loader and the measurements will use, so the memory read before
    loading holds them and a job's peak minus it is the model's own share, not a library imported on the way."""
    optional = tuple(m for m in IMPORTED_IF_INSTALLED if importlib.util.find_spec(m) is not None)
    for module in (*ALWAYS_IMPORTED, *optional, *variant.requires, *backend_of(variant).runtime_modules):
        importlib.import_module(module)


def check_family(variant: Variant, family: Family) -> None:
    """Raise :class:`VariantUnavailable` when ``variant``'s backend has no scoring path for ``family``."""
    backend = backend_of(variant)
    if family.kind not in backend.families and family.name not in backend.families:
        raise VariantUnavailable(f"{variant.name}: the {backend.name} backend scores {', '.join(backend.families)} "
                                 f"rerankers, not {family.name} ({family.kind}){': ' + backend.family_note if backend.family_note else ''}")


def load_reranker(variant: Variant, device: str, folder: Path, ref: ModelRef, cache_dir: Path, max_length: int,
                  calibration_pairs=(), user_file: Path | None = None, threads: int | None = None,
                  tokens_per_call: int | None = None, server_slots: int = 4,
                  server_timeout_s: float = 1800.0, instruction: str | None = None,
                  trust_remote_code: bool = False, code_revision: str | None = None) -> Reranker:
    """Load ``folder`` as ``variant`` on ``device`` through its backend, after its exports were built in a
    process of their own (:func:`prepare_exports`); the loader then only reads finished files. ``load_s`` is the
    load alone; ``details['export']`` what the exports cost. :func:`perf.memory.load_measured` wraps this with
    the memory read before and after."""
    import torch

    check_available(variant, device)
    family = family_of(ref.spec, Path(folder))
    check_family(variant, family)
    if trust_remote_code and not backend_of(variant).remote_code:
        raise VariantUnavailable(f"{variant.name}: {ref.spec} runs code from its repository, which the "
                                 f"{variant.backend} backend does not load (its export has no path for a custom architecture)")
    threads = threads or compute_threads()
    # torch is in every rerank process (tokenizers' tensors, the roofline's probe, the torch backend itself):
    # its pool gets the same count as the backend's runtime, so no runtime computes beside an idle-spinning other.
    torch.set_num_threads(threads)
    request = LoadRequest(variant, device, Path(folder), ref, export_root(ref, cache_dir), max_length,
                          tuple(calibration_pairs), Path(user_file) if user_file else None, threads, tokens_per_call,
                          server_slots, server_timeout_s, instruction, trust_remote_code, code_revision)
    export = prepare_exports(request)
    started = time.perf_counter()
    with reading_only():
        reranker = backend_of(variant).load(request)
    reranker.load_s = time.perf_counter() - started
    reranker.details["threads"] = threads
    reranker.details["family"] = family.description
    if export is not None:
        reranker.details["export"] = export.as_dict()
    return reranker
