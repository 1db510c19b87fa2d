"""End-to-end reranking rate against a plain CrossEncoder.predict and against the model alone.

On the same query-candidate pairs and batch size, measures in one process:
  suite       Reranker.score: tokenization + length-sorted batching + model, text in, scores out
  predict     sentence-transformers CrossEncoder.predict (no length sorting), logits out
  model-only  the forward passes alone, on the very batches the suite built (same total tokens)
and prints pairs/s (median of rounds) and the ratios suite/predict and suite/model-only.

    python bench/rerank_overhead.py --model twin:tiny-bert --dataset fixture:tiny
    python bench/rerank_overhead.py --model BAAI/bge-reranker-v2-m3 --weights random \
        --dataset path/to/scifact --pairs 48 --batch-size 16
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from runlocalai_bench.params import validate_params
from runlocalai_bench.rerankers.registry import get_variant, load_reranker
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.retrieval.candidates import candidate_pairs
from runlocalai_bench.run.stages import reranker_checkpoint


def median_rate(fn, n_pairs: int, rounds: int) -> float:
    fn()  # warm-up, untimed
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        rates.append(n_pairs / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="twin:tiny-bert")
    parser.add_argument("--weights", choices=["trained", "random"], default="trained")
    parser.add_argument("--dataset", default="fixture:tiny")
    parser.add_argument("--variant", default="torch-fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    params = validate_params({"dataset": args.dataset, "reranker": {"model": args.model, "weights": args.weights}})
    collection = params.datasets[0].load(params.split)
    query_ids = collection.judged_query_ids
    candidates = bm25_retrieve(collection, query_ids, params.first_stage.model_copy(update={"kind": "bm25", "depth": 16})).ranking
    _, pairs = candidate_pairs(collection, candidates, query_ids)
    pairs = pairs[: args.pairs]
    cache_dir = params.cache_path
    folder, ref, _, _ = reranker_checkpoint(params, cache_dir)
    reranker = load_reranker(get_variant(args.variant), args.device, folder, ref, cache_dir, args.max_length, pairs[:64])

    suite = median_rate(lambda: reranker.score(pairs, args.batch_size, args.max_length, True), len(pairs), args.rounds)
    predict = median_rate(lambda: reranker.cross_encoder.predict(
        pairs, batch_size=args.batch_size, activation_fn=torch.nn.Identity(), show_progress_bar=False),
        len(pairs), args.rounds)
    lengths = reranker.token_lengths(pairs, args.max_length)
    order = sorted(range(len(pairs)), key=lambda i: -lengths[i])
    batches = [reranker.tokenize([pairs[i] for i in order[s:s + args.batch_size]], args.max_length)
               for s in range(0, len(pairs), args.batch_size)]
    model_only = median_rate(lambda: [reranker.forward(b) for b in batches], len(pairs), args.rounds)
    run = reranker.score(pairs, args.batch_size, args.max_length, True)

    print(f"model {args.model} ({args.weights}), {args.variant} on {args.device}, {len(pairs)} pairs from {args.dataset}, "
          f"batch {args.batch_size}, mean {run.tokens / len(pairs):.0f} tokens, padding {run.padding_fraction:.1%}")
    print(f"suite       {suite:10.2f} pairs/s")
    print(f"predict     {predict:10.2f} pairs/s")
    print(f"model-only  {model_only:10.2f} pairs/s")
    print(f"suite / predict    = {suite / predict:.3f}  (must be >= 1)")
    print(f"suite / model-only = {suite / model_only:.3f}  (must be >= 0.9)")


if __name__ == "__main__":
    main()
