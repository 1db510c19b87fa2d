"""The first stage a run's parameters ask for, for each of its datasets.

- ``dense``: a sentence-transformers bi-encoder, loaded once for every dataset (:mod:`.dense`);
- ``bm25``: bm25s over each corpus (:mod:`.bm25`);
- ``run``: a TREC run file made elsewhere (say, bge-m3 on a GPU, reranked here on a CPU), checked against the
  dataset: an unknown query or document fails with file and line;
- ``scoreddocs``: the candidates ir_datasets ships with a dataset (e.g. BM25's top 1,000 for TREC DL 2019).

Every kind keeps each query's top ``depth`` candidates in score order, ties by doc id.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Protocol

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.specs import DatasetSpec
from runlocalai_bench.data.rankings import order
from runlocalai_bench.data.trec import read_trec
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.retrieval.dense import DenseFirstStage
from runlocalai_bench.retrieval.result import FirstStageResult

Progress = Callable[[int, int], None]


class FirstStage(Protocol):
    def retrieve(self, collection: Collection, query_ids: list[str], spec: DatasetSpec,
                 on_progress: Progress | None = None, depth: int | None = None) -> FirstStageResult:
        """Each query's top ``depth`` candidates (default ``first_stage.depth``; the identical-id rule asks one
        more, data/protocol.py)."""


class Bm25FirstStage:
    def __init__(self, params: FirstStageParams):
        self.params = params

    def retrieve(self, collection: Collection, query_ids: list[str], spec: DatasetSpec,
                 on_progress: Progress | None = None, depth: int | None = None) -> FirstStageResult:
        return bm25_retrieve(collection, query_ids, self.params, depth)


class DenseStage:
    def __init__(self, params: FirstStageParams, cache_dir: Path):
        self.encoder = DenseFirstStage(params, cache_dir)

    def retrieve(self, collection: Collection, query_ids: list[str], spec: DatasetSpec,
                 on_progress: Progress | None = None, depth: int | None = None) -> FirstStageResult:
        return self.encoder.retrieve(collection, query_ids, on_progress, depth)


class RunFileFirstStage:
    """Candidates from a TREC run file, validated against the dataset."""

    def __init__(self, params: FirstStageParams):
        self.params = params

    def retrieve(self, collection: Collection, query_ids: list[str], spec: DatasetSpec,
                 on_progress: Progress | None = None, depth: int | None = None) -> FirstStageResult:
        started = time.perf_counter()
        path = self.params.run_file(spec.label)
        ranking = read_trec(path, queries=collection.queries, docs=collection.docs, by="score")
        kept = {q: ranking.get(q, [])[: depth or self.params.depth] for q in query_ids}
        return FirstStageResult(kept, None, "run", False, {"read_run_s": time.perf_counter() - started}, path.name)


class ScoredDocsFirstStage:
    """ir_datasets' own candidate lists for a dataset (``scoreddocs``)."""

    def __init__(self, params: FirstStageParams):
        self.params = params

    def retrieve(self, collection: Collection, query_ids: list[str], spec: DatasetSpec,
                 on_progress: Progress | None = None, depth: int | None = None) -> FirstStageResult:
        import ir_datasets  # only this kind needs it here

        started = time.perf_counter()
        wanted = set(query_ids)
        scored: dict[str, list[tuple[str, float]]] = {q: [] for q in query_ids}
        for record in ir_datasets.load(spec.text).scoreddocs_iter():
            if record.query_id in wanted and record.doc_id in collection.docs:
                scored[record.query_id].append((record.doc_id, float(record.score)))
        ranking = {q: order(docs)[: depth or self.params.depth] for q, docs in scored.items()}
        return FirstStageResult(ranking, None, "scoreddocs", False, {"read_scoreddocs_s": time.perf_counter() - started},
                                f"ir_datasets scoreddocs of {spec.text}")


def first_stage(params: FirstStageParams, cache_dir: Path) -> FirstStage:
    """The first stage ``params`` describe, ready to retrieve for any number of datasets."""
    if params.kind == "dense":
        return DenseStage(params, cache_dir)
    if params.kind == "bm25":
        return Bm25FirstStage(params)
    if params.kind == "run":
        return RunFileFirstStage(params)
    return ScoredDocsFirstStage(params)
