"""Pool the per-execution parts of a bundle into its tables, and compute the summary statistics."""

from __future__ import annotations

import pandas as pd

from runlocalai_bench.bundle import Bundle
from runlocalai_bench.drift import drift_table
from runlocalai_bench.metrics import bootstrap_mean, paired_comparison
from runlocalai_bench.params import Params
from runlocalai_bench.results import COLUMNS, read_parts, write_table

KEYS = ["system", "reranker", "variant", "device", "measure"]


def summarize(quality: pd.DataFrame, samples: int, seed: int) -> pd.DataFrame:
    """One row per (system, reranker, variant, device, measure): mean with a bootstrap CI, and for
    reranked systems the paired lift over the first stage on the same queries."""
    if quality.empty:
        return pd.DataFrame(columns=COLUMNS["summary"])
    quality = quality.copy()
    quality[["reranker", "variant", "device"]] = quality[["reranker", "variant", "device"]].fillna("")
    first = quality[quality["system"] != "rerank"]
    rows = []
    for key, group in quality.groupby(["run_id", "dataset"] + KEYS, sort=True, dropna=False):
        run_id, dataset, system, reranker, variant, device, measure = key
        values = group.set_index("query_id")["value"].sort_index()
        interval = bootstrap_mean(values.to_numpy(), samples, seed)
        row = {"run_id": run_id, "dataset": dataset, "system": system, "reranker": reranker or None,
               "variant": variant or None, "device": device or None, "measure": measure,
               "n_queries": int(values.size), "mean": interval.estimate, "ci_low": interval.low,
               "ci_high": interval.high}
        if system == "rerank":
            base = first[(first["run_id"] == run_id) & (first["dataset"] == dataset) & (first["measure"] == measure)]
            base_values = base.set_index("query_id")["value"]
            missing = values.index.difference(base_values.index)
            if len(missing) or base_values.index.difference(values.index).size:
                raise ValueError(f"{system} {variant} {device} {measure}: query sets differ from the first stage "
                                 f"({len(missing)} queries not in the first stage)")
            comparison = paired_comparison(values.to_numpy(), base_values.loc[values.index].to_numpy(), samples, seed)
            row.update(lift_abs=comparison.lift_abs.estimate, lift_ci_low=comparison.lift_abs.low,
                       lift_ci_high=comparison.lift_abs.high, lift_rel=comparison.lift_rel.estimate,
                       lift_rel_ci_low=comparison.lift_rel.low, lift_rel_ci_high=comparison.lift_rel.high,
                       p_value=comparison.p_value, wins=comparison.wins, ties=comparison.ties,
                       losses=comparison.losses)
        rows.append(row)
    return pd.DataFrame.from_records(rows).reindex(columns=COLUMNS["summary"])


def common_peaks(throughput: pd.DataFrame) -> pd.DataFrame:
    """One peak per (run, device, precision): the best matmul rate any execution of the run measured.

    Each kernel measures the peak when it starts, and on a shared machine the first may catch a busy
    moment; judging every variant against the same, best observed peak keeps their MFUs comparable.
    """
    if throughput.empty or "compute_precision" not in throughput:
        return throughput
    throughput = throughput.copy()
    keys = ["run_id", "device", "compute_precision"]
    throughput["peak_tflops"] = throughput.groupby(keys, dropna=False)["peak_tflops"].transform("max")
    throughput["mfu"] = throughput["achieved_tflops"] / throughput["peak_tflops"]
    return throughput


def finalize_tables(bundle: Bundle, params: Params) -> None:
    """Write ``tables/*`` from the parts that the notebook executions left, then compute the summary."""
    write_table(bundle.root, "quality", read_parts(bundle.root, "quality"))
    write_table(bundle.root, "throughput", common_peaks(read_parts(bundle.root, "throughput")))
    quality = read_parts(bundle.root, "quality")
    write_table(bundle.root, "summary", summarize(quality, params.bootstrap_samples, params.seed))
    write_table(bundle.root, "drift", bundle_drift(bundle, params))


def bundle_drift(bundle: Bundle, params: Params) -> pd.DataFrame:
    """Drift rows from the score files the rerank executions wrote (trained weights only)."""
    from runlocalai_bench.pipeline import dataset_label

    scores = {}
    for name, meta in bundle.all_stage_meta().items():
        path = bundle.runs_dir / f"{name}.scores.parquet"
        if meta.get("stage") == "rerank" and meta.get("status") == "ok" and path.is_file():
            scores[(meta["variant"], meta["device"])] = pd.read_parquet(path)
    table = drift_table(scores, params.run_id or "", dataset_label(params.dataset), params.reranker.model)
    return table if not table.empty else pd.DataFrame(columns=COLUMNS["drift"])
