"""A real out-of-memory inside the timing harness: ``python oom_probe.py CACHE`` caps this process's address space
at 600 MB above what it has mapped once the model is loaded, times a small and a large fixed shape of twin:small-xlmr
(the large one needs a 1 GB FFN activation), and prints JSON with the rows kept, the failures recorded, the
execution's note, and whether a shape the model cannot take at all (more tokens than positions) still raises."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Rust tokenizers abort the process when an allocation fails; a single-threaded one allocates nothing new here.
os.environ["TOKENIZERS_PARALLELISM"] = "false"
HEADROOM = 600 * 2**20


def vm_size_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status (not Linux?)")


def main(cache: Path) -> dict:
    from runlocalai_bench.models.resolve import resolve
    from runlocalai_bench.params import validate_params
    from runlocalai_bench.perf.throughput import describe_failures, measure_throughput
    from runlocalai_bench.rerankers.registry import get_variant, load_reranker

    ref = resolve("twin:small-xlmr", None, cache)
    reranker = load_reranker(get_variant("torch-fp32"), "cpu", ref.location, ref, cache, 512, threads=1)

    def params(lengths: list[int], batches: list[int]):
        return validate_params({"dataset": "fixture:tiny", "run_id": "oom", "reranker": {"model": "twin:small-xlmr"},
                                "throughput": {"workloads": ["fixed"], "warmup_rounds": 0, "min_seconds": 0,
                                               "min_rounds": 3, "batch_sizes": batches, "max_lengths": lengths}})

    measure_throughput(reranker, [], params([512], [2]), "torch-fp32", "cpu")  # every library and kernel loaded
    resource.setrlimit(resource.RLIMIT_AS, (vm_size_bytes() + HEADROOM, resource.RLIM_INFINITY))
    failures: list[dict] = []
    table = measure_throughput(reranker, [], params([512], [2, 256]), "torch-fp32", "cpu", failures=failures)
    resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    too_long = params([2048], [2])
    try:
        measure_throughput(reranker, [], too_long, "torch-fp32", "cpu", failures=[])
        raised = False
    except (IndexError, RuntimeError) as exc:  # 2,048 positions asked of a model that has 514
        raised = "index out of range" in str(exc) or "(2048) must match the existing size (514)" in str(exc)
    return {"rows": table[["workload", "batch_size", "max_length"]].values.tolist(), "failures": failures,
            "note": describe_failures(failures, len(table) + len(failures)), "length_error_raised": raised}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
