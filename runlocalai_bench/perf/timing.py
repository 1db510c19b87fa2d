"""Timing harness: warm-up, then timed rounds until both a minimum duration and round count are reached.

Two workloads: ``candidates`` times the run's real query-candidate pairs end to end (text in,
scores out, tokenization and length-sorted batching included); ``fixed`` times the model alone on
synthetic batches of exact shape (batch size x max length). GPU work is synchronized before clocks are read
(every :meth:`Reranker.forward` and ``score`` returns only when the device is done).
"""

from __future__ import annotations

import math
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from runlocalai_bench.rerankers.base import Pair, Reranker


@dataclass
class Rounds:
    pairs_per_s: list[float]
    batch_latencies_s: list[float]
    pairs_total: int


def run_rounds(step: Callable[[], tuple[int, list[float]]], warmup_rounds: int, min_seconds: float,
               min_rounds: int, timed: AbstractContextManager | None = None) -> Rounds:
    """Call ``step`` (returns pairs done and per-batch latencies) ``warmup_rounds`` times untimed, then until
    ``min_seconds`` have passed and ``min_rounds`` rounds are done. ``timed`` (an energy meter, say) is entered
    after the warm-up and left after the last timed round, so it covers exactly the pairs that are counted."""
    for _ in range(warmup_rounds):
        step()
    rates, latencies, total = [], [], 0
    with timed or nullcontext():
        started = time.perf_counter()
        while len(rates) < min_rounds or time.perf_counter() - started < min_seconds:
            began = time.perf_counter()
            pairs, batch_latencies = step()
            rates.append(pairs / (time.perf_counter() - began))
            latencies.extend(batch_latencies)
            total += pairs
    return Rounds(rates, latencies, total)


# A tail percentile is reported only when at least this many samples lie at or beyond it (n >= 5 / (1 - p)):
# p90 needs 50 samples, p99 500. Below that a "p99" is the largest one or two samples, not a tail estimate.
TAIL_SAMPLES = 5
TAILS = (90, 99)


def min_samples(percentile: float) -> int:
    """Samples a percentile needs before it is reported (:data:`TAIL_SAMPLES` at or beyond it)."""
    return math.ceil(TAIL_SAMPLES / (1 - percentile / 100) - 1e-9)


def shown_tail(rows: Any, percentile: int) -> Any:
    """A table's ``latency_p<percentile>_ms`` column where its rows timed enough samples, NaN elsewhere (rows of
    bundles from before 2026-12 recorded no ``latency_samples``: their tails are not shown either)."""
    column = rows[f"latency_p{percentile}_ms"]
    if "latency_samples" not in rows:
        return column.where(column != column)  # all NaN, same index
    return column.where(rows["latency_samples"] >= min_samples(percentile))


def summarize_rounds(rounds: Rounds) -> dict[str, float]:
    """Median pairs/s with its quartiles over rounds; latency p50 always, p90 and p99 only from enough samples
    (:func:`min_samples`), NaN otherwise ("n too small" in the report)."""
    rates = np.asarray(rounds.pairs_per_s)
    q1, median, q3 = np.percentile(rates, [25, 50, 75])
    latencies = np.asarray(rounds.batch_latencies_s) * 1e3
    tails = {f"latency_p{p}_ms": float(np.percentile(latencies, p)) if latencies.size >= min_samples(p) else float("nan")
             for p in TAILS}
    return {"pairs_per_s": float(median), "pairs_per_s_iqr": float(q3 - q1), "pairs_per_s_q1": float(q1),
            "pairs_per_s_q3": float(q3), "latency_p50_ms": float(np.percentile(latencies, 50)), **tails,
            "latency_samples": int(latencies.size), "rounds": int(rates.size), "pairs_timed": rounds.pairs_total}


def timed_sample(pairs: Sequence[Pair], max_pairs: int | None, seed: int) -> list[Pair]:
    """A seeded sample of ``max_pairs`` pairs drawn across all queries (the first pairs would all belong to one
    query, whose documents may be unusually long or short)."""
    if max_pairs is None or len(pairs) <= max_pairs:
        return list(pairs)
    picked = np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)
    return [pairs[i] for i in sorted(picked)]


def timed_whole_queries(queries: Sequence[Sequence[Pair]], max_pairs: int | None, seed: int) -> list[Pair]:
    """The candidates sample of a served variant: whole queries (a seeded order) until ``max_pairs`` pairs, at
    least one query. A server is sent one request per query: pairs drawn across queries would make requests of
    one or two candidates each, and time HTTP round trips rather than the reranker."""
    order = np.random.default_rng(seed).permutation(len(queries))
    picked: list[Pair] = []
    for index in order:
        if picked and max_pairs is not None and len(picked) + len(queries[index]) > max_pairs:
            break
        picked += list(queries[index])
    return picked


