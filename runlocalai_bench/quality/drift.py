"""Quantization drift: each variant's scores against the torch-fp32 reference on the very same pairs.

This separates "int8 costs X nDCG" from noise: if the top-10 barely changes and Kendall's tau stays near 1,
a quality difference between variants is not the quantization's doing.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from runlocalai_bench.rerankers.registry import REFERENCE_VARIANT as REFERENCE


def top_k(frame: pd.DataFrame, score: str, k: int = 10) -> set[str]:
    ordered = frame.sort_values([score, "doc_id"], ascending=[False, True])
    return set(ordered["doc_id"].head(k))


def compare(reference: pd.DataFrame, other: pd.DataFrame) -> dict[str, float]:
    """Score and ranking agreement of two score tables (columns query_id, doc_id, score), on the queries both
    scored: under a time budget executions evaluate nested samples (run/budget.py), and the smaller one's queries
    are compared; within a common query every candidate pair must be in both."""
    common = set(reference["query_id"]) & set(other["query_id"])
    reference, other = reference[reference["query_id"].isin(common)], other[other["query_id"].isin(common)]
    merged = reference.merge(other, on=["query_id", "doc_id"], suffixes=("_ref", "_var"), validate="one_to_one")
    if len(merged) != len(reference) or len(merged) != len(other):
        raise ValueError(f"drift needs the same pairs: reference has {len(reference)}, variant {len(other)}, "
                         f"{len(merged)} in common")
    diff = (merged["score_var"] - merged["score_ref"]).abs()
    overlaps, taus = [], []
    for _, group in merged.groupby("query_id", sort=True):
        k = min(10, len(group))
        overlaps.append(len(top_k(group, "score_ref", k) & top_k(group, "score_var", k)) / k if k else np.nan)
        if len(group) > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant input: tau undefined, recorded as NaN
                taus.append(kendalltau(group["score_ref"], group["score_var"]).statistic)
    return {"n_queries": int(merged["query_id"].nunique()), "n_pairs": int(len(merged)),
            "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
            "top10_overlap": float(np.nanmean(overlaps)) if overlaps else np.nan,
            "kendall_tau": float(np.nanmean(taus)) if taus and not np.all(np.isnan(taus)) else np.nan}


def drift_table(scores: dict[tuple[str, str], pd.DataFrame], run_id: str, dataset: str, reranker: str) -> pd.DataFrame:
    """Rows for every (variant, device) other than the reference, against torch-fp32 on the same device
    when it ran there, else on the CPU."""
    rows = []
    for (variant, device), frame in sorted(scores.items()):
        if variant == REFERENCE:
            continue
        reference_key = (REFERENCE, device) if (REFERENCE, device) in scores else (REFERENCE, "cpu")
        if reference_key not in scores:
            continue
        rows.append({"run_id": run_id, "dataset": dataset, "reranker": reranker, "variant": variant, "device": device,
                     "reference": f"{REFERENCE}@{reference_key[1]}", **compare(scores[reference_key], frame)})
    return pd.DataFrame.from_records(rows)
