"""Device specs: what auto means, which specs name the same hardware, and why a device is unavailable."""

import pytest
import torch

from runlocalai_bench.devices import canonical_device, device_index, device_kind, unavailable_reason


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
