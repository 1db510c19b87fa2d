"""What each notebook does, as functions: the notebooks call these and show the results.

Every function takes the bundle folder, reads the resolved parameters from it and writes its outputs
back into it, so a notebook execution is reproducible from the bundle alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.trec import read_trec, write_scores, write_trec
from runlocalai_bench.devices import resolve_device
from runlocalai_bench.models.refs import ModelRef, model_label
from runlocalai_bench.models.resolve import local_folder, resolve
from runlocalai_bench.models.twins import shape_twin, twin_note
from runlocalai_bench.params import Params
from runlocalai_bench.perf.memory import peak_rss_mb, reset_peak_rss
from runlocalai_bench.perf.throughput import measure_throughput
from runlocalai_bench.quality.metrics import evaluate, measure_names, quality_rows
from runlocalai_bench.rerankers.base import Pair, VariantUnavailable
from runlocalai_bench.rerankers.registry import check_available, get_variant, load_reranker
from runlocalai_bench.results.bundle import Bundle, rerank_execution, write_json
from runlocalai_bench.results.tables import write_part
from runlocalai_bench.retrieval.candidates import (
    calibration_query_ids, calibration_sample, candidate_pairs, rerank_top, scores_by_key,
)
from runlocalai_bench.retrieval.first_stage import retrieve


CALIBRATION_QUERIES = 16  # queries outside the evaluated set whose candidates static quantization calibrates on


def load_run_collection(params: Params) -> tuple[Collection, list[str]]:
    collection = params.dataset.load(params.split)
    return collection, collection.sample_queries(params.queries.n, params.queries.seed)


@dataclass
class FirstStageOutcome:
    quality: pd.DataFrame
    meta: dict

    def means(self) -> pd.DataFrame:
        return self.quality.groupby("measure", sort=False)["value"].agg(["mean", "count"]).reset_index()


def first_stage(bundle_dir: str | Path) -> FirstStageOutcome:
    """Retrieve every sampled query's candidates, write the run file and the first stage's quality rows.

    Also retrieves for a few queries the run does not evaluate (``runs/calibration.trec``): static int8
    quantization calibrates on those, never on the evaluated queries.
    """
    bundle = Bundle(Path(bundle_dir))
    params = bundle.params()
    started = time.perf_counter()
    collection, query_ids = load_run_collection(params)
    calibration_ids = calibration_query_ids(collection, query_ids, CALIBRATION_QUERIES, params.seed)
    load_s = time.perf_counter() - started
    result = retrieve(collection, query_ids + calibration_ids, params.first_stage, params.cache_path)
    ranking = {q: result.ranking[q] for q in query_ids}
    write_trec(bundle.first_stage_run(), ranking, tag=result.system)
    write_scores(bundle.runs_dir / "first_stage.scores.parquet", ranking)
    write_trec(bundle.calibration_run(), {q: result.ranking[q] for q in calibration_ids}, tag=result.system)

    values = evaluate(ranking, collection.qrels, query_ids,
                      measure_names(params.first_stage.depth, params.reranker.depth))
    quality = quality_rows(
        values, run_id=params.run_id or "", dataset=params.dataset.label, split=params.split,
        system=result.system, first_stage=params.first_stage.label, first_stage_depth=params.first_stage.depth,
    )
    write_part(bundle.root, "quality", "first_stage", quality)
    model = result.model.as_dict() if result.model else None
    meta = {
        "stage": "first_stage", "system": result.system, "label": params.first_stage.label, "dataset": {
            "spec": str(params.dataset), "label": params.dataset.label, "source": collection.source,
            "split": params.split, "corpus_sha256": collection.content_hash, "n_docs": len(collection.docs),
            "n_judged_queries": len(collection.judged_query_ids), "n_queries": len(query_ids),
        },
        "model": model, "model_label": model_label(params.first_stage.model, model) if model else "bm25s (Lucene BM25)",
        "depth": params.first_stage.depth, "search": result.search, "embedding_cache_hit": result.cache_hit,
        "calibration_queries": {"n": len(calibration_ids), "source": "queries outside the evaluated sample "
                                "(unjudged, other splits or not sampled), for static int8 calibration only"},
        "seconds": {"load_collection_s": load_s, **result.seconds},
    }
    write_json(bundle.stages_dir / "first_stage.json", meta)
    return FirstStageOutcome(quality, meta)


def first_stage_ranking(bundle: Bundle, run_file: Path | None = None) -> dict[str, list[tuple[str, float]]]:
    """The first stage's candidates per query, exactly as written to the bundle's run file."""
    return read_trec(run_file or bundle.first_stage_run())


# --------------------------------------------------------------------------------------------- rerank

CALIBRATION_PAIRS = 64  # pairs static int8 quantization calibrates on


@dataclass
class RerankOutcome:
    status: str  # "ok" | "skipped"
    reason: str | None
    meta: dict
    quality: pd.DataFrame
    throughput: pd.DataFrame

    def means(self) -> pd.DataFrame:
        if self.quality.empty:
            return pd.DataFrame(columns=["measure", "mean", "count"])
        return self.quality.groupby("measure", sort=False)["value"].agg(["mean", "count"]).reset_index()


def reranker_checkpoint(params: Params, cache_dir: Path) -> tuple[Path, ModelRef, str, dict | None]:
    """(folder to load, its ModelRef, tokenizer source, twin note) for the run's reranker."""
    random = params.reranker.weights == "random"
    ref = resolve(params.reranker.model, params.reranker.revision, cache_dir, require=not random)
    if random:
        folder, tokenizer = shape_twin(ref, cache_dir, params.seed)
        return folder, resolve(str(folder), None, cache_dir), tokenizer, twin_note(folder)
    folder = local_folder(ref)
    return folder, ref, str(folder), twin_note(folder)


