"""What each notebook does, as functions: the notebooks call these and show the results.

Every function takes the bundle folder, reads the resolved parameters from it and writes its outputs
back into it, so a notebook execution is reproducible from the bundle alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from runlocalai_bench.bundle import Bundle
from runlocalai_bench.data import Collection, dataset_kind, load_collection
from runlocalai_bench.first_stage import retrieve
from runlocalai_bench.metrics import evaluate, measure_names
from runlocalai_bench.models import default_cache_dir
from runlocalai_bench.params import Params
from runlocalai_bench.results import quality_rows, write_json, write_part
from runlocalai_bench.runs import read_trec, write_trec


def dataset_label(spec: str) -> str:
    """Short dataset name for tables: folder name for BEIR folders, the id otherwise."""
    return Path(spec).name if dataset_kind(spec) == "folder" else spec


def first_stage_label(params: Params) -> str:
    return "bm25" if params.first_stage.kind == "bm25" else params.first_stage.model


def cache_dir_of(params: Params) -> Path:
    return Path(params.cache_dir) if params.cache_dir else default_cache_dir()


def load_run_collection(params: Params) -> tuple[Collection, list[str]]:
    collection = load_collection(params.dataset, params.split)
    return collection, collection.sample_queries(params.queries.n, params.queries.seed)


@dataclass
class FirstStageOutcome:
    quality: pd.DataFrame
    meta: dict

    def means(self) -> pd.DataFrame:
        return self.quality.groupby("measure", sort=False)["value"].agg(["mean", "count"]).reset_index()


def run_first_stage(bundle_dir: str | Path) -> FirstStageOutcome:
    bundle = Bundle(Path(bundle_dir))
    params = bundle.params()
    started = time.perf_counter()
    collection, query_ids = load_run_collection(params)
    load_s = time.perf_counter() - started
    result = retrieve(collection, query_ids, params.first_stage, cache_dir_of(params))
    write_trec(bundle.first_stage_run(), result.ranking, tag=result.system)

    values = evaluate(result.ranking, collection.qrels, query_ids, measure_names(params.reranker.depth))
    quality = quality_rows(
        values, run_id=params.run_id or "", dataset=dataset_label(params.dataset), split=params.split,
        system=result.system, first_stage=first_stage_label(params),
    )
    write_part(bundle.root, "quality", "first_stage", quality)
    meta = {
        "stage": "first_stage", "system": result.system, "dataset": {
            "spec": params.dataset, "source": collection.source, "split": params.split,
            "corpus_sha256": collection.content_hash, "n_docs": len(collection.docs),
            "n_judged_queries": len(collection.judged_query_ids), "n_queries": len(query_ids),
        },
        "model": result.model.as_dict() if result.model else None, "search": result.search,
        "embedding_cache_hit": result.cache_hit, "seconds": {"load_collection_s": load_s, **result.seconds},
    }
    write_json(bundle.stages_dir / "first_stage.json", meta)
    return FirstStageOutcome(quality, meta)


def first_stage_candidates(bundle: Bundle, depth: int) -> dict[str, list[tuple[str, float]]]:
    """The first stage's top ``depth`` per query, exactly as written to the bundle's run file."""
    return {q: docs[:depth] for q, docs in read_trec(bundle.first_stage_run()).items()}
