"""Paired comparisons between rerankings of the same candidates: the table behind "strict upgrade over X",
"Q4_K_M trades quality for size" and "how close to the ceiling".

Three kinds of rows, each the per-query difference of the row's system minus its ``baseline`` on exactly the
same queries and candidates (mean, 95% paired bootstrap CI, sign-flip p, wins/ties/losses), per dataset and as
a macro-average over the run's datasets (resampled within each dataset):

- ``baseline``: the main reranker in a device's reference variant against each comparison reranker
  (``reranker.baselines``), which ran in that same variant on that device, or, for a hosted one
  (``api:<provider>/<model>``, baseline_variant ``hosted``), through its provider's API;
- ``quantization``: every other variant of a reranker against its torch-fp32 on the same device (the main
  reranker's variants, and a comparison reranker's ``reranker.baseline_variants``);
- ``ceiling``: the main reranker's reference variant against the oracle (the candidates ordered by their
  relevance judgments: the most any reranker of these candidates could reach).
"""

from __future__ import annotations

import pandas as pd

from runlocalai_bench.quality.stats import paired_comparison
from runlocalai_bench.quality.summary import MACRO
from runlocalai_bench.rerankers.hosted import HOSTED_VARIANT
from runlocalai_bench.rerankers.registry import REFERENCE_VARIANT, reference_variant
from runlocalai_bench.results.tables import COLUMNS

ORACLE = "oracle"
MEASURE = "nDCG@10"


def _values(rows: pd.DataFrame) -> pd.Series:
    return pd.Series(rows["value"].to_numpy(), index=pd.MultiIndex.from_frame(rows[["dataset", "query_id"]])).sort_index()


def _compare(key: dict, treated: pd.Series, base: pd.Series, samples: int, seed: int,
             run_datasets: list[str]) -> list[dict]:
    """Rows for each dataset both systems measured, and the macro-average when that is all the run's."""
    common = treated.index.intersection(base.index)
    treated, base = treated.loc[common], base.loc[common]
    datasets = common.get_level_values("dataset")
    rows = []
    groups = [(d, datasets == d, None) for d in sorted(set(datasets))]
    if len(run_datasets) > 1 and sorted(set(datasets)) == run_datasets:
        groups.append((MACRO, slice(None), datasets))
    for dataset, mask, strata in groups:
        t, b = treated[mask], base[mask]
        c = paired_comparison(t.to_numpy(), b.to_numpy(), samples, seed,
                              strata=None if strata is None else strata.to_numpy())
        mean = float(t.groupby(level="dataset").mean().mean())
        base_mean = float(b.groupby(level="dataset").mean().mean())
        # level: the row a run is judged on (its macro-average, or its only dataset)
        level = dataset == MACRO or len(groups) == 1
        rows.append({**key, "dataset": dataset, "level": level, "n_queries": c.n, "mean": mean, "baseline_mean": base_mean,
                     "diff": c.lift_abs.estimate, "diff_ci_low": c.lift_abs.low, "diff_ci_high": c.lift_abs.high,
                     "p_value": c.p_value, "wins": c.wins, "ties": c.ties, "losses": c.losses,
                     "datasets": ", ".join(run_datasets) if dataset == MACRO else dataset})
    return rows


def _variant_rows(run_id: str, model: str, device: str, on_device: pd.DataFrame, file_bytes: dict[tuple, float],
                  samples: int, seed: int, run_datasets: list[str]) -> list[dict]:
    """Kind ``quantization``: every variant of ``model`` on ``device`` against its torch-fp32 there."""
    fp32 = on_device[on_device["variant"] == REFERENCE_VARIANT]
    if fp32.empty:
        return []
    base, out = _values(fp32), []
    size = file_bytes.get((run_id, model, REFERENCE_VARIANT, device))
    for variant, theirs in on_device[on_device["variant"] != REFERENCE_VARIANT].groupby("variant"):
        ratio = file_bytes.get((run_id, model, variant, device))
        found = _compare({"run_id": run_id, "reranker": model, "device": device, "measure": MEASURE,
                          "kind": "quantization", "variant": variant, "baseline": model,
                          "baseline_variant": REFERENCE_VARIANT}, _values(theirs), base, samples, seed, run_datasets)
        for row in found:
            row["file_ratio"] = ratio / size if ratio and size else None
        out += found
    return out


def comparisons(quality: pd.DataFrame, main: dict[str, str], samples: int, seed: int,
                file_bytes: dict[tuple, float] | None = None) -> pd.DataFrame:
    """The comparisons table of ``quality`` (tables/quality rows). ``main`` maps run_id to its main reranker;
    ``file_bytes`` maps (run_id, reranker, variant, device) to the variant's file size, for the
    quantization rows' ``file_ratio``."""
    if quality.empty:
        return pd.DataFrame(columns=COLUMNS["comparisons"])
    rows = quality[quality["measure"] == MEASURE]
    file_bytes = file_bytes or {}
    out: list[dict] = []
    for run_id, run in rows.groupby("run_id"):
        model = main.get(run_id)
        run_datasets = sorted(set(run[~run["system"].isin(["rerank", ORACLE])]["dataset"]))
        reranked = run[run["system"] == "rerank"]
        ours = reranked[reranked["reranker"] == model]
        others = reranked[reranked["reranker"] != model]
        oracle = run[run["system"] == ORACLE]
        for device, on_device in ours.groupby("device"):
            reference = reference_variant(device)
            ref_rows = on_device[on_device["variant"] == reference]
            common = {"run_id": run_id, "reranker": model, "device": device, "measure": MEASURE}
            if not ref_rows.empty:
                treated = _values(ref_rows)
                for baseline, theirs in others[(others["device"] == device) & (others["variant"] == reference)].groupby("reranker"):
                    out += _compare({**common, "kind": "baseline", "variant": reference, "baseline": baseline,
                                     "baseline_variant": reference}, treated, _values(theirs), samples, seed, run_datasets)
                # A hosted reranker ran once, on the provider's machines: set against this device's reference variant
                # on the queries it scored (a failed query is in neither side of the pair).
                for baseline, theirs in others[others["variant"] == HOSTED_VARIANT].groupby("reranker"):
                    out += _compare({**common, "kind": "baseline", "variant": reference, "baseline": baseline,
                                     "baseline_variant": HOSTED_VARIANT}, treated, _values(theirs), samples, seed,
                                    run_datasets)
                # The ceiling of the same candidates: the oracle at the depth this reranker reordered.
                depth = set(ref_rows["rerank_depth"].dropna()) if "rerank_depth" in ref_rows else set()
                ceiling = oracle[oracle["rerank_depth"].isin(depth)] if depth and "rerank_depth" in oracle else oracle.iloc[0:0]
                if not ceiling.empty:
                    out += _compare({**common, "kind": "ceiling", "variant": reference, "baseline": ORACLE,
                                     "baseline_variant": ORACLE}, treated, _values(ceiling), samples, seed, run_datasets)
            out += _variant_rows(run_id, model, device, on_device, file_bytes, samples, seed, run_datasets)
        # A comparison reranker run in more variants than the reference (reranker.baseline_variants): each
        # against its own torch-fp32, as the main reranker's variants are.
        for (other, device), on_device in others.groupby(["reranker", "device"]):
            out += _variant_rows(run_id, other, device, on_device, file_bytes, samples, seed, run_datasets)
    if not out:
        return pd.DataFrame(columns=COLUMNS["comparisons"])
    return pd.DataFrame(out).reindex(columns=COLUMNS["comparisons"] + ["level", "file_ratio", "datasets"])
