"""The paired statistics behind every lift reported: bootstrap CIs over queries and a randomization test.

All resampling is seeded, so the same inputs give the same intervals on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.stats import bootstrap, permutation_test


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def bootstrap_mean(values: Sequence[float], samples: int, seed: int, level: float = 0.95) -> Interval:
    """Mean with a percentile bootstrap CI over queries (seeded: same inputs, same interval)."""
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

