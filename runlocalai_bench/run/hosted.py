"""The rerank stage of a hosted comparison reranker (``api:<provider>/<model>`` in ``reranker.baselines``).

It scores the very candidates the local rerankers score (the first stage's run files, the same evaluated queries)
and writes the same quality, depth and run files, under the variant ``hosted`` and the device ``network``: the
rows say what they are, and tables/comparisons sets them against the main reranker on each device. What differs
from a local execution:

- no throughput, memory or model rows: the model runs on the provider's machines. Each request's seconds go to
  tables/hosted, labelled "network included", with what the responses billed and when they were served;
- a query whose requests still fail after their retries is a recorded failure: its row in tables/hosted says
  why, its quality is not measured, and quality is reported over the queries scored (with their count);
- without the provider's key in the environment nothing is sent: answers already in the response cache are used
  (a re-run needs no key), and with none the execution is a recorded skip naming the variable.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runlocalai_bench.data.rankings import rerank_top
from runlocalai_bench.data.trec import read_trec, write_trec
from runlocalai_bench.params import Params
from runlocalai_bench.paths import references_path
from runlocalai_bench.quality.depth import depth_rows
from runlocalai_bench.quality.metrics import evaluate, measure_names, quality_rows
from runlocalai_bench.rerankers.hosted import (
    HOSTED_DEVICE, HOSTED_VARIANT, KEY_NOT_USED, LATENCY_LABEL, PRICES_FILE, CostMeter, HostedReranker, QueryOutcome,
    ResponseCache, RetryPolicy, estimated_units, key_refusal, load_prices, parse_spec, split_documents,
)
from runlocalai_bench.results.bundle import Bundle, rerank_execution, write_json
from runlocalai_bench.results.tables import write_part
from runlocalai_bench.run.jobs import DatasetJob, StageOutcome, budgeted_queries, load_run_collection
from runlocalai_bench.run.progress import ProgressWriter
from runlocalai_bench.units import sig

CACHE_FOLDER = "hosted-responses"


def prices_path(params: Params) -> Path | None:
    """``prices.yaml`` beside the run's published references (``params/references/prices.yaml``), resolved
    against the repository: a kernel's working directory is elsewhere."""
    folder = references_path(params.references)
    if folder is None:
        return None
    folder = folder if folder.is_dir() else folder.parent
    return folder / PRICES_FILE


PLANNED_FILE = "hosted.json"  # in the bundle: each hosted execution's planned cost, which shares out the cap


def execution_cap(bundle: Bundle, params: Params, label: str) -> float | None:
    """The part of ``api.max_cost_usd`` execution ``label`` may spend: the cap shared out in proportion to each
    hosted execution's planned cost (``hosted.json``, written by the runner from the plan), or equally where no
    plan priced them. Shares add up to the cap whatever runs where or when (a resumed execution, a Ray node that
    sees no other execution's record)."""
    cap = params.api.max_cost_usd
    if cap is None:
        return None
    planned = {}
    path = bundle.root / PLANNED_FILE
    if path.is_file():
        planned = {k: float(v or 0.0) for k, v in json.loads(path.read_text(encoding="utf-8")).get("planned_usd", {}).items()}
    total = sum(planned.values())
    if label in planned and total > 0:
        return cap * planned[label] / total
    return cap / max(len(params.reranker.hosted), 1)


def planned_costs(rows: pd.DataFrame) -> dict[str, float]:
    """Each hosted execution's planned cost (USD) from the plan's rows, for :data:`PLANNED_FILE`."""
    if rows.empty or "stage" not in rows:
        return {}
    hosted = rows[rows["stage"] == "hosted"]
    return {rerank_execution(HOSTED_VARIANT, HOSTED_DEVICE, spec): float(group["cost_usd"].fillna(0.0).sum())
            for spec, group in hosted.groupby("reranker")}


def rerun_on_resume(record: dict) -> bool:
    """Whether a hosted execution recorded as ended runs again on ``--resume``: when it was skipped (no key, or
    nothing scored) or left queries unscored. Its answered requests come from the response cache: free."""
    return record.get("variant") == HOSTED_VARIANT and (record.get("status") == "skipped" or bool(record.get("reason")))


def again_command(baseline: str) -> str:
    """How to run one hosted execution again in a finished bundle (an interrupted run: ``--resume``)."""
    return (f"python -m runlocalai_bench.run.execute rerank BUNDLE {HOSTED_VARIANT} {HOSTED_DEVICE} {baseline}, then "
            "runlocalai-bench finalize BUNDLE (an interrupted run: the same command with --resume)")


