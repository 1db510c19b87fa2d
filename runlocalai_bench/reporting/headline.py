"""The headline table: one row per (dataset or macro-average, reranker, variant, device) with the numbers an
editor quotes, and the paragraph that summarises it.

It is derived, not measured: every value is read from tables/summary (nDCG@10 and lift, with CIs),
tables/drift (agreement with torch-fp32), tables/throughput (candidates workload: pairs/s, memory, file, MFU;
query workload: latency) and tables/runs (skipped and failed executions, with their reason). Across datasets
(the macro-average row) pairs/s is all the datasets' timed pairs over their total time, latency the mean of
the datasets' medians (and the worst p99), memory the largest peak and agreement the mean, so that the row
answers "what does this variant do on this suite".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from runlocalai_bench.perf import timing
from runlocalai_bench.quality.summary import MACRO
from runlocalai_bench.rerankers.hosted import HOSTED_VARIANT
from runlocalai_bench.rerankers.registry import REFERENCE_VARIANT, is_served
from runlocalai_bench.results.tables import COLUMNS
from runlocalai_bench.units import percent, rate

KEYS = ["run_id", "dataset", "reranker", "variant", "device"]
HEADLINE_MEASURE = "nDCG@10"
WITHIN = 0.01  # "within 1 nDCG point": 0.01 on nDCG's 0-1 scale


def _merge(left: pd.DataFrame, right: pd.DataFrame, on: list[str], how: str) -> pd.DataFrame:
    """``left.merge(right)`` that also works when a side is empty. Tables read from parquet under pandas 3 have
    pyarrow-backed string keys, and merging two such key columns with no rows at all raises ArrowInvalid
    ("cannot construct ChunkedArray from empty vector"): a run timed on fixed shapes only (the length sweep) has
    no candidates and no query rows. An empty side's keys carry no values, so casting them to object loses
    nothing."""
    if left.empty or right.empty:
        left = left.astype({k: object for k in on if k in left})
        right = right.astype({k: object for k in on if k in right})
    return left.merge(right, on=on, how=how)


def _level(datasets: list[str]) -> str:
    """The dataset label a run is judged at: its macro-average with several datasets, else its one dataset."""
    return MACRO if len(datasets) > 1 else (datasets[0] if datasets else "")


def _quality(summary: pd.DataFrame) -> pd.DataFrame:
    rows = summary[summary["measure"] == HEADLINE_MEASURE]
    out = rows.rename(columns={"mean": "ndcg10", "ci_low": "ndcg10_ci_low", "ci_high": "ndcg10_ci_high",
                               "lift_ci_low": "lift_abs_ci_low", "lift_ci_high": "lift_abs_ci_high"})
    out = out.assign(system=np.where(out["system"].isin(["rerank", "oracle"]), out["system"], "first stage"))
    keep = KEYS + ["system", "ndcg10", "ndcg10_ci_low", "ndcg10_ci_high", "lift_abs", "lift_abs_ci_low",
                   "lift_abs_ci_high", "lift_rel", "lift_rel_ci_low", "lift_rel_ci_high", "p_value", "n_queries",
                   "first_stage", "first_stage_depth", "rerank_depth"]
    out = out[[c for c in keep if c in out.columns]].copy()
    first = out["system"] != "rerank"  # the first stage and the oracle ran on no device, in no variant
    out.loc[first, ["variant", "device"]] = ["", ""]
    out.loc[out["system"] == "first stage", "reranker"] = ""
    return out


def _agreement(drift: pd.DataFrame) -> pd.DataFrame:
    if drift.empty:
        return pd.DataFrame(columns=KEYS + ["kendall_tau", "top10_overlap"])
    per = drift[KEYS + ["kendall_tau", "top10_overlap"]]
    macro = per.groupby([k for k in KEYS if k != "dataset"], as_index=False, dropna=False)[
        ["kendall_tau", "top10_overlap"]].mean().assign(dataset=MACRO)
    return pd.concat([per, macro[per.columns]], ignore_index=True)


def _speed(throughput: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per dataset and across datasets: pairs/s, latency, memory, file size, MFU, executed precision; and per
    variant, what its fixed-shape rows say (for variants that ran no candidates workload)."""
    t = throughput.copy()
    for column in COLUMNS["throughput"]:  # a run without the query workload has no latency rows at all
        if column not in t:
            t[column] = np.nan
    cuda = t["device"].astype(str).str.startswith("cuda")
    t["peak_memory_bytes"] = np.where(cuda, t["peak_vram_mb"].astype(float), t["peak_rss_mb"].astype(float)) * 2**20
    t["memory_kind"] = np.where(cuda, "GPU (NVML)", "resident set")
    # Bundles measured before exports moved to their own process have no model share: shown as missing there.
    t["model_memory_bytes"] = (t["model_memory_mb"].astype(float) * 2**20 if "model_memory_mb" in t
                               else np.nan)
    if "file_bytes" not in t:
        t["file_bytes"] = t["model_bytes"]
    t["file_bytes"] = t["file_bytes"].fillna(t["model_bytes"])
    t["latency_p99_ms"] = timing.shown_tail(t, 99)  # only from enough samples (perf.timing.min_samples)
    group = [k for k in KEYS if k != "dataset"]
    cand = t[t["workload"] == "candidates"]
    cand = cand.groupby(KEYS, as_index=False, dropna=False).agg(
        pairs_per_s=("pairs_per_s", "median"), n_timed=("n_pairs", "sum"), peak_memory_bytes=("peak_memory_bytes", "max"),
        model_memory_bytes=("model_memory_bytes", "max"), memory_kind=("memory_kind", "first"), file_bytes=("file_bytes", "max"), mfu=("mfu", "median"),
        executed_precision=("executed_precision", "first"))
    query = t[t["workload"] == "query"].groupby(KEYS, as_index=False, dropna=False).agg(
        latency_p50_ms=("latency_p50_ms", "median"), latency_p99_ms=("latency_p99_ms", "median"))
    per = _merge(cand, query, KEYS, "outer")
    # Across datasets: pairs/s over all the datasets' timed pairs (total pairs over total time, not a mean of
    # rates), the mean of the datasets' median latencies and the worst dataset's p99 (per-request latencies are
    # not kept, so no pooled percentile is claimed), the largest memory peak.
    per["_seconds"] = per["n_timed"] / per["pairs_per_s"]
    macro = per.groupby(group, as_index=False, dropna=False).agg(
        _pairs=("n_timed", "sum"), _seconds=("_seconds", "sum"), latency_p50_ms=("latency_p50_ms", "mean"),
        latency_p99_ms=("latency_p99_ms", lambda p99: p99.max() if p99.notna().all() else np.nan),
        peak_memory_bytes=("peak_memory_bytes", "max"),
        model_memory_bytes=("model_memory_bytes", "max"), memory_kind=("memory_kind", "first"), file_bytes=("file_bytes", "max"), mfu=("mfu", "mean"),
        executed_precision=("executed_precision", "first")).assign(dataset=MACRO)
    macro["pairs_per_s"] = macro["_pairs"] / macro["_seconds"]
    per = per.drop(columns=["_seconds", "n_timed"])
    # Variants timed on fixed shapes only (a length sweep): their file, memory and best MFU still belong here.
    fixed = t[t["workload"] == "fixed"].groupby(group, as_index=False, dropna=False).agg(
        fixed_memory=("peak_memory_bytes", "max"), fixed_model_memory=("model_memory_bytes", "max"),
        fixed_kind=("memory_kind", "first"),
        fixed_file=("file_bytes", "max"), fixed_mfu=("mfu", "max"), fixed_precision=("executed_precision", "first"))
    out = pd.concat([per, macro[per.columns]], ignore_index=True)
    return out, fixed


