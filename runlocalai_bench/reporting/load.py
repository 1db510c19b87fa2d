"""The report's "Served under load" section: per served variant, what one user gets (concurrency 1), what the
server gives at saturation (its best answered pairs/s over the sweep, with the tail latency there), and the
in-process variant of the same file one query at a time beside the served variant on the same queries (both
query workloads of tables/throughput: the ratio compares like with like).

Why a section of its own: local users run a reranker behind a server, many requests at once; the in-process rows
answer "how fast is this file", this one "what does my server give and where does it saturate".
"""

from __future__ import annotations

import pandas as pd

from runlocalai_bench.rerankers.registry import VARIANTS
from runlocalai_bench.units import MISSING, duration_ms, sig

KEYS = ["run_id", "reranker", "variant", "device", "dataset"]
NUMERIC = {"c=1 pairs/s", "c=1 p50", "c=1 p99", "best pairs/s", "p50 there", "p99 there", "in process pairs/s",
           "in process p50", "served, same queries", "served / in process"}
EXPLANATION = (
    "One request = one query with its candidates, sent to the server this run started on 127.0.0.1; client and "
    "server share the machine's cores (tables/load `client_cpu`: the client's CPU seconds per second). c=1: one "
    "request at a time (closed loop). Best: the highest answered pairs/s over the sweep (closed-loop concurrencies "
    "and open-loop Poisson rates; in the open loop latency counts from each scheduled arrival), with the point it "
    "came from and its latency. p99 only from 500 answered requests a point (\u2013 below that, as in every speed table). "
    "In process: the in-process variant of the same file (the GGUF file for llama-server, the checkpoint for "
    "infinity), one query at a time (tables/throughput, query workload). Served, same queries: the served variant's "
    "own query workload there (the same queries, one request at a time, over the same timed rounds); served / in "
    "process compares those two, not the sweep's c=1 point, whose queries are the sweep's own "
    "(serve.max_queries).")


def load_rows(load: pd.DataFrame, throughput: pd.DataFrame) -> pd.DataFrame:
    """One row per served variant, device and dataset (see the module docstring)."""
    if load.empty:
        return pd.DataFrame()
    reference = throughput[throughput["workload"] == "query"] if not throughput.empty else throughput
    rows = []
    for keys, group in load.groupby(KEYS, dropna=False, sort=False):
        row = dict(zip(KEYS, keys))
        one = group[(group["mode"] == "closed") & (group["concurrency"] == 1)]
        answered = group[group["errors"] < group["requests"]]
        best = answered.loc[answered["pairs_per_s"].idxmax()] if not answered.empty else None
        twin = VARIANTS[row["variant"]].same_file_as if row["variant"] in VARIANTS else None
        same = reference[(reference["run_id"] == row["run_id"]) & (reference["variant"] == twin)
                         & (reference["device"] == row["device"]) & (reference["dataset"] == row["dataset"])] \
            if twin and not reference.empty else reference.iloc[0:0]
        in_process = same["pairs_per_s"].median() if not same.empty else None
        own = reference[(reference["run_id"] == row["run_id"]) & (reference["variant"] == row["variant"])
                        & (reference["device"] == row["device"]) & (reference["dataset"] == row["dataset"])] \
            if not reference.empty else reference
        rows.append({
            **row,
            "c1_pairs_per_s": one["pairs_per_s"].iloc[0] if not one.empty else None,
            "c1_p50_ms": one["latency_p50_ms"].iloc[0] if not one.empty else None,
            "c1_p99_ms": one["latency_p99_ms"].iloc[0] if not one.empty else None,
            "best_pairs_per_s": best["pairs_per_s"] if best is not None else None,
            "best_point": (f"c={int(best['concurrency'])}" if best["mode"] == "closed"
                           else f"{sig(best['offered_rate'])} req/s offered") if best is not None else None,
            "best_p50_ms": best["latency_p50_ms"] if best is not None else None,
            "best_p99_ms": best["latency_p99_ms"] if best is not None else None,
            "errors": f"{int(group['errors'].sum())} of {int(group['requests'].sum())}",
            "in_process": twin,
            "in_process_pairs_per_s": in_process,
            "in_process_p50_ms": same["latency_p50_ms"].median() if not same.empty else None,
            "served_query_pairs_per_s": own["pairs_per_s"].median() if not own.empty else None,
        })
    return pd.DataFrame(rows)


def load_display(rows: pd.DataFrame, with_run: bool) -> pd.DataFrame:
    """The section's table as an editor reads it."""
    def num(value) -> str:
        return sig(value) if value is not None and pd.notna(value) else MISSING

    def ms(value) -> str:
        return duration_ms(value) if value is not None and pd.notna(value) else MISSING

    shown = pd.DataFrame({
        "run": rows["run_id"], "variant": rows["variant"], "device": rows["device"], "dataset": rows["dataset"],
        "c=1 pairs/s": [num(v) for v in rows["c1_pairs_per_s"]],
        "c=1 p50": [ms(v) for v in rows["c1_p50_ms"]], "c=1 p99": [ms(v) for v in rows["c1_p99_ms"]],
        "best pairs/s": [num(v) for v in rows["best_pairs_per_s"]], "at": rows["best_point"],
        "p50 there": [ms(v) for v in rows["best_p50_ms"]], "p99 there": [ms(v) for v in rows["best_p99_ms"]],
        "failed requests": rows["errors"],
        "in process": [v or MISSING for v in rows["in_process"]],
        "in process pairs/s": [num(v) for v in rows["in_process_pairs_per_s"]],
        "in process p50": [ms(v) for v in rows["in_process_p50_ms"]],
        "served, same queries": [num(v) for v in rows["served_query_pairs_per_s"]],
        "served / in process": [f"{b / i:.2f}x" if b is not None and i is not None and pd.notna(b) and pd.notna(i) and i
                                else MISSING for b, i in zip(rows["served_query_pairs_per_s"],
                                                             rows["in_process_pairs_per_s"])],
    })
    return shown if with_run else shown.drop(columns=["run"])
