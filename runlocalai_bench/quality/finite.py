"""Scores that are not numbers end an execution: a NaN or an infinity has no rank.

Sorting a list with NaN keys does not fail, it scrambles: Python's comparisons with NaN are all false, so the
order of every other document depends on where the NaN sits. A ranking built on such scores would be evaluated
as if it were real. fp16 overflow (a logit beyond 65,504, or an attention sum that overflows) is the usual
cause on real models; a broken export another.
"""

from __future__ import annotations

import numpy as np


class NonFiniteScores(ValueError):
    """A reranker returned NaN or infinite scores; the message is one line naming who and how many."""


def check_finite(values: np.ndarray, who: str, dataset: str) -> None:
    """Raise :class:`NonFiniteScores` unless every score is finite."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        kinds = ", ".join(f"{n} {label}" for n, label in ((int(np.isnan(values).sum()), "NaN"),
                                                          (int(np.isinf(values).sum()), "infinite")) if n)
        raise NonFiniteScores(f"{who}: {int(bad.sum())} of {values.size} pairs of {dataset} scored non-finite "
                              f"({kinds}); no ranking is built on them (fp16 overflow? try fp32 or bf16)")
