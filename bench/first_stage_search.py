"""Exact top-k search: blocked numpy scan vs a flat FAISS inner-product index, side by side.

Sets FAISS_MIN_DOCS in runlocalai_bench.retrieval.search. Random unit vectors stand in for embeddings (search
cost does not depend on their values). Usage:
    python bench/first_stage_search.py --docs 20000 100000 300000 --dim 1024 --queries 300 --k 100
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from runlocalai_bench.retrieval.search import top_k_exact, top_k_faiss


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[20_000, 100_000, 300_000])
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    queries = unit(rng, args.queries, args.dim)
    print(f"{'docs':>9} {'numpy_s':>9} {'faiss_s':>9} {'numpy/faiss':>12} {'same_top_k':>11}")
    for n in args.docs:
        docs = unit(rng, n, args.dim)
        exact = best_of(lambda: top_k_exact(queries, docs, args.k), args.repeats)
        flat = best_of(lambda: top_k_faiss(queries, docs, args.k), args.repeats)
        # Both are exact; they can differ only where float rounding reorders near-equal scores.
        a, b = top_k_exact(queries, docs, args.k)[0], top_k_faiss(queries, docs, args.k)[0]
        same = np.mean([len(set(x) & set(y)) / args.k for x, y in zip(a, b)])
        print(f"{n:>9} {exact:>9.3f} {flat:>9.3f} {exact / flat:>12.2f} {same:>11.4f}")


if __name__ == "__main__":
    main()
