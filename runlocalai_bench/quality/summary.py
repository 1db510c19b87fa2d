"""The summary table: per dataset and system/variant/device, the mean of each measure with a bootstrap CI and
the paired lift over the first stage on the same queries; across a run's datasets, a ``macro-average`` row
(mean of per-dataset means, CIs from resampling queries within each dataset)."""

from __future__ import annotations

import pandas as pd

from runlocalai_bench.quality.stats import bootstrap_mean, paired_comparison
from runlocalai_bench.results.tables import COLUMNS

MACRO = "macro-average"
# One summary row per these (depths and first stage are constant within a run and dataset).
GROUP = ["run_id", "system", "reranker", "variant", "device", "measure", "first_stage", "first_stage_depth",
         "rerank_depth"]


# Systems that reorder the first stage's candidates (a reranker, or the oracle ordering by the judgments): their
# rows get the paired lift over the first stage.
RERANKING_SYSTEMS = ("rerank", "oracle")


def _is_first_stage(frame: pd.DataFrame) -> pd.Series:
    return ~frame["system"].isin(RERANKING_SYSTEMS)


def _row(key: dict, values: pd.Series, base: pd.Series | None, samples: int, seed: int,
         strata: pd.Series | None) -> dict:
    interval = bootstrap_mean(values.to_numpy(), samples, seed, None if strata is None else strata.to_numpy())
    row = {**key, "n_queries": int(values.size), "mean": interval.estimate, "ci_low": interval.low,
           "ci_high": interval.high}
    if base is not None:
        comparison = paired_comparison(values.to_numpy(), base.to_numpy(), samples, seed,
                                       strata=None if strata is None else strata.to_numpy())
        row.update(lift_abs=comparison.lift_abs.estimate, lift_ci_low=comparison.lift_abs.low,
                   lift_ci_high=comparison.lift_abs.high, lift_rel=comparison.lift_rel.estimate,
                   lift_rel_ci_low=comparison.lift_rel.low, lift_rel_ci_high=comparison.lift_rel.high,
                   p_value=comparison.p_value, wins=comparison.wins, ties=comparison.ties, losses=comparison.losses)
    return row


def _indexed(group: pd.DataFrame, what: str) -> pd.Series:
    """Values indexed by (dataset, query_id); a repeated query means two executions were pooled as one."""
    index = pd.MultiIndex.from_frame(group[["dataset", "query_id"]])
    if index.has_duplicates:
        repeated = index[index.duplicated()][0]
        raise ValueError(f"{what}: query {repeated[1]!r} of {repeated[0]} appears twice in one summary group "
                         "(two executions measured the same device?)")
    return pd.Series(group["value"].to_numpy(), index=index).sort_index()


def summarize(quality: pd.DataFrame, samples: int, seed: int) -> pd.DataFrame:
    if quality.empty:
        return pd.DataFrame(columns=COLUMNS["summary"])
    quality = quality.copy()
    for column in ("reranker", "variant", "device", "first_stage"):
        quality[column] = quality[column].fillna("")
    for column in ("first_stage_depth", "rerank_depth"):
        if column not in quality:
            quality[column] = pd.NA
        quality[column] = quality[column].astype("Int64").fillna(-1)
    first = quality[_is_first_stage(quality)]
    rows = []
    for key_values, group in quality.groupby(GROUP, sort=True, dropna=False):
        key = dict(zip(GROUP, key_values))
        what = f"{key['system']} {key['variant']} {key['device']} {key['measure']}".strip()
        values = _indexed(group, what)
        base = None
        if key["system"] in RERANKING_SYSTEMS:
            base_rows = first[(first["run_id"] == key["run_id"]) & (first["measure"] == key["measure"])]
            base = _indexed(base_rows, f"first stage {key['measure']}")
            if not values.index.isin(base.index).all():
                missing = values.index[~values.index.isin(base.index)]
                raise ValueError(f"{what}: {len(missing)} queries are not in the first stage (e.g. {missing[0]})")
        datasets = values.index.get_level_values("dataset")
        for dataset in sorted(set(datasets)):
            in_dataset = values[datasets == dataset]
            rows.append({**_row({**key, "dataset": dataset}, in_dataset,
                                None if base is None else base.loc[in_dataset.index], samples, seed, None),
                         "datasets": dataset})
        run_datasets = sorted(set(first[first["run_id"] == key["run_id"]]["dataset"]))
        if len(run_datasets) > 1 and sorted(set(datasets)) == run_datasets:
            strata = pd.Series(datasets, index=values.index)
            rows.append({**_row({**key, "dataset": MACRO}, values,
                                None if base is None else base.loc[values.index], samples, seed, strata),
                         "datasets": ", ".join(run_datasets)})
    summary = pd.DataFrame.from_records(rows)
    for column in ("reranker", "variant", "device", "first_stage"):
        summary[column] = summary[column].replace("", None)
    for column in ("first_stage_depth", "rerank_depth"):
        summary[column] = summary[column].astype("Int64").replace(-1, pd.NA)
    return summary.reindex(columns=COLUMNS["summary"] + ["datasets"])
