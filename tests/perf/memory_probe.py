"""One variant's memory in a fresh process, as the rerank stage measures it: ``python memory_probe.py VARIANT
CACHE [--export-here]`` prints JSON with what the process held before and after loading, its peak while scoring
the fixture's pairs, and the model's share (peak minus before-load). ``--export-here`` builds the exports inside
this process first (what the suite did before exports moved to a process of their own): the control that shows
what the separate process is for."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main(variant_name: str, cache: Path, export_here: bool, model: str) -> dict:
    from runlocalai_bench.data.specs import load_collection
    from runlocalai_bench.models.resolve import resolve
    from runlocalai_bench.perf.memory import load_measured, peak_rss_mb, reset_peak_rss
    from runlocalai_bench.perf.throughput import model_share_mb
    from runlocalai_bench.rerankers.base import LoadRequest
    from runlocalai_bench.rerankers.exports import export_root
    from runlocalai_bench.rerankers.registry import backend_of, get_variant, load_reranker

    ref = resolve(model, None, cache)
    variant = get_variant(variant_name)
    collection = load_collection("fixture:tiny", "test")
    docs = [d.contents for d in collection.docs.values()]
    pairs = [(q, docs[(i * 7 + j) % len(docs)]) for i, q in enumerate(collection.queries.values()) for j in range(4)]
    calibration = tuple(pairs[:16]) if variant.calibrated else ()
    backend = backend_of(variant)
    if export_here and backend.prepare is not None:
        backend.prepare(LoadRequest(variant, "cpu", Path(ref.location), ref, export_root(ref, cache), 128, calibration))
    reranker = load_measured(variant, "cpu", lambda: load_reranker(variant, "cpu", ref.location, ref, cache, 128,
                                                                    calibration))
    reset_peak_rss()
    reranker.score(pairs, 8, 128)
    peak = peak_rss_mb()
    return {"variant": variant_name, "export_here": export_here, **reranker.memory.as_dict(), "peak_rss_mb": peak,
            "model_memory_mb": model_share_mb(reranker, "cpu", peak, None), "export": reranker.details.get("export"),
            "runtime_memory": reranker.runtime_memory()}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    model = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--model=")), "twin:tiny-xlmr")
    print(json.dumps(main(args[0], Path(args[1]), "--export-here" in sys.argv, model)))