def hosted_reranker(params: Params, baseline: str, meter: CostMeter) -> HostedReranker:
    """The client of ``baseline`` as the parameters set it up (base URL, limits, price, the run's cost meter)."""
    hosted = parse_spec(baseline)
    provider_params = params.api.provider(hosted.provider.name)
    return HostedReranker(hosted, params.api.base_url(hosted.provider.name),
                          ResponseCache(params.cache_path / CACHE_FOLDER),
                          RetryPolicy(params.api.max_retries, 1.0, params.api.max_backoff_s, params.api.timeout_s),
                          params.api.concurrency, provider_params.max_tokens_per_doc,
                          load_prices(prices_path(params)).get(baseline), meter)


def _summary(outcomes: list[QueryOutcome]) -> dict:
    latencies = np.array([o.latency_s / o.sent for o in outcomes if o.latency_s is not None and o.sent], dtype=float)
    served = sorted(o.served_utc for o in outcomes if o.served_utc)
    units = [o.units for o in outcomes if o.units is not None]
    costs = [o.cost_usd for o in outcomes if o.cost_usd is not None]
    return {
        "queries": len(outcomes), "scored": sum(o.scores is not None for o in outcomes),
        "failed": sum(o.scores is None for o in outcomes),
        "requests": sum(o.requests for o in outcomes), "sent_now": sum(o.sent for o in outcomes),
        "split_queries": sum(o.requests > 1 for o in outcomes),
        "attempts": sum(o.attempts for o in outcomes),
        "units": float(sum(units)) if units else None, "cost_usd": float(sum(costs)) if costs else None,
        "served_from_utc": served[0] if served else None, "served_to_utc": served[-1] if served else None,
        "request_latency_s": ({"p50": float(np.percentile(latencies, 50)), "p90": float(np.percentile(latencies, 90)),
                               "requests": int(latencies.size), "label": LATENCY_LABEL} if latencies.size else None),
        "errors": sorted({o.error for o in outcomes if o.error})[:5],
    }


