"""What every rerank execution works from, whatever reranks: the queries a run (and its budget) evaluates per
dataset, each dataset's candidates as (query, document) pairs, and what a stage shows when it ends. Shared by the
local rerank stage (``stages.py``) and the hosted one (``hosted.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.rankings import Ranking
from runlocalai_bench.data.specs import DatasetSpec
from runlocalai_bench.params import Params
from runlocalai_bench.rerankers.base import Pair
from runlocalai_bench.results.bundle import Bundle
from runlocalai_bench.retrieval.candidates import candidate_pairs


def load_run_collection(params: Params, spec: DatasetSpec, budgeted: int | None = None) -> tuple[Collection, list[str]]:
    """The collection and the queries to evaluate: ``queries.n``'s sample, cut to ``budgeted`` under a budget
    (both prefixes of one seeded order, so the smaller is a subset of the larger)."""
    collection = spec.load(params.split)
    n = params.queries.n if budgeted is None else min(budgeted, params.queries.n or budgeted)
    return collection, collection.sample_queries(n, params.queries.seed)


def budgeted_queries(bundle: Bundle, execution: str | None) -> dict[str, int] | None:
    """Under a budget, the queries per dataset that ``execution`` evaluates (None: the first stage); a dataset
    absent from the answer is not evaluated. None without a budget."""
    budget = bundle.budget()
    if budget is None:
        return None
    if execution is None:
        return dict(budget["first_stage_queries"])
    return dict(budget["queries"].get(execution, {}))


@dataclass
class StageOutcome:
    """What a notebook shows: the quality rows it wrote and its record."""

    quality: pd.DataFrame
    meta: dict
    status: str = "ok"  # "ok" | "skipped"
    reason: str | None = None
    throughput: pd.DataFrame = field(default_factory=pd.DataFrame)
    depth: pd.DataFrame = field(default_factory=pd.DataFrame)

    def means(self) -> pd.DataFrame:
        """Mean of each measure per dataset (a query with nothing relevant retrieved counts as 0)."""
        if self.quality.empty:
            return pd.DataFrame(columns=["dataset", "measure", "mean", "count"])
        return (self.quality.groupby(["dataset", "measure"], sort=False)["value"].agg(["mean", "count"])
                .reset_index())


@dataclass
class DatasetJob:
    """What reranking one dataset needs once its corpus is gone: the evaluated queries, the first stage's
    ranking, the (query, candidate) pairs with their keys, the judgments, the split and the query language."""

    spec: DatasetSpec
    query_ids: list[str]
    first: Ranking
    keys: list[tuple[str, str]]
    pairs: list[Pair]
    qrels: dict[str, dict[str, int]]
    split: str
    languages: dict[str, str]  # per evaluated query (a dict, not the collection's method: that would keep the corpus)

    def language(self, query_id: str) -> str:
        return self.languages[query_id]

    @classmethod
    def build(cls, spec: DatasetSpec, collection: Collection, query_ids: list[str], first: Ranking,
              depth: int) -> "DatasetJob":
        keys, pairs = candidate_pairs(collection, {q: docs[:depth] for q, docs in first.items()}, query_ids)
        return cls(spec, query_ids, first, keys, pairs, collection.qrels, collection.split,
                   {q: collection.query_language(q) for q in query_ids})

    def grouped(self) -> list[list[Pair]]:
        """The pairs grouped by query, in order (the per-query throughput workload)."""
        by_query: dict[str, list[Pair]] = {}
        for (query_id, _), pair in zip(self.keys, self.pairs):
            by_query.setdefault(query_id, []).append(pair)
        return list(by_query.values())
