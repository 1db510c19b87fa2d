"""The peak an MFU is judged against: the hardware's theoretical rate per precision, never a measured matmul
that a model can beat; the clock raised only as far as a measurement forces."""

import pandas as pd
import pytest

from runlocalai_bench.perf import peaks
from runlocalai_bench.perf.peaks import common_peaks, cpu_path, theoretical_peak


@pytest.mark.parametrize("flags, precision, per_cycle, path", [
    ({"avx2", "fma"}, "fp32", 32, "AVX2 FMA"),
    ({"avx2", "fma"}, "fp16", 32, "AVX2 FMA (no native fp16 path: widened to fp32)"),
    ({"avx2", "fma"}, "int8", 128, "AVX2"),
    ({"avx512f", "avx512_bf16"}, "bf16", 128, "AVX-512 BF16"),
    ({"avx512f", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"}, "int8", 2048, "AMX-INT8"),
    ({"avx512f", "amx_tile", "amx_bf16"}, "bf16", 1024, "AMX-BF16"),
])
def test_the_fastest_path_the_flags_allow(flags, precision, per_cycle, path):
    assert cpu_path(precision, flags) == (per_cycle, path)


def test_half_precision_on_an_avx2_cpu_is_judged_against_the_fp32_peak(monkeypatch):
    """The old peak was torch's fp16 matmul, which on AVX2 runs far below fp32: the model beat it (MFU 1.2-1.9)."""
    monkeypatch.setattr(peaks, "cpu_info", lambda: {"usable_cores": 2, "flags": ["avx2", "fma"], "model": "AMD EPYC"})
    monkeypatch.setattr(peaks, "cpu_clock_ghz", lambda: (3.0, "/proc/cpuinfo"))
    fp16, source = theoretical_peak("cpu", "fp16", measured_tflops=0.01)
    assert fp16 == pytest.approx(2 * 3.0 * 32 / 1e3) and "widened to fp32" in source
    achieved_by_the_model = 0.1  # what such a model ran at: above the measured fp16 matmul, below the hardware
    assert achieved_by_the_model / fp16 < 1


def test_a_matmul_faster_than_the_reported_clock_allows_raises_the_clock(monkeypatch):
    monkeypatch.setattr(peaks, "cpu_info", lambda: {"usable_cores": 2, "flags": ["avx512f"], "model": "Xeon"})
    monkeypatch.setattr(peaks, "cpu_clock_ghz", lambda: (2.0, "/proc/cpuinfo"))
    peak, source = theoretical_peak("cpu", "fp32", measured_tflops=0.32)  # needs 2.5 GHz on 2 x 64 FLOP/cycle
    assert peak == pytest.approx(0.32) and "raised" in source
    assert theoretical_peak("cpu", "fp32", measured_tflops=0.1)[0] == pytest.approx(0.256)


def test_gpu_peaks_come_from_datasheets():
    assert theoretical_peak("cuda", "fp16", None, "NVIDIA H100 80GB HBM3")[0] == pytest.approx(989.4)
    assert theoretical_peak("cuda", "fp16", None, "Some Future GPU") == (None, "no datasheet entry for Some Future GPU")


@pytest.mark.parametrize("name, precision, expected", [
    # The names drivers report; neighbours by substring must not lend each other figures.
    ("NVIDIA L4", "bf16", 121.0), ("NVIDIA L40", "bf16", 181.05), ("NVIDIA L40S", "bf16", 362.05),
    ("NVIDIA H100 80GB HBM3", "bf16", 989.4), ("NVIDIA H100 PCIe", "bf16", 756.5), ("NVIDIA H100 NVL", "bf16", 835.5),
    ("NVIDIA H200", "bf16", 989.5), ("NVIDIA H200 NVL", "bf16", 835.5), ("NVIDIA H200", "fp32", 67.0),
    ("NVIDIA A100-SXM4-80GB", "fp16", 312.0), ("NVIDIA A100 80GB PCIe", "fp16", 312.0),
    ("NVIDIA A100-PCIE-40GB", "int8", 624.0), ("NVIDIA GeForce RTX 4090", "fp16", 165.2),
    ("nvidia  l40s", "fp32", 91.6),  # case and spacing aside, the same card
])
def test_gpu_peak_lookup_is_exact(name, precision, expected):
    peak, source = theoretical_peak("cuda", precision, None, name)
    assert peak == pytest.approx(expected)
    assert source.startswith("datasheet: ")


@pytest.mark.parametrize("name", ["NVIDIA L40G", "NVIDIA H100", "NVIDIA H200 SXM 141GB", "NVIDIA A100X",
                                  "NVIDIA GeForce RTX 4090 D", "Tesla T4"])
def test_unknown_gpu_names_get_no_neighbours_figure(name):
    assert theoretical_peak("cuda", "bf16", None, name) == (None, f"no datasheet entry for {name}")


def test_rows_of_a_run_share_one_peak():
    table = pd.DataFrame({"run_id": "r", "device": "cpu", "compute_precision": ["fp32", "fp32", "int8"],
                          "peak_tflops": [0.30, 0.32, 10.0], "peak_source": ["a", "raised", "c"],
                          "achieved_tflops": [0.09, 0.10, 0.1], "mfu": 0.0})
    out = common_peaks(table)
    assert out["peak_tflops"].tolist() == [0.32, 0.32, 10.0] and out["peak_source"].tolist() == ["raised", "raised", "c"]
    assert out["mfu"].round(4).tolist() == [0.2812, 0.3125, 0.01]