def rerank_hosted(bundle: Bundle, params: Params, baseline: str) -> StageOutcome:
    """Score every dataset's candidates with the hosted reranker ``baseline``; evaluate the queries it scored."""
    hosted = parse_spec(baseline)
    label = rerank_execution(HOSTED_VARIANT, HOSTED_DEVICE, baseline)
    progress = ProgressWriter(bundle.root, label, stage="rerank", variant=HOSTED_VARIANT, device=HOSTED_DEVICE)
    meter = CostMeter(execution_cap(bundle, params, label), bundle.stages_dir / f"{label}.spend.jsonl")
    client = hosted_reranker(params, baseline, meter)
    client.key_refused = key_refusal(client.base_url, hosted.provider)  # None: requests may be sent
    meta: dict = {"stage": "rerank", "variant": HOSTED_VARIANT, "requested_device": HOSTED_DEVICE,
                  "device": HOSTED_DEVICE, "node_class": None, "weights": params.reranker.weights, "baseline": baseline,
                  "reranker": baseline, "datasets": {}, "hosted": {"settings": client.settings()},
                  "model_label": f"{baseline} (hosted; as served by {client.base_url})"}

    def finish(status: str, reason: str | None, quality: pd.DataFrame, depth: pd.DataFrame) -> StageOutcome:
        meta.update(status=status, reason=reason)
        write_json(bundle.stages_dir / f"{label}.json", meta)
        return StageOutcome(quality, meta, status, reason, depth=depth)

    if params.reranker.weights != "trained":
        return finish("skipped", f"{baseline}: a hosted model has no random-weight twin (the run uses "
                                 f"weights: {params.reranker.weights})", pd.DataFrame(), pd.DataFrame())
    budgeted = budgeted_queries(bundle, label)
    jobs = []
    for spec in params.datasets:
        if budgeted is not None and spec.label not in budgeted:
            continue
        collection, query_ids = load_run_collection(params, spec, None if budgeted is None else budgeted[spec.label])
        jobs.append(DatasetJob.build(spec, collection, query_ids, read_trec(bundle.first_stage_run(spec.slug)),
                                     params.reranker.depth))
        del collection

    quality_frames, depth_frames, hosted_frames, outcomes_all = [], [], [], []
    depth = params.reranker.depth
    for job in jobs:
        dataset_label = bundle.quality_label(job.spec.label)
        by_query: dict[str, list[int]] = {}
        for index, (query_id, _) in enumerate(job.keys):
            by_query.setdefault(query_id, []).append(index)
        requests = [(q, job.pairs[ix[0]][0], [job.pairs[i][1] for i in ix]) for q, ix in by_query.items()]
        outcomes = client.rerank(requests, progress.callback("scoring", job.spec.label, unit="queries"))
        outcomes_all += outcomes
        scored = [o for o in outcomes if o.scores is not None]
        hosted_frames.append(pd.DataFrame([{
            "run_id": params.run_id or "", "dataset": dataset_label, "reranker": baseline,
            "provider": hosted.provider.name, "model": hosted.model, "query_id": o.query_id, "documents": o.documents,
            "status": "ok" if o.scores is not None else "failed", "requests": o.requests, "sent": o.sent,
            "attempts": o.attempts, "units": o.units, "unit": hosted.provider.unit, "cost_usd": o.cost_usd,
            "latency_s": o.latency_s, "served_utc": o.served_utc, "error": o.error,
            "truncation": client.settings()["truncation"]} for o in outcomes]))
        meta["datasets"][job.spec.label] = {"n_queries": len(job.query_ids), "n_scored": len(scored),
                                            "n_failed": len(outcomes) - len(scored), "n_pairs": len(job.pairs)}
        if not scored:
            continue
        query_ids = [o.query_id for o in scored]
        scores = {(o.query_id, job.keys[i][1]): float(s) for o in scored for i, s in zip(by_query[o.query_id], o.scores)}
        ranking = rerank_top(job.first, scores, depth, query_ids)
        write_trec(bundle.rerank_run(job.spec.slug, label), ranking, tag=f"{HOSTED_VARIANT}@{HOSTED_DEVICE}")
        kept = [(q, d) for q, d in job.keys if (q, d) in scores]
        pd.DataFrame({"query_id": [k[0] for k in kept], "doc_id": [k[1] for k in kept],
                      "score": np.array([scores[k] for k in kept], dtype=np.float32)}).to_parquet(
            bundle.rerank_scores(job.spec.slug, label), index=False)
        measured = evaluate(ranking, job.qrels, query_ids, measure_names(params.first_stage.depth, depth))
        quality_frames.append(quality_rows(
            measured, run_id=params.run_id or "", dataset=dataset_label, split=job.split, system="rerank",
            first_stage=params.first_stage.label, first_stage_depth=params.first_stage.depth, rerank_depth=depth,
            reranker=baseline, variant=HOSTED_VARIANT, device=HOSTED_DEVICE, language=job.language))
        depth_frames.append(depth_rows(job.first, scores, params.depth_curve, job.qrels, query_ids).assign(
            run_id=params.run_id or "", dataset=dataset_label, reranker=baseline, variant=HOSTED_VARIANT,
            device=HOSTED_DEVICE))
    summary = _summary(outcomes_all)
    meta["hosted"].update(summary, spent_usd=meter.spent_usd, spent_now_usd=meter.spent_now_usd,
                          cap_usd=meter.cap_usd, key_refused=client.key_refused)
    if hosted_frames:
        write_part(bundle.root, "hosted", label, pd.concat(hosted_frames, ignore_index=True))
    quality = pd.concat(quality_frames, ignore_index=True) if quality_frames else pd.DataFrame()
    depth_table = pd.concat(depth_frames, ignore_index=True) if depth_frames else pd.DataFrame()
    if summary["scored"] == 0:
        reason = (f"{baseline}: {client.key_refused}: {KEY_NOT_USED}; fix that in the environment (never in a "
                  f"parameter file) and run it again: {again_command(baseline)}"
                  if client.key_refused
                  else f"{baseline}: no query was scored ({'; '.join(summary['errors']) or 'no queries'}); to run it "
                       f"again: {again_command(baseline)}")
        return finish("skipped", reason, quality, depth_table)
    write_part(bundle.root, "quality", label, quality)
    write_part(bundle.root, "depth_quality", label, depth_table)
    meta["quality"] = "measured"
    note = None
    if summary["failed"]:
        note = (f"{summary['failed']} of {summary['queries']} queries failed and are not scored (quality over the "
                f"{summary['scored']} scored): {'; '.join(summary['errors'])}; to ask for them again: "
                f"{again_command(baseline)}")
    progress.update("scoring", summary["queries"], summary["queries"], unit="queries", force=True)
    return finish("ok", note, quality, depth_table)



# ------------------------------------------------------------------------------------------------ planning

# Seconds one request (a query's candidates) is taken to cost before any was sent: an assumption, printed as
# such, for the plan's total and a budget's share; the run records what the requests took (tables/hosted).
ASSUMED_REQUEST_S = 1.0


