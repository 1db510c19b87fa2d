"""Pool the per-execution parts of a bundle into its tables, and compute the statistics across executions."""

from __future__ import annotations

import pandas as pd

from runlocalai_bench.params import Params
from runlocalai_bench.perf.peaks import common_peaks
from runlocalai_bench.quality.depth import summarize_depth
from runlocalai_bench.quality.drift import drift_table
from runlocalai_bench.quality.summary import summarize
from runlocalai_bench.results.bundle import Bundle
from runlocalai_bench.results.tables import COLUMNS, read_parts, write_table


def finalize_tables(bundle: Bundle, params: Params, executions: list[dict]) -> None:
    """Write ``tables/*`` from the parts that *successful* executions left, then the statistics across them.

    A failed execution may have written its quality part before failing (say, in the throughput cell): its rows
    must not reach the summary or a claim, as they never reach the drift table.
    """
    ok = {e["execution"] for e in executions if e["status"] == "ok"}
    quality = read_parts(bundle.root, "quality", ok)
    throughput = common_peaks(read_parts(bundle.root, "throughput", ok))
    depth_quality = read_parts(bundle.root, "depth_quality", ok)
    write_table(bundle.root, "quality", quality)
    write_table(bundle.root, "throughput", throughput)
    write_table(bundle.root, "summary", summarize(quality, params.bootstrap_samples, params.seed))
    write_table(bundle.root, "drift", bundle_drift(bundle, params, ok))
    write_table(bundle.root, "depth_quality", depth_quality)
    depth = summarize_depth(depth_quality, throughput, params.bootstrap_samples, params.seed)
    write_table(bundle.root, "depth", depth if not depth.empty else pd.DataFrame(columns=COLUMNS["depth"]))


def bundle_drift(bundle: Bundle, params: Params, ok: set[str]) -> pd.DataFrame:
    """Drift rows per dataset from the score files the successful rerank executions wrote (trained weights)."""
    frames = []
    reranks = {name: meta for name, meta in bundle.all_stage_meta().items()
               if meta.get("stage") == "rerank" and name in ok and meta.get("status") == "ok"}
    for spec in params.datasets:
        scores = {}
        for name, meta in reranks.items():
            path = bundle.rerank_scores(spec.slug, name)
            if path.is_file():
                scores[(meta["variant"], meta["device"])] = pd.read_parquet(path)
        frames.append(drift_table(scores, params.run_id or "", spec.label, params.reranker.model))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS["drift"])
