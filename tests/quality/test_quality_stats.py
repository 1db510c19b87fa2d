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
