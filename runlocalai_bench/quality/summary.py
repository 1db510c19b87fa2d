"""Summary statistics per system, variant and device: mean with a bootstrap CI, and the paired lift over
the first stage on the same queries."""

from __future__ import annotations

import pandas as pd

from runlocalai_bench.quality.stats import bootstrap_mean, paired_comparison
from runlocalai_bench.results.tables import COLUMNS

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
