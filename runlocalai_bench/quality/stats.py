"""The statistics behind every mean and lift reported: percentile bootstrap CIs over queries and a paired
sign-flip randomization test, optionally stratified by dataset (a macro-average over datasets resamples
queries within each dataset, so every resample keeps each dataset's weight).

Hand-written on numpy rather than ``scipy.stats.bootstrap``: the absolute and the relative lift must come from
the *same* resamples (scipy draws new ones per call, so their CIs could disagree), and the macro-average needs
resampling within strata, which scipy does not offer. All resampling is seeded: the same inputs give the same
intervals on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Sequence

import numpy as np

LEVEL = 0.95
CHUNK = 256  # resamples drawn at once: bounds memory at CHUNK x queries per stratum


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def _strata(n: int, strata: Sequence | None) -> list[np.ndarray]:
    if strata is None:
        return [np.arange(n)]
    labels = np.asarray(strata)
    if labels.shape != (n,):
        raise ValueError(f"strata must label every value: {labels.shape} labels for {n} values")
    return [np.flatnonzero(labels == label) for label in dict.fromkeys(labels.tolist())]


def resampled_means(columns: np.ndarray, samples: int, seed: int, strata: Sequence | None = None) -> np.ndarray:
    """Means of each column over bootstrap resamples of the rows, macro-averaged over strata.

    ``columns`` is (n, k); the result is (samples, k). Every column of one resample uses the same rows (paired),
    and rows are drawn within their stratum.
    """
    columns = np.asarray(columns, dtype=np.float64)
    rng = np.random.default_rng(seed)
    groups = _strata(len(columns), strata)
    out = np.zeros((samples, columns.shape[1]))
    for rows in groups:
        values = columns[rows]
        for start in range(0, samples, CHUNK):
            size = min(CHUNK, samples - start)
            draws = rng.integers(0, len(rows), size=(size, len(rows)))
            out[start:start + size] += values[draws].mean(axis=1)
    return out / len(groups)


def macro_mean(values: np.ndarray, strata: Sequence | None = None) -> float:
    """Mean of the per-stratum means (the plain mean without strata)."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.mean([values[rows].mean() for rows in _strata(len(values), strata)]))


def _percentiles(draws: np.ndarray) -> tuple[float, float]:
    low, high = np.nanpercentile(draws, [50 * (1 - LEVEL), 100 - 50 * (1 - LEVEL)])
    return float(low), float(high)


def bootstrap_mean(values: Sequence[float], samples: int, seed: int, strata: Sequence | None = None) -> Interval:
    """Mean (macro over strata) with a 95% percentile bootstrap CI over queries."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    estimate = macro_mean(x, strata)
    if x.size < 2 or np.all(x == x[0]):
        return Interval(estimate, estimate, estimate)
    return Interval(estimate, *_percentiles(resampled_means(x[:, None], samples, seed, strata)[:, 0]))


@dataclass(frozen=True)
class PairedComparison:
    n: int
    lift_abs: Interval
    lift_rel: Interval
    p_value: float
    wins: int
    ties: int
    losses: int


def sign_flip_p_value(diff: np.ndarray, samples: int, seed: int, strata: Sequence | None = None) -> float:
    """Two-sided paired randomization test of the (macro) mean difference: under the null each query's
    difference is as likely negated. Exact (every sign pattern) when 2^n <= samples, else ``samples`` seeded
    flips with the observed pattern counted once."""
    diff = np.asarray(diff, dtype=np.float64)
    groups = _strata(len(diff), strata)
    weights = np.zeros(len(diff))
    for rows in groups:
        weights[rows] = 1.0 / (len(rows) * len(groups))
    observed = abs(float(np.dot(weights, diff)))
    tolerance = 1e-12 * max(1.0, observed)
    if 2 ** len(diff) <= samples:
        signs = np.array(list(product((1.0, -1.0), repeat=len(diff))))
        stats = np.abs(signs @ (weights * diff))
        return float(np.mean(stats >= observed - tolerance))
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, samples, CHUNK):
        size = min(CHUNK, samples - start)
        signs = rng.choice((1.0, -1.0), size=(size, len(diff)))
        extreme += int(np.sum(np.abs(signs @ (weights * diff)) >= observed - tolerance))
    return (extreme + 1) / (samples + 1)


def paired_comparison(
    treated: Sequence[float], baseline: Sequence[float], samples: int, seed: int, tie_tol: float = 1e-9,
    strata: Sequence | None = None,
) -> PairedComparison:
    """Lift of ``treated`` over ``baseline`` on the same queries (macro-averaged over ``strata`` if given).

    Absolute lift: (macro) mean per-query difference. Relative lift: that difference over the baseline's
    (macro) mean. Both CIs come from one set of paired bootstrap resamples. p-value: two-sided sign-flip
    randomization test, seeded.
    """
    t = np.asarray(treated, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if t.shape != b.shape or t.ndim != 1:
        raise ValueError(f"paired samples must be 1-d and the same length, got {t.shape} and {b.shape}")
    diff = t - b
    wins, losses = int((diff > tie_tol).sum()), int((diff < -tie_tol).sum())
    ties = int(diff.size - wins - losses)
    lift = macro_mean(diff, strata) if diff.size else float("nan")
    base_mean = macro_mean(b, strata) if b.size else float("nan")
    rel_point = lift / base_mean if base_mean else float("nan")
    if diff.size < 2 or np.all(diff == diff[0]):
        abs_ci, rel_ci = Interval(lift, lift, lift), Interval(rel_point, rel_point, rel_point)
    else:
        means = resampled_means(np.column_stack([diff, b]), samples, seed, strata)
        abs_ci = Interval(lift, *_percentiles(means[:, 0]))
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = means[:, 0] / means[:, 1]
        rel_ci = Interval(rel_point, *_percentiles(relative)) if base_mean else Interval(rel_point, rel_point, rel_point)
    if not np.any(diff):
        p_value = 1.0
    elif diff.size < 2:
        p_value = float("nan")
    else:
        p_value = sign_flip_p_value(diff, samples, seed + 1, strata)
    return PairedComparison(int(diff.size), abs_ci, rel_ci, p_value, wins, ties, losses)