def full_pair_tokens(tokenizer: Any, sample: list[tuple[str, str]]) -> float:
    """Mean tokens of the sampled pairs without any cut, in the main reranker's tokenizer: what a provider bills
    is the whole texts it reads (Voyage truncates only past 32K tokens), not the run's max_length. The providers'
    tokenizers are not public; this one stands in, and the plan says so."""
    if not sample:
        return 0.0
    queries = tokenizer([q for q, _ in sample], add_special_tokens=False)["input_ids"]
    docs = tokenizer([d for _, d in sample], add_special_tokens=False)["input_ids"]
    return float(np.mean([len(q) + len(d) for q, d in zip(queries, docs)]))


def hosted_plan_rows(baseline: str, sizes: list[Any], params: Params, tokenizer: Any) -> tuple[list[dict], dict[str, float]]:
    """The plan's rows of one hosted reranker (one per dataset: queries, pairs, units, cost and an assumed time)
    and its seconds per query for a budget."""
    hosted = parse_spec(baseline)
    price = load_prices(prices_path(params)).get(baseline)
    depth = params.reranker.depth
    rows, per_query = [], {}
    for size in sizes:
        documents = min(depth, size.pairs // size.n_queries) if size.n_queries else 0
        tokens, how = 0.0, "one search unit per query and started 100 documents"
        if hosted.provider.unit == "tokens" and size.sample:
            tokens = full_pair_tokens(tokenizer, size.sample)
            how = f"{sig(tokens)} tokens per pair uncut (the main reranker's tokenizer standing in for the provider's)"
        elif hosted.provider.unit == "tokens":  # no texts here yet (not downloaded): the cut pairs' estimate
            tokens = size.mean_tokens
            how = (f"{sig(tokens)} tokens per pair, the run's max_length-cut estimate (no texts here yet): longer "
                   "documents bill more; the run stops sending at the cap")
        units = estimated_units(hosted.provider, size.n_queries, documents, tokens)
        requests = len(split_documents(hosted.provider, "", [""] * documents, hosted.model)) if documents else 0
        # queries go out api.concurrency at a time, so the wall time per query is the request time shared out
        per_query[size.label] = requests * ASSUMED_REQUEST_S / params.api.concurrency
        seconds = size.n_queries * per_query[size.label]
        rows.append({"stage": "hosted", "dataset": size.label, "variant": HOSTED_VARIANT, "device": HOSTED_DEVICE,
                     "reranker": baseline, "queries": size.n_queries, "docs": size.n_docs, "pairs": size.pairs,
                     "mean_tokens": tokens or None, "exports": "", "predicted_s": seconds, "peak_memory_mb": None,
                     "rate_pairs_per_s": None, "units": units, "unit": hosted.provider.unit,
                     "cost_usd": units * price.usd_per_unit if price else None,
                     "source": (f"{how}; {price.usd_per_unit * (1000 if price.unit == 'search_units' else 1e6):g} "
                                f"USD per {'1,000 search units' if price.unit == 'search_units' else 'million tokens'} "
                                f"({price.source}, read {price.retrieved})" if price else
                                f"{how}; no price for {baseline} in prices.yaml")
                     + f"; time assumed at {ASSUMED_REQUEST_S:g} s per request (network), "
                       f"{params.api.concurrency} at a time, not measured"})
    return rows, per_query


def planned_cost(rows: pd.DataFrame) -> tuple[float, list[str]]:
    """(USD the plan's hosted rows cost, the hosted rerankers without a price)."""
    if rows.empty or "stage" not in rows or not (rows["stage"] == "hosted").any():
        return 0.0, []
    hosted = rows[rows["stage"] == "hosted"]
    unpriced = sorted(set(hosted.loc[hosted["cost_usd"].isna(), "reranker"]))
    return float(hosted["cost_usd"].fillna(0.0).sum()), unpriced


def cost_refusal(rows: pd.DataFrame, params: Params) -> str | None:
    """Why the run may not start for what its hosted rerankers would cost (None: within api.max_cost_usd)."""
    cap = params.api.max_cost_usd
    if cap is None or not params.reranker.hosted or params.reranker.weights != "trained":
        return None  # random weights: the hosted executions are recorded skips that send nothing
    cost, unpriced = planned_cost(rows)
    if unpriced:
        return (f"api.max_cost_usd: no price for {', '.join(unpriced)} in prices.yaml, so the run's cost cannot be "
                "held to the cap; add its price (with source and date) or set --set api.max_cost_usd=null")
    if cost > cap:
        return (f"api.max_cost_usd: the plan's hosted rerankers would cost about {cost:.2f} USD, over the cap of "
                f"{cap:g} USD; to allow it: --set api.max_cost_usd={math.ceil(cost * 1.2 * 100) / 100:g}")
    return None
