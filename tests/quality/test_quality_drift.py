"""Drift of a variant's scores against the reference on the same pairs."""

import numpy as np
import pandas as pd
import pytest

from runlocalai_bench.quality.drift import compare


def test_drift_comparison():
    ref = pd.DataFrame({"query_id": ["q"] * 12, "doc_id": [f"d{i:02d}" for i in range(12)], "score": np.arange(12.0)})
    same = compare(ref, ref.copy())
    assert same["max_abs_diff"] == 0 and same["top10_overlap"] == 1 and same["kendall_tau"] == pytest.approx(1)
    flipped = compare(ref, ref.assign(score=-ref["score"]))
    assert flipped["kendall_tau"] == pytest.approx(-1) and flipped["top10_overlap"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="same pairs"):
        compare(ref, ref.iloc[:5])
