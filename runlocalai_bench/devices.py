"""Compute devices: which one ``auto`` means here, whether a requested one exists, and a clock-safe sync.

Kept apart from the backends because timing (``perf``), loading (``rerankers``) and the first stage all need
the same answers. torch is imported inside the functions: it is heavy, and parameter validation and
``runlocalai-bench variants`` must stay instant.
"""

from __future__ import annotations

DEVICE_KINDS = ("cpu", "cuda", "mps")
CLASS_SEPARATOR = "@"  # cpu@epyc: a CPU on a node of class "epyc" (the Ray engine schedules by class)


def split_class(device: str) -> tuple[str, str | None]:
    """``cuda@rtx4090`` -> (``cuda``, ``rtx4090``); ``cpu`` -> (``cpu``, None).

    A node class names a kind of machine in a Ray cluster (its nodes declare the resource
    ``runlocalai-bench:<class>``); the device part is what the execution uses on that node.
    """
    physical, separator, node_class = device.partition(CLASS_SEPARATOR)
    return physical, (node_class if separator else None)


def node_class(device: str) -> str | None:
    """The node class a device spec pins its executions to, or None."""
    return split_class(device)[1]


def with_class(device: str, cls: str | None) -> str:
    """``device`` labelled with node class ``cls`` (unchanged when None): the label rows carry."""
    return f"{device}{CLASS_SEPARATOR}{cls}" if cls else device


def device_kind(device: str) -> str:
    """``cuda:1`` (or ``cuda:1@rtx4090``) -> ``cuda``."""
    return split_class(device)[0].split(":")[0]


def device_index(device: str) -> int:
    """The ordinal of a ``cuda:N`` device (0 for plain ``cuda``)."""
    physical = split_class(device)[0]
    return int(physical.split(":")[1]) if ":" in physical else 0


def resolve_device(device: str) -> str:
    """``auto`` picks cuda, then mps, then cpu; an explicit device is returned unchanged."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def canonical_device(device: str) -> str:
    """The physical device a spec names: ``auto`` resolved, ``cuda`` written as ``cuda:0``.

    Two specs with the same canonical device measure the same hardware; the runner uses this to refuse
    ``devices: [auto, cpu]`` or ``[cuda, cuda:0]``, which would otherwise pool one device's queries twice.
    """
    physical, cls = split_class(resolve_device(device))
    return with_class(f"cuda:{device_index(physical)}" if device_kind(physical) == "cuda" else physical, cls)


def unavailable_reason(device: str) -> str | None:
    """Why ``device`` cannot be used on this machine, or None when it can."""
    kind = device_kind(device)
    if kind == "cpu":
        return None
    import torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            return f"{device} requested but torch sees no CUDA device on this machine"
        if device_index(device) >= torch.cuda.device_count():
            return f"{device} requested but this machine has {torch.cuda.device_count()} CUDA device(s)"
        return None
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return "mps requested but this machine has no Apple MPS device"
    return None


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so a clock read afterwards covers it (a no-op on the CPU)."""
    kind = device_kind(device)
    if kind == "cpu":
        return
    import torch

    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


# The oldest CUDA compute capability with native arithmetic in each half precision: fp16 from sm_53 (Tegra X1,
# Pascal sm_60 for discrete cards), bf16 from sm_80 (Ampere). Older GPUs either refuse bf16 kernels or run them
# through fp32 emulation at a fraction of the rate: a measurement there would not be of the precision it names.
CUDA_NATIVE_FROM = {"fp16": (5, 3), "bf16": (8, 0)}
# Capabilities past the threshold whose rate in a precision is still a crawl: consumer Pascal (GTX 10xx, P4, P40)
# runs fp16 arithmetic at 1/64 of its fp32 rate (NVIDIA's CUDA C++ Programming Guide, arithmetic instructions table).
CUDA_CRAWLS = {"fp16": {(6, 1)}}


def cuda_precision_reason(precision: str, capability: tuple[int, int], name: str) -> str | None:
    """Why a GPU of compute ``capability`` cannot run ``precision`` natively, or None when it can."""
    needed = CUDA_NATIVE_FROM.get(precision)
    capability = tuple(capability)
    where = f"{name} (compute capability {capability[0]}.{capability[1]})"
    if capability in CUDA_CRAWLS.get(precision, set()):
        return f"{where} has no native {precision}: it runs {precision} arithmetic at 1/64 of its fp32 rate"
    if needed is None or capability >= needed:
        return None
    return f"{where} has no native {precision}: it needs {needed[0]}.{needed[1]} or newer"


def precision_unavailable(precision: str, device: str) -> str | None:
    """Why ``precision`` cannot be measured on ``device`` (a recorded skip), or None when it can.

    CPUs are not refused here: every x86 and Arm CPU runs fp16/bf16 tensors, natively or widened to fp32, and
    which path a CPU has is recorded with the roofline (``perf.peaks.cpu_path``)."""
    kind = device_kind(device)
    if kind == "cuda" and precision in CUDA_NATIVE_FROM:
        import torch

        index = device_index(device)
        return cuda_precision_reason(precision, torch.cuda.get_device_capability(index),
                                     torch.cuda.get_device_name(index))
    if kind == "mps" and precision == "bf16":
        import torch

        try:  # bf16 on MPS needs macOS 14; older systems raise on the first bf16 tensor
            torch.ones(1, dtype=torch.bfloat16, device="mps")
        except (RuntimeError, TypeError) as exc:
            return f"mps has no bf16 on this macOS ({str(exc).splitlines()[0]})"
    return None