def calibration_pairs(bundle: Bundle, collection: Collection, depth: int, seed: int) -> list[Pair]:
    """Pairs for static quantization from the calibration queries' candidates (never the evaluated queries)."""
    path = bundle.calibration_run()
    if not path.is_file():
        return []
    candidates = {q: docs[:depth] for q, docs in read_trec(path).items()}
    _, pairs = candidate_pairs(collection, candidates, sorted(candidates))
    return calibration_sample(pairs, CALIBRATION_PAIRS, seed)


def rerank(bundle_dir: str | Path, variant_name: str, requested_device: str) -> RerankOutcome:
    """Rerank the first stage's candidates with one (variant, device); evaluate; time; record memory."""
    bundle = Bundle(Path(bundle_dir))
    params = bundle.params()
    variant = get_variant(variant_name)
    device = resolve_device(requested_device)
    label = rerank_execution(variant_name, requested_device)
    cache_dir = params.cache_path
    meta: dict = {"stage": "rerank", "variant": variant_name, "requested_device": requested_device, "device": device,
                  "weights": params.reranker.weights}
    empty = pd.DataFrame()

    def skipped(exc: VariantUnavailable) -> RerankOutcome:
        meta.update(status="skipped", reason=str(exc))
        write_json(bundle.stages_dir / f"{label}.json", meta)
        return RerankOutcome("skipped", str(exc), meta, empty, empty)

    try:
        check_available(variant, device)
    except VariantUnavailable as exc:
        return skipped(exc)

    collection, query_ids = load_run_collection(params)
    first = first_stage_ranking(bundle)
    depth = params.reranker.depth
    keys, pairs = candidate_pairs(collection, {q: docs[:depth] for q, docs in first.items()}, query_ids)
    folder, ref, tokenizer_source, note = reranker_checkpoint(params, cache_dir)
    user_file = params.reranker.gguf_files.get(variant_name)
    try:
        reranker = load_reranker(variant, device, folder, ref, cache_dir, params.reranker.max_length,
                                 calibration_pairs(bundle, collection, depth, params.seed),
                                 Path(user_file) if user_file else None)
    except VariantUnavailable as exc:  # known at load time only (e.g. a model GGUF cannot represent)
        return skipped(exc)

    reranker_label = model_label(params.reranker.model, ref.as_dict(), note)
    meta.update(model=ref.as_dict(), model_label=reranker_label, checkpoint=note, tokenizer=tokenizer_source,
                weight_files=[p.name for p in reranker.weight_files], executed_precision=reranker.executed_precision,
                backend_details=reranker.details, load_s=reranker.load_s, file_bytes=reranker.file_bytes,
                weight_bytes=reranker.weight_bytes, n_pairs=len(pairs), rerank_depth=depth,
                load_peak_rss_mb=peak_rss_mb(),
                # From here on the peak covers the loaded model at work, not a one-time export in this kernel.
                peak_rss_window_reset=reset_peak_rss())

    quality = empty
    if params.reranker.weights == "trained":
        scores = reranker.score(pairs, params.reranker.batch_size, params.reranker.max_length,
                                params.reranker.length_sorted)
        meta["scoring_peak_rss_mb"] = peak_rss_mb()
        ranking = rerank_top(first, scores_by_key(keys, scores.values), depth, query_ids)
        write_trec(bundle.runs_dir / f"{label}.trec", ranking, tag=f"{variant_name}@{device}")
        pd.DataFrame({"query_id": [k[0] for k in keys], "doc_id": [k[1] for k in keys], "score": scores.values}).to_parquet(
            bundle.runs_dir / f"{label}.scores.parquet", index=False)
        values = evaluate(ranking, collection.qrels, query_ids, measure_names(params.first_stage.depth, depth))
        quality = quality_rows(values, run_id=params.run_id or "", dataset=params.dataset.label,
                               split=params.split, system="rerank", first_stage=params.first_stage.label,
                               first_stage_depth=params.first_stage.depth, rerank_depth=depth,
                               reranker=params.reranker.model, variant=variant_name, device=device)
        write_part(bundle.root, "quality", label, quality)
        meta["quality"] = "measured"
    else:
        meta["quality"] = "not measured: random weights (shape twin); its scores carry no relevance"

    throughput = empty
    if params.throughput.enabled:
        throughput = measure_throughput(reranker, pairs, params, variant_name, device, cache_dir)
        write_part(bundle.root, "throughput", label, throughput)
    meta.update(status="ok", reason=None)
    write_json(bundle.stages_dir / f"{label}.json", meta)
    return RerankOutcome("ok", None, meta, quality, throughput)
