"""The first stage a run's parameters ask for: dense or BM25 retrieval of each query's candidates."""

from __future__ import annotations

from pathlib import Path

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.retrieval.dense import dense_retrieve
from runlocalai_bench.retrieval.result import FirstStageResult


def retrieve(collection: Collection, query_ids: list[str], params: FirstStageParams, cache_dir: Path) -> FirstStageResult:
    if params.kind == "bm25":
        return bm25_retrieve(collection, query_ids, params)
    return dense_retrieve(collection, query_ids, params, cache_dir)
