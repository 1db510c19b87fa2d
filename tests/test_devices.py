"""Device specs: what auto means, which specs name the same hardware, and why a device is unavailable."""

import pytest
import torch

from runlocalai_bench.devices import (canonical_device, cuda_precision_reason, device_index, device_kind,
                                      precision_unavailable, unavailable_reason)


def test_specs_that_name_the_same_device_share_a_canonical_form():
    assert canonical_device("cuda") == canonical_device("cuda:0") == "cuda:0"
    assert canonical_device("cuda:1") == "cuda:1" and canonical_device("cpu") == "cpu"
    expected = "cuda:0" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert canonical_device("auto") == expected
    assert device_kind("cuda:1") == "cuda" and device_index("cuda:1") == 1 and device_index("cuda") == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the reason given on a machine without CUDA")
def test_absent_devices_give_a_reason_present_ones_none():
    assert unavailable_reason("cpu") is None
    assert "no CUDA device" in unavailable_reason("cuda:0")


@pytest.mark.parametrize("precision, capability, refused", [
    ("bf16", (7, 5), True), ("bf16", (7, 0), True), ("bf16", (8, 0), False), ("bf16", (9, 0), False),
    ("fp16", (5, 2), True), ("fp16", (6, 0), False), ("fp16", (6, 1), True), ("fp16", (7, 5), False),
    ("fp32", (3, 5), False),
])
def test_half_precisions_need_a_gpu_with_native_arithmetic(precision, capability, refused):
    reason = cuda_precision_reason(precision, capability, "Tesla T4")
    assert (reason is not None) == refused
    if refused:
        assert f"no native {precision}" in reason and "Tesla T4" in reason


def test_cpus_are_never_refused_a_precision():
    assert all(precision_unavailable(p, "cpu") is None for p in ("fp32", "fp16", "bf16", "int8"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_this_gpu_bf16_answer_agrees_with_torch():
    assert (precision_unavailable("bf16", "cuda") is None) == torch.cuda.is_bf16_supported(including_emulation=False)