def headline_table(tables: dict[str, pd.DataFrame], run_datasets: dict[str, list[str]],
                   profiles: dict[str, dict[str, Any]], weights: dict[str, str],
                   main: dict[str, str] | None = None) -> pd.DataFrame:
    """The headline rows of every run in ``tables``.

    ``run_datasets`` maps run_id to its datasets (to know its headline level), ``profiles`` "run_id|device" to
    the device's profile (for the hardware label), ``weights`` run_id to "trained"/"random", ``main`` run_id to
    its reranker under test (the others are comparison rerankers).
    """
    main = main or {}
    quality = _quality(tables["summary"])
    speed, fixed = (_speed(tables["throughput"]) if not tables["throughput"].empty
                    else (pd.DataFrame(columns=KEYS), pd.DataFrame()))
    rows = _merge(quality, _agreement(tables["drift"]), KEYS, "left")
    rows = _merge(rows, speed, KEYS, "outer")
    rows["system"] = rows["system"].fillna("rerank")
    single = {r for r, datasets in run_datasets.items() if len(datasets) <= 1}
    rows = rows[~((rows["dataset"] == MACRO) & rows["run_id"].isin(single))]  # no macro-average of one dataset
    runs = tables["runs"]
    reranks = runs[runs["stage"] == "rerank"] if not runs.empty else runs
    # Every variant a run measured or tried appears at the run's headline level, measured or not.
    if "reranker" not in reranks:  # runs tables from before comparison rerankers: all the main reranker's
        reranks = reranks.assign(reranker=None)
    present = {tuple(r) for r in rows[["run_id", "reranker", "variant", "device"]].astype(str).itertuples(index=False)}
    extra = []
    for _, execution in reranks.iterrows():
        key = tuple(str(execution[k]) for k in ("run_id", "reranker", "variant", "device"))
        level = _level(run_datasets.get(execution["run_id"], []))
        if execution["status"] != "ok" or key not in present:
            extra.append({"run_id": execution["run_id"], "dataset": level, "reranker": execution["reranker"],
                          "variant": execution["variant"], "device": execution["device"], "system": "rerank"})
    if extra:
        rows = pd.concat([rows, pd.DataFrame(extra)], ignore_index=True)
        rows = rows.drop_duplicates(subset=KEYS, keep="first")
    if len(fixed):
        rows = _merge(rows, fixed, [k for k in KEYS if k != "dataset"], "left")
        for column, source in (("peak_memory_bytes", "fixed_memory"), ("model_memory_bytes", "fixed_model_memory"),
                               ("memory_kind", "fixed_kind"),
                               ("file_bytes", "fixed_file"), ("mfu", "fixed_mfu"),
                               ("executed_precision", "fixed_precision")):
            reranked = rows["system"] == "rerank"
            rows.loc[reranked, column] = rows.loc[reranked, column].fillna(rows.loc[reranked, source])
        rows = rows.drop(columns=[c for c in rows.columns if c.startswith("fixed_")])
    status = {(r["run_id"], r["variant"], r["device"]): (r["status"], r.get("reason"))
              for _, r in reranks.iterrows() if r["reranker"] in (None, main.get(r["run_id"])) or pd.isna(r["reranker"])}
    status.update({(r["run_id"], r["reranker"], r["variant"], r["device"]): (r["status"], r.get("reason"))
                   for _, r in reranks.iterrows() if isinstance(r["reranker"], str)})
    rows["status"] = [("ok", None) if s != "rerank" else status.get((r, m, v, d), status.get((r, v, d), ("ok", None)))
                      for r, m, v, d, s in zip(rows["run_id"], rows["reranker"], rows["variant"], rows["device"],
                                               rows["system"])]
    rows["reason"] = [s[1] for s in rows["status"]]
    rows["status"] = [s[0] for s in rows["status"]]
    rows["weights"] = [weights.get(r, "") for r in rows["run_id"]]
    rows["comparison"] = [s == "rerank" and isinstance(m, str) and m != main.get(r, m)
                          for r, m, s in zip(rows["run_id"], rows["reranker"], rows["system"])]
    rows["hardware"] = [profiles.get(f"{r}|{d}", {}).get("label", "") if d else ""
                        for r, d in zip(rows["run_id"], rows["device"])]
    rows["level"] = [d == _level(run_datasets.get(r, [])) for r, d in zip(rows["run_id"], rows["dataset"])]
    # The reranker's name on rows that only came from runs/throughput.
    if "reranker" in rows:
        names = quality[quality["system"] == "rerank"].groupby("run_id")["reranker"].first().to_dict()
        names.update(tables["throughput"].groupby("run_id")["reranker"].first().to_dict()
                     if not tables["throughput"].empty else {})
        missing = rows["reranker"].isna() & (rows["system"] == "rerank")
        rows.loc[missing, "reranker"] = rows.loc[missing, "run_id"].map(names)
    # A random-weight run's first stage and oracle are real numbers, but on the handful of queries a speed run
    # samples (8 here, 4 there); beside a reference run's 300 queries they read as rival figures for the same
    # dataset. They stay in tables/summary; the headline keeps quality rows of runs that measure quality.
    reference_of_speed_run = rows["system"].isin(["first stage", "oracle"]) & (rows["weights"] == "random")
    rows = rows[~reference_of_speed_run]
    # A hosted reranker's rows (api:...) are not headline rows: beside local rows they would read as one more
    # variant of this hardware. Their quality is in tables/comparisons and the report's section on them.
    rows = rows[rows["variant"].astype(str) != HOSTED_VARIANT]
    for column in COLUMNS["headline"]:
        if column not in rows:
            rows[column] = np.nan
    return sort_headline(rows[COLUMNS["headline"]].reset_index(drop=True))


