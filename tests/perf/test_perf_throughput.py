"""Throughput rows on a tiny model: columns, units, ordering, per-job memory windows. Never speed itself."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runlocalai_bench.models.resolve import resolve
from runlocalai_bench.params import validate_params
from runlocalai_bench.perf.memory import peak_rss_mb, reset_peak_rss
from runlocalai_bench.perf.throughput import DatasetWork, measure_throughput
from runlocalai_bench.rerankers.registry import get_variant, load_reranker
from runlocalai_bench.results.tables import COLUMNS

PAIRS = [("what is the capital", "a long document about capitals " * (i + 1)) for i in range(20)]
WORK = [DatasetWork("d", PAIRS, [PAIRS[:5], PAIRS[5:12], PAIRS[12:]])]


@pytest.fixture(scope="module")
def setup(session_cache):
    params = validate_params({"dataset": "fixture:tiny", "run_id": "t", "reranker": {"model": "twin:tiny-bert", "depth": 10,
                              "batch_size": 4, "max_length": 64}, "first_stage": {"depth": 10},
                              "throughput": {"warmup_rounds": 1, "min_seconds": 0, "min_rounds": 3, "max_pairs": 12,
                                             "batch_sizes": [2], "max_lengths": [32, 64]}})
    ref = resolve("twin:tiny-bert", None, session_cache)
    return params, load_reranker(get_variant("torch-fp32"), "cpu", ref.location, ref, session_cache, 64)


@pytest.mark.slow
def test_throughput_rows_on_a_tiny_model(setup):
    params, reranker = setup
    table = measure_throughput(reranker, WORK, params, "torch-fp32", "cpu")
    assert list(table.columns[:len(COLUMNS["throughput"])]) == COLUMNS["throughput"]
    assert table["workload"].tolist() == ["candidates", "query", "fixed", "fixed"]
    assert table["dataset"].tolist()[:2] == ["d", "d"] and table["dataset"].iloc[2:].isna().all()
    query = table[table["workload"] == "query"].iloc[0]  # latency of one request per query, over 3 queries
    assert query["n_queries"] == 3 and query["n_pairs"] == 20 and query["latency_p50_ms"] > 0
    candidates = table.iloc[0]
    assert candidates["n_pairs"] == 12 and 0 < candidates["mean_tokens"] <= 64 and candidates["padding_fraction"] < 1
    assert candidates["mean_sq_tokens"] >= candidates["mean_tokens"] ** 2
    fixed = table[table["workload"] == "fixed"]
    assert fixed["max_length"].tolist() == [32, 64] and fixed["mean_tokens"].tolist() == [32.0, 64.0]
    # A handful of timed calls: too few for a 99th percentile (perf.timing.min_samples), so none is reported.
    assert (table["latency_samples"] < 500).all() and table["latency_p99_ms"].isna().all()
    assert (table["latency_p50_ms"] > 0).all() and (table["pairs_per_s"] > 0).all()
    assert (table["rounds"] >= 3).all()
    assert (table["peak_rss_mb"] > 0).all() and (table["model_bytes"] > 0).all() and table["peak_vram_mb"].isna().all()
    assert (table["mfu"] > 0).all() and (table["mfu"] <= 1).all()
    assert table["peak_source"].str.startswith("theoretical: ").all() and (table["matmul_tflops"] > 0).all()
    assert table["flops_per_pair"].iloc[3] > table["flops_per_pair"].iloc[2]
    assert (table["attention_flops_share"].iloc[3] > table["attention_flops_share"].iloc[2])


@pytest.mark.slow
def test_each_job_reports_its_own_memory_peak(setup):
    """The peak resident set used to be the kernel's running maximum: a spike before the timing (an export, a
    quantization) showed up in every row. Each job now opens its own window."""
    params, reranker = setup
    if not reset_peak_rss():
        pytest.skip("this system cannot reset the peak resident set (/proc/self/clear_refs)")
    spike = np.ones(600 * 2**20 // 8)  # 600 MB touched, then freed
    spiked = peak_rss_mb()
    del spike
    table = measure_throughput(reranker, WORK, params, "torch-fp32", "cpu")
    assert (table["peak_rss_mb"] < spiked - 300).all(), (spiked, table["peak_rss_mb"].tolist())
    assert (table["peak_rss_window"] == "job").all()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="caps the address space (RLIMIT_AS) and reads /proc")
def test_a_shape_that_runs_out_of_memory_costs_only_its_own_row(session_cache):
    """A real out-of-memory: a process whose address space is capped at 600 MB above what it holds times a small
    shape, then 256 pairs of 512 tokens (a 1.6 GB FFN activation) of twin:small-xlmr. The large shape is recorded
    as failed and the small one keeps its row; a shape the model cannot take at all (2,048 tokens through 514
    positions) still fails the execution, as before."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("oom_probe.py")), str(session_cache)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["rows"] == [["fixed", 2, 512]]
    assert [(f["workload"], f["batch_size"], f["max_length"]) for f in found["failures"]] == [("fixed", 256, 512)]
    assert found["failures"][0]["error"].split(":")[0] in ("RuntimeError", "MemoryError", "OutOfMemoryError")
    assert found["note"].startswith("1 of 2 timing jobs failed and have no row (first: fixed 256 x 512")
    assert found["length_error_raised"] is True


@pytest.mark.parametrize("error, expected", [
    (MemoryError(), True),
    (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),  # torch.OutOfMemoryError's text
    (RuntimeError("MPS backend out of memory (MPS allocated: 5.00 GB)"), True),
    (RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"), True),
    (RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer"), True),
    (RuntimeError("llama_decode returned -2 for 8 pairs, 4096 tokens (out of memory: ggml_gallocr_reserve_n: "
                  "failed to allocate CUDA0 buffer of size 123)"), True),
    (RuntimeError("CUDA error: an illegal memory access was encountered"), False),
    (IndexError("index out of range in self"), False),
])
def test_out_of_memory_is_told_from_other_errors(error, expected):
    from runlocalai_bench.perf.throughput import is_out_of_memory

    assert is_out_of_memory(error) is expected
