"""The report's section on hosted comparison rerankers (``api:<provider>/<model>``): which model answered, when
("as served on"), through which base URL, how many queries it scored or failed, what the responses billed and what
that cost, and its quality against the reranker under test on the same candidates (tables/comparisons).

Their request latency is printed here only, labelled "network included", and never in the headline or the speed
figures: it holds the network and the provider's fleet, not the hardware the run measured.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from runlocalai_bench.quality.summary import MACRO
from runlocalai_bench.reporting.page import Block, Heading, Note, Table, Text
from runlocalai_bench.rerankers.hosted import HOSTED_VARIANT, LATENCY_LABEL
from runlocalai_bench.units import interval, sig

EXPLANATION = (
    "Hosted rerankers score the same candidates as the local ones, through their provider's API (one request per "
    "query with its candidates; split where the provider's limits require, the counts say so). Each reads every "
    "document up to its provider's own limit (Cohere's max_tokens_per_doc, 4,096 tokens by default; Voyage's "
    "context), while the local rerankers read query and document within the run's max_length: on long documents "
    "the hosted ones see more text. A hosted model can "
    "change under the same name: each row says when its answers were served. A query whose requests still failed "
    "after their retries is not scored and is left out of the comparison (quality over the queries scored); the difference is the hosted reranker's nDCG@10 "
    "minus the reranker under test's on the queries both scored, averaged over the run's datasets (positive: the "
    "hosted one better; tables/comparisons holds the opposite sign, the reranker under test minus its baseline). Units "
    "are what the responses billed (Cohere: search units, one query of up to 100 documents; Voyage, Jina: tokens); "
    "cost = units at params/references/prices.yaml's price, answers from the response cache included. Request "
    f"latency ({LATENCY_LABEL}) holds the network and the provider's queue: it is not comparable with a local "
    "variant's pairs/s or latency, and no speed figure or headline row shows it. Keys came from "
    "the environment and are recorded nowhere. Per-query rows: tables/hosted.csv.")


def _served(dates: pd.Series) -> str:
    days = sorted({str(d)[:10] for d in dates.dropna()})
    if not days:
        return "not recorded"
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}"


def hosted_display(hosted: pd.DataFrame, comparisons: pd.DataFrame, settings: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per run and hosted reranker (what its execution recorded), with its difference against the reranker
    under test from tables/comparisons (the run-level row of each device)."""
    rows = []
    for (run_id, reranker), group in hosted.groupby(["run_id", "reranker"], sort=True):
        ok = group[group["status"] == "ok"]
        sent = group[group["sent"] > 0]
        latency = (sent["latency_s"] / sent["sent"]).dropna()
        units = group["units"].dropna()
        cost = group["cost_usd"].dropna()
        against = comparisons[(comparisons["run_id"] == run_id) & (comparisons["baseline"] == reranker)
                              & (comparisons["baseline_variant"] == HOSTED_VARIANT)] if not comparisons.empty else comparisons
        if "level" in against:
            against = against[against["level"].astype(bool)]
        # tables/comparisons holds the reranker under test minus its baseline; shown here the other way round, as
        # the claims read it (a positive number: the hosted one better)
        versus = "; ".join(
            f"{r['reranker']} ({r['variant']}, {r['device']}) {0.0 - r['diff']:+.3f} "  # 0.0 - x: no "-0.000"
            f"{interval(0.0 - r['diff_ci_high'], 0.0 - r['diff_ci_low'], lambda v: f'{v:+.3f}')}"
            f"{' (macro)' if r['dataset'] == MACRO else ''}" for _, r in against.iterrows()) or "not compared"
        record = settings.get(f"{run_id}|{reranker}", {})
        rows.append({
            "Run": run_id, "Hosted reranker": reranker, "As served on": _served(group["served_utc"]),
            "Base URL": record.get("base_url", "not recorded"),
            "Queries scored": f"{len(ok)} of {len(group)}" + (f" ({len(group) - len(ok)} failed)" if len(ok) < len(group) else ""),
            "Requests (sent now)": f"{int(group['requests'].sum())} ({int(group['sent'].sum())})",
            "Units billed": f"{sig(units.sum())} {str(group['unit'].iloc[0]).replace('_', ' ')}" if len(units) else "not reported",
            "Cost (USD)": f"{cost.sum():.4f}" if len(cost) else "no price",
            f"Request latency p50 ({LATENCY_LABEL})": f"{latency.median():.2f} s" if len(latency) else "all cached",
            "Hosted minus the reranker under test, nDCG@10 (95% CI)": versus,
        })
    return pd.DataFrame(rows)


def hosted_blocks(hosted: pd.DataFrame, comparisons: pd.DataFrame, settings: dict[str, dict[str, Any]],
                  skipped: list[tuple[str, str]]) -> list[Block]:
    """The section (nothing when no run listed a hosted reranker). ``skipped``: (reranker, reason) of hosted
    executions that scored nothing (no key, every request failed)."""
    if hosted.empty and not skipped:
        return []
    blocks: list[Block] = [Heading("Hosted rerankers (APIs)", anchor="hosted")]
    if not hosted.empty:
        blocks.append(Table(hosted_display(hosted, comparisons, settings), anchor="hosted-table"))
    if skipped:
        blocks.append(Note("**Not run:** " + "; ".join(why if why.startswith(r) else f"{r}: {why}" for r, why in skipped)))
    blocks.append(Text(EXPLANATION, "small"))
    return blocks
