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


def test_drift_under_a_budget_compares_the_queries_both_scored():
    """Nested samples (run/budget.py): the variant scored a prefix of the reference's queries."""
    ref = pd.DataFrame({"query_id": ["q1"] * 4 + ["q2"] * 4, "doc_id": [f"d{i}" for i in range(8)],
                        "score": np.arange(8.0)})
    fewer = ref[ref["query_id"] == "q1"]
    result = compare(ref, fewer.copy())
    assert result["n_queries"] == 1 and result["n_pairs"] == 4 and result["max_abs_diff"] == 0