def sort_headline(rows: pd.DataFrame) -> pd.DataFrame:
    """Headline level first, then per dataset; within each, the rerankers by quality then speed (best first),
    then rows without quality by speed, then skipped and failed executions, and last the reference rows: the
    first stage alone and the oracle ceiling (no system, so never read as the best one)."""
    reference = rows["system"].map({"rerank": 0, "first stage": 1, "oracle": 2}).fillna(0)
    order = rows.assign(
        _level=~rows["level"].astype(bool), _dataset=rows["dataset"].astype(str), _reference=reference,
        _status=(rows["status"] != "ok").astype(int), _q=-rows["ndcg10"].astype(float).fillna(-np.inf),
        _s=-rows["pairs_per_s"].astype(float).fillna(-np.inf))
    keys = ["_level", "_dataset", "run_id", "_reference", "_status", "_q", "_s"]
    return order.sort_values(keys, kind="stable").drop(columns=keys[:2] + keys[3:]).reset_index(drop=True)


def clean_hardware(label: str) -> str:
    """'Intel(R) Xeon(R) Processor (2 cores)' -> 'Intel Xeon Processor (2 cores)', for reading."""
    for mark in ("(R)", "(TM)", "(tm)"):
        label = label.replace(mark, "")
    return " ".join(label.split())