def time_candidates(reranker: Reranker, pairs: Sequence[Pair], batch_size: int, max_length: int,
                    length_sorted: bool, warmup_rounds: int, min_seconds: float, min_rounds: int,
                    timed: AbstractContextManager | None = None) -> dict[str, Any]:
    """End to end on real pairs; one round is one pass over all of them."""
    last = {}

    def step() -> tuple[int, list[float]]:
        run = reranker.score(pairs, batch_size, max_length, length_sorted)
        last["run"] = run
        return len(pairs), run.batch_seconds

    lengths = reranker.token_lengths(pairs, max_length).astype(np.float64)
    rounds = run_rounds(step, warmup_rounds, min_seconds, min_rounds, timed)
    run = last["run"]
    return {**summarize_rounds(rounds), "workload": "candidates", "batch_size": batch_size, "max_length": max_length,
            "n_pairs": len(pairs), "mean_tokens": float(lengths.mean()), "mean_sq_tokens": float((lengths ** 2).mean()),
            "padding_fraction": run.padding_fraction, "length_sorted": length_sorted}


def timed_queries(query_pairs: Sequence[Sequence[Pair]], max_queries: int | None, seed: int) -> list[list[Pair]]:
    """A seeded sample of queries (each with all its candidates) for the per-query latency workload."""
    queries = [list(p) for p in query_pairs if p]
    if max_queries is None or len(queries) <= max_queries:
        return queries
    picked = np.random.default_rng(seed).choice(len(queries), size=max_queries, replace=False)
    return [queries[i] for i in sorted(picked)]


def time_queries(reranker: Reranker, queries: Sequence[Sequence[Pair]], batch_size: int, max_length: int,
                 length_sorted: bool, warmup_rounds: int, min_seconds: float, min_rounds: int,
                 timed: AbstractContextManager | None = None) -> dict[str, Any]:
    """The latency a search box feels: each request scores one query's candidates, text in, scores out; one
    round is one request per sampled query. Latency percentiles are over requests, not batches."""

    def step() -> tuple[int, list[float]]:
        latencies, pairs = [], 0
        for query in queries:
            began = time.perf_counter()
            reranker.score(query, batch_size, max_length, length_sorted)
            latencies.append(time.perf_counter() - began)
            pairs += len(query)
        return pairs, latencies

    flat = [pair for query in queries for pair in query]
    lengths = reranker.token_lengths(flat, max_length).astype(np.float64)
    rounds = run_rounds(step, warmup_rounds, min_seconds, min_rounds, timed)
    return {**summarize_rounds(rounds), "workload": "query", "batch_size": batch_size, "max_length": max_length,
            "n_pairs": len(flat), "n_queries": len(queries), "pairs_per_query": len(flat) / len(queries),
            "mean_tokens": float(lengths.mean()), "mean_sq_tokens": float((lengths ** 2).mean()),
            "padding_fraction": float("nan"), "length_sorted": length_sorted}


def fixed_features(reranker: Reranker, batch_size: int, max_length: int) -> dict[str, Any]:
    """A batch of exactly ``max_length`` tokens per pair (real token ids from a long repeated text)."""
    text = " ".join(["retrieval"] * max_length)
    features = reranker.tokenize([(text, text)] * batch_size, max_length)
    if features["input_ids"].shape[1] != max_length:
        raise ValueError(f"could not build a {max_length}-token pair (got {features['input_ids'].shape[1]})")
    return features


def time_fixed(reranker: Reranker, batch_size: int, max_length: int, warmup_rounds: int, min_seconds: float,
               min_rounds: int, timed: AbstractContextManager | None = None) -> dict[str, Any]:
    """Model only: one round is one forward call on a fixed-shape batch tokenized beforehand."""
    features = fixed_features(reranker, batch_size, max_length)

    def step() -> tuple[int, list[float]]:
        began = time.perf_counter()
        reranker.forward(features)
        return batch_size, [time.perf_counter() - began]

    rounds = run_rounds(step, warmup_rounds, min_seconds, min_rounds, timed)
    return {**summarize_rounds(rounds), "workload": "fixed", "batch_size": batch_size, "max_length": max_length,
            "n_pairs": batch_size, "mean_tokens": float(max_length), "mean_sq_tokens": float(max_length) ** 2,
            "padding_fraction": 0.0, "length_sorted": False}
