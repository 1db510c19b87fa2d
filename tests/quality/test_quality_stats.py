"""Bootstrap CIs and the paired comparison: seeded, detecting a real lift, neutral on identical systems."""

import numpy as np
import pytest

from runlocalai_bench.quality.stats import bootstrap_mean, paired_comparison


def test_bootstrap_is_reproducible_for_a_seed():
    values = np.random.default_rng(0).random(200)
    assert bootstrap_mean(values, 2000, seed=7) == bootstrap_mean(values, 2000, seed=7)
    assert bootstrap_mean(values, 2000, seed=7) != bootstrap_mean(values, 2000, seed=8)
    interval = bootstrap_mean(values, 2000, seed=7)
    assert interval.low < interval.estimate < interval.high


def test_paired_comparison_detects_a_consistent_lift():
    rng = np.random.default_rng(1)
    base = rng.random(100) * 0.5
    treated = base + 0.1 + rng.normal(0, 0.02, 100)
    result = paired_comparison(treated, base, samples=2000, seed=0)
    assert result.lift_abs.low > 0.05 and result.p_value < 0.01 and result.wins > 90
    assert result.lift_rel.estimate == pytest.approx((treated - base).mean() / base.mean())
    assert result.lift_rel.low < result.lift_rel.estimate < result.lift_rel.high
    assert paired_comparison(treated, base, 2000, 0) == result


def test_paired_comparison_of_identical_systems():
    values = np.linspace(0, 1, 20)
    result = paired_comparison(values, values, samples=500, seed=0)
    assert result.ties == 20 and result.p_value == 1.0 and result.lift_abs.estimate == 0.0
    with pytest.raises(ValueError, match="same length"):
        paired_comparison(values, values[:5], 10, 0)


def test_absolute_and_relative_lift_come_from_the_same_resamples():
    """With a constant baseline c, relative lift = absolute lift / c in every resample, so the CIs must be
    exactly proportional; CIs from separately drawn resamples would not be."""
    rng = np.random.default_rng(3)
    base = np.full(60, 0.5)
    treated = base + rng.normal(0.05, 0.1, 60)
    result = paired_comparison(treated, base, samples=2000, seed=0)
    assert result.lift_rel.low == pytest.approx(result.lift_abs.low / 0.5, rel=1e-12)
    assert result.lift_rel.high == pytest.approx(result.lift_abs.high / 0.5, rel=1e-12)


def test_macro_average_weighs_datasets_equally_and_resamples_within_them():
    big = np.zeros(1000)  # a large dataset where nothing changes
    small = np.ones(10)  # a small one where every query gains 1
    values = np.concatenate([big, small])
    strata = ["big"] * 1000 + ["small"] * 10
    interval = bootstrap_mean(values, 500, 0, strata=strata)
    assert interval.estimate == pytest.approx(0.5)  # mean of means, not the pooled mean (~0.0099)
    assert interval.low == interval.high == pytest.approx(0.5)  # each dataset is constant within itself
    lift = paired_comparison(values, np.zeros_like(values), 500, 0, strata=strata)
    assert lift.lift_abs.estimate == pytest.approx(0.5) and lift.wins == 10 and lift.ties == 1000


def test_sign_flip_test_is_exact_for_few_queries():
    result = paired_comparison([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], samples=1000, seed=0)
    assert result.p_value == pytest.approx(2 / 16)  # only all-plus and all-minus are as extreme
