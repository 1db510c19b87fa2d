"""Per-query effectiveness (ir-measures) and the paired statistics behind every lift we report.

Two rules from the methodology: a query that retrieved nothing relevant scores 0 and is never dropped
(trec_eval omits queries absent from the run; we put them back), and the evaluated order is exactly our
deterministic rank order (scores handed to the evaluator are derived from ranks, so trec_eval's own tie
rule, doc id descending, can never reorder equal scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

DEFAULT_MEASURES = ("nDCG@10", "RR@10", "R@100")


def measure_names(candidate_depth: int) -> list[str]:
    """nDCG@10 and RR@10, plus recall at the reranked depth: the candidate ceiling of reranking."""
    names = ["nDCG@10", "RR@10", f"R@{candidate_depth}"]
    if "R@100" not in names:
        names.append("R@100")
    return names


def evaluate(
    ranking: Mapping[str, Sequence[tuple[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    query_ids: Sequence[str],
    measures: Sequence[str] = DEFAULT_MEASURES,
) -> dict[str, dict[str, float]]:
    """``{measure: {query_id: value}}`` for every query in ``query_ids`` (0 where nothing was retrieved)."""
    import ir_measures

    parsed = [ir_measures.parse_measure(m) for m in measures]
    wanted = set(query_ids)
    missing = [q for q in query_ids if q not in qrels]
    if missing:
        raise ValueError(f"queries without judgments cannot be evaluated: {missing[:5]}")
    qrel_records = [
        ir_measures.Qrel(q, d, int(rel)) for q in query_ids for d, rel in sorted(qrels[q].items())
    ]
    run_records = [
        ir_measures.ScoredDoc(q, d, float(len(docs) - rank))
        for q, docs in ranking.items() if q in wanted
        for rank, (d, _) in enumerate(docs)
    ]
    values: dict[str, dict[str, float]] = {str(m): {q: 0.0 for q in query_ids} for m in parsed}
    for metric in ir_measures.iter_calc(parsed, qrel_records, run_records):
        values[str(metric.measure)][metric.query_id] = float(metric.value)
    return values


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def bootstrap_mean(values: Sequence[float], samples: int, seed: int, level: float = 0.95) -> Interval:
    """Mean with a percentile bootstrap CI over queries (seeded: same inputs, same interval)."""
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    if x.size < 2 or np.all(x == x[0]):
        return Interval(float(x.mean()), float(x[0]), float(x[0]))
    res = bootstrap((x,), np.mean, n_resamples=samples, confidence_level=level, method="percentile",
                    rng=np.random.default_rng(seed), vectorized=True)
    return Interval(float(x.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high))


def _relative_lift(treated: np.ndarray, base: np.ndarray, axis: int = -1) -> np.ndarray:
    base_mean = np.mean(base, axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(treated - base, axis=axis) / base_mean


@dataclass(frozen=True)
class PairedComparison:
    n: int
    lift_abs: Interval
    lift_rel: Interval
    p_value: float
    wins: int
    ties: int
    losses: int


def paired_comparison(
    treated: Sequence[float], baseline: Sequence[float], samples: int, seed: int, tie_tol: float = 1e-9
) -> PairedComparison:
    """Lift of ``treated`` over ``baseline`` on the same queries.

    Absolute lift: mean per-query difference with a paired bootstrap CI. Relative lift: the same
    difference over the baseline mean, its CI from the same paired resampling. p-value: two-sided paired
    randomization test (sign flips of the per-query differences), seeded.
    """
    from scipy.stats import bootstrap, permutation_test

    t = np.asarray(treated, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if t.shape != b.shape or t.ndim != 1:
        raise ValueError(f"paired samples must be 1-d and the same length, got {t.shape} and {b.shape}")
    diff = t - b
    wins, losses = int((diff > tie_tol).sum()), int((diff < -tie_tol).sum())
    ties = int(diff.size - wins - losses)
    abs_ci = bootstrap_mean(diff, samples, seed)
    rel_point = float(_relative_lift(t, b)) if b.mean() != 0 else float("nan")
    if diff.size < 2 or b.mean() == 0 or np.all(diff == diff[0]):
        rel_ci = Interval(rel_point, rel_point, rel_point)
    else:
        rel = bootstrap((t, b), _relative_lift, paired=True, n_resamples=samples, method="percentile",
                        rng=np.random.default_rng(seed + 1), vectorized=True)
        rel_ci = Interval(rel_point, float(rel.confidence_interval.low), float(rel.confidence_interval.high))
    if not np.any(diff):
        p_value = 1.0
    elif diff.size < 2:
        p_value = float("nan")
    else:
        test = permutation_test((t, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), permutation_type="samples",
                                n_resamples=samples, alternative="two-sided", rng=np.random.default_rng(seed + 2),
                                vectorized=True)
        p_value = float(test.pvalue)
    return PairedComparison(int(diff.size), abs_ci, rel_ci, p_value, wins, ties, losses)