def _of(row: pd.Series) -> str:
    """A variant named with its reranker ("onnx-int8 of BAAI/bge-reranker-v2-m3 on <CPU>"): the summary's best
    and fastest are the reranker under test's; a comparison reranker that beats them gets its own sentence."""
    return f"{row['variant']} of {row['reranker']} on {clean_hardware(str(row['hardware'] or row['device']))}"


def _name(row: pd.Series) -> str:
    return f"{row['variant']} on {clean_hardware(str(row['hardware'] or row['device']))}"


def _paired(comparisons: pd.DataFrame, row: pd.Series) -> pd.Series | None:
    """The quantization comparison of ``row``'s variant against torch-fp32 (same run, device, dataset)."""
    if comparisons is None or comparisons.empty:
        return None
    found = comparisons[(comparisons["kind"] == "quantization") & (comparisons["run_id"] == row["run_id"])
                        & (comparisons["variant"] == row["variant"]) & (comparisons["device"] == row["device"])
                        & (comparisons["dataset"] == row["dataset"])]
    if "reranker" in row.index and isinstance(row["reranker"], str):  # a comparison reranker's variants have rows too
        found = found[found["reranker"] == row["reranker"]]
    return found.iloc[0] if len(found) else None


def summary_sentences(headline: pd.DataFrame, comparisons: pd.DataFrame | None = None) -> list[str]:
    """The paragraph that opens the report, generated from the headline rows at each run's headline level and
    the paired comparisons: best quality, fastest, fastest whose paired CI excludes a loss of one nDCG point
    against torch-fp32, random weights, what was not measured."""
    level = headline[headline["level"].astype(bool)]
    reranked = level[(level["system"] == "rerank") & (level["status"] == "ok") & ~level["comparison"].astype(bool)]
    out: list[str] = []
    quality = reranked.dropna(subset=["ndcg10"])
    where = lambda r: f"{'the macro-average' if r['dataset'] == MACRO else r['dataset']}"  # noqa: E731
    if not quality.empty:
        # Under a time budget, executions evaluate nested samples of different sizes: means over different queries
        # do not rank variants. The best is picked among those that evaluated the most queries; the others are
        # compared with torch-fp32 on their common queries (tables/comparisons), and the sentence says so.
        counts = quality.reindex(columns=["n_queries"])["n_queries"].astype(float)
        pool = quality[counts == counts.max()] if counts.notna().any() else quality
        fewer = len(quality) - len(pool)
        best = pool.loc[pool["ndcg10"].astype(float).idxmax()]
        lift = (f", {percent(best['lift_rel'], signed=True)} over the first stage alone "
                f"({best['first_stage']} top {best['first_stage_depth']:.0f})" if pd.notna(best["lift_rel"]) else "")
        paired = _paired(comparisons, best)
        against = (f"; against {REFERENCE_VARIANT} on the same queries {paired['diff']:+.4f} "
                   f"[{paired['diff_ci_low']:+.4f}, {paired['diff_ci_high']:+.4f}]" if paired is not None else "")
        among = (f" (among the executions that evaluated all {best['n_queries']:.0f} queries; {fewer} evaluated a "
                 "smaller sample under the time budget and are compared with torch-fp32 on their common queries in "
                 "tables/comparisons)" if fewer else "")
        out.append(f"Best quality: {_of(best)}, nDCG@10 {best['ndcg10']:.3f} "
                   f"[{best['ndcg10_ci_low']:.3f}, {best['ndcg10_ci_high']:.3f}] on {where(best)}{lift}{against}{among}.")
    timed = reranked.dropna(subset=["pairs_per_s"])
    if not timed.empty:
        fastest = timed.loc[timed["pairs_per_s"].astype(float).idxmax()]
        reference = timed[(timed["variant"] == REFERENCE_VARIANT) & (timed["run_id"] == fastest["run_id"])
                          & (timed["device"] == fastest["device"])]
        ratio = (" (served: its candidates are whole queries, one request each, not the pairs torch-fp32 was timed "
                 "on; the same-query comparison is in \"Served under load\")" if is_served(fastest["variant"]) else
                 f" ({float(fastest['pairs_per_s']) / float(reference['pairs_per_s'].iloc[0]):.2g}× "
                 f"{REFERENCE_VARIANT} on the same device)" if len(reference) and fastest["variant"] != REFERENCE_VARIANT
                 else "")
        out.append(f"Fastest: {_of(fastest)}, {rate(fastest['pairs_per_s'])} pairs/s end to end{ratio}.")
    # A comparison reranker that beats the reranker under test is said here too, not only in the table below.
    others = level[(level["system"] == "rerank") & (level["status"] == "ok") & level["comparison"].astype(bool)]
    if not quality.empty and not others.dropna(subset=["ndcg10"]).empty:
        top = others.dropna(subset=["ndcg10"]).loc[lambda f: f["ndcg10"].astype(float).idxmax()]
        if float(top["ndcg10"]) > float(best["ndcg10"]):
            out.append(f"Comparison reranker {top['reranker']} ({top['variant']}) scored higher: nDCG@10 "
                       f"{top['ndcg10']:.3f} [{top['ndcg10_ci_low']:.3f}, {top['ndcg10_ci_high']:.3f}] on {where(top)} "
                       "(tables/comparisons has the paired difference).")
    if not timed.empty and not others.dropna(subset=["pairs_per_s"]).empty:
        quick = others.dropna(subset=["pairs_per_s"]).loc[lambda f: f["pairs_per_s"].astype(float).idxmax()]
        if float(quick["pairs_per_s"]) > float(fastest["pairs_per_s"]):
            out.append(f"Comparison reranker {quick['reranker']} ({quick['variant']}) is faster: "
                       f"{rate(quick['pairs_per_s'])} pairs/s end to end.")
    for (run_id, device), group in quality.groupby(["run_id", "device"]):
        reference = group[group["variant"] == REFERENCE_VARIANT]
        if reference.empty or group["pairs_per_s"].isna().all():
            continue
        ref = reference.iloc[0]
        close = [r for _, r in group.iterrows() if pd.notna(r["pairs_per_s"]) and (
            r["variant"] == REFERENCE_VARIANT
            or ((p := _paired(comparisons, r)) is not None and p["diff_ci_low"] >= -WITHIN))]
        if not close:
            continue
        pick = max(close, key=lambda r: float(r["pairs_per_s"]))
        hardware = clean_hardware(str(ref["hardware"] or device))
        if pick["variant"] == REFERENCE_VARIANT:
            out.append(f"On {hardware}, no variant whose paired CI rules out a loss of 1 nDCG point against "
                       f"{REFERENCE_VARIANT} is faster than {REFERENCE_VARIANT} itself ({rate(ref['pairs_per_s'])} pairs/s).")
        else:
            paired = _paired(comparisons, pick)
            out.append(f"Fastest whose paired CI rules out losing 1 nDCG point against {REFERENCE_VARIANT} on {hardware}: "
                       f"{pick['variant']}, {rate(pick['pairs_per_s'])} pairs/s "
                       f"({float(pick['pairs_per_s']) / float(ref['pairs_per_s']):.2g}×), nDCG@10 difference "
                       f"{paired['diff']:+.4f} [{paired['diff_ci_low']:+.4f}, {paired['diff_ci_high']:+.4f}].")
    random_runs = sorted({r for r in reranked["run_id"] if (reranked[reranked["run_id"] == r]["weights"] == "random").any()})
    if random_runs:
        out.append(f"No quality is reported for {', '.join(random_runs)}: random weights (the shape twin) measure "
                   "speed and memory only.")
    problems = level[level["status"] != "ok"]
    if not problems.empty:
        listed = "; ".join(f"{r['variant']} on {r['device']}"
                           + (f" ({r['reranker']})" if r["comparison"] else "")
                           + f" {r['status']} ({r['reason']})" for _, r in problems.iterrows())
        out.append(f"Not measured: {listed}.")
    return out
