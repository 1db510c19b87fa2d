"""Compute devices: which one ``auto`` means here, whether a requested one exists, and a clock-safe sync.

Kept apart from the backends because timing (``perf``), loading (``rerankers``) and the first stage all need
the same answers. torch is imported inside the functions: it is heavy, and parameter validation and
``runlocalai-bench variants`` must stay instant.
"""

from __future__ import annotations

DEVICE_KINDS = ("cpu", "cuda", "mps")


def device_kind(device: str) -> str:
    """``cuda:1`` -> ``cuda``."""
    return device.split(":")[0]


def device_index(device: str) -> int:
    """The ordinal of a ``cuda:N`` device (0 for plain ``cuda``)."""
    return int(device.split(":")[1]) if ":" in device else 0


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
    device = resolve_device(device)
    return f"cuda:{device_index(device)}" if device_kind(device) == "cuda" else device


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
