"""The variant registry: backends register themselves, unavailable devices become recorded reasons."""

import pytest
import torch

from runlocalai_bench.rerankers.base import VariantUnavailable
from runlocalai_bench.rerankers.registry import check_available, get_variant


def test_unavailable_device_is_a_recorded_reason():
    with pytest.raises(VariantUnavailable, match="runs on cpu, not cuda"):
        check_available(get_variant("onnx-int8"), "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(VariantUnavailable, match="no CUDA device"):
            check_available(get_variant("torch-fp16"), "cuda")


def test_every_backend_module_registered_its_variants():
    from runlocalai_bench.rerankers.registry import BACKENDS, REFERENCE_VARIANT, VARIANTS, user_file_variants

    assert set(BACKENDS) == {"torch", "onnx", "openvino", "gguf", "server", "infinity"}
    assert all(v.backend == name for name, b in BACKENDS.items() for v in b.variants)
    assert list(VARIANTS)[0] == REFERENCE_VARIANT  # the reference comes first in listings
    assert user_file_variants() == ["gguf-f16", "gguf-q8_0", "gguf-q4_k_m",
                                    "server-llama-f16", "server-llama-q8_0", "server-llama-q4_k_m"]


def test_a_missing_runtime_names_the_extra_that_installs_it(monkeypatch):
    variant = get_variant("torch-int8")
    monkeypatch.setattr(type(variant), "missing_modules", lambda self: ["torchao"])
    with pytest.raises(VariantUnavailable, match=r"torch-int8 needs torchao \(install the 'torchao' extra\)"):
        check_available(variant, "cpu")
