"""Exact top-k search: the blocked numpy scan and FAISS agree with brute force, ties included."""

import numpy as np
import pytest

from runlocalai_bench.retrieval.search import top_k_exact, top_k_faiss


def brute_force(queries, docs, k):
    scores = queries @ docs.T
    idx = np.array([sorted(range(docs.shape[0]), key=lambda j: (-scores[i, j], j))[:k] for i in range(len(queries))])
    return idx, np.take_along_axis(scores, idx, axis=1)


@pytest.mark.parametrize("block", [1, 3, 7, 1000])
def test_blocked_exact_search_matches_brute_force_including_ties(block):
    rng = np.random.default_rng(0)
    docs = rng.integers(-2, 3, size=(50, 4)).astype(np.float32)  # small integers: many exact ties
    queries = rng.integers(-2, 3, size=(6, 4)).astype(np.float32)
    idx, scores = top_k_exact(queries, docs, k=10, block=block)
    expected_idx, expected_scores = brute_force(queries, docs, 10)
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(scores, expected_scores)


def test_faiss_search_agrees_with_exact():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(300, 16)).astype(np.float32)
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    np.testing.assert_array_equal(top_k_faiss(queries, docs, 20)[0], top_k_exact(queries, docs, 20)[0])
