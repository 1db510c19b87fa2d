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


# --------------------------------------------------------------------------------------------- rerank

CALIBRATION_PAIRS = 64


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


def rerank_label(variant: str, device: str) -> str:
    return f"rerank--{variant}--{device.replace(':', '')}"


def reranker_checkpoint(params: Params, cache_dir: Path):
    """(folder to load, its ModelRef, tokenizer source, weights note) for the run's reranker."""
    from runlocalai_bench.models import local_folder, resolve
    from runlocalai_bench.twin import shape_twin, twin_note

    ref = resolve(params.reranker.model, params.reranker.revision, cache_dir)
    if params.reranker.weights == "random":
        folder, tokenizer = shape_twin(ref, cache_dir, params.seed)
        return folder, resolve(str(folder), None, cache_dir), tokenizer, twin_note(folder)
    folder = local_folder(ref)
    return folder, ref, str(folder), twin_note(folder)


def run_rerank(bundle_dir: str | Path, variant_name: str, requested_device: str) -> RerankOutcome:
    """Rerank the first stage's candidates with one (variant, device); evaluate; time; record memory."""
    from runlocalai_bench.backends import VariantUnavailable, check_device, load_reranker
    from runlocalai_bench.models import resolve_device
    from runlocalai_bench.rerank import calibration_sample, candidate_pairs, rerank
    from runlocalai_bench.variants import get_variant

    bundle = Bundle(Path(bundle_dir))
    params = bundle.params()
    variant = get_variant(variant_name)
    device = resolve_device(requested_device)
    label = rerank_label(variant_name, requested_device)
    cache_dir = cache_dir_of(params)
    meta: dict = {"stage": "rerank", "variant": variant_name, "requested_device": requested_device, "device": device,
                  "weights": params.reranker.weights}
    empty = pd.DataFrame()

    def skipped(exc: VariantUnavailable) -> RerankOutcome:
        meta.update(status="skipped", reason=str(exc))
        write_json(bundle.stages_dir / f"{label}.json", meta)
        return RerankOutcome("skipped", str(exc), meta, empty, empty)

    try:
        check_device(variant, device)
    except VariantUnavailable as exc:
        return skipped(exc)

    collection, query_ids = load_run_collection(params)
    candidates = first_stage_candidates(bundle, params.reranker.depth)
    keys, pairs = candidate_pairs(collection, candidates, query_ids)
    folder, ref, tokenizer_source, note = reranker_checkpoint(params, cache_dir)
    gguf_file = params.reranker.gguf_files.get(variant_name)
    try:
        reranker = load_reranker(variant, device, folder, ref, cache_dir, params.reranker.max_length,
                                 calibration_sample(pairs, CALIBRATION_PAIRS, params.seed),
                                 Path(gguf_file) if gguf_file else None)
    except VariantUnavailable as exc:  # known at load time only (e.g. a model GGUF cannot represent)
        return skipped(exc)
    from runlocalai_bench.throughput import peak_rss_mb, reset_peak_rss

    meta.update(model=ref.as_dict(), checkpoint=note, tokenizer=tokenizer_source, loaded_from=str(reranker.folder),
                executed_precision=reranker.executed_precision, backend_details=reranker.details,
                load_s=reranker.load_s, file_bytes=reranker.file_bytes, param_bytes=reranker.param_bytes,
                n_pairs=len(pairs), load_peak_rss_mb=peak_rss_mb(),
                # From here on the peak covers the loaded model at work, not a one-time export in this kernel.
                peak_rss_window_reset=reset_peak_rss())

    quality = empty
    if params.reranker.weights == "trained":
        run = reranker.score(pairs, params.reranker.batch_size, params.reranker.max_length, params.reranker.length_sorted)
        ranking = rerank(keys, run.scores, query_ids)
        write_trec(bundle.runs_dir / f"{label}.trec", ranking, tag=f"{variant_name}@{device}")
        pd.DataFrame({"query_id": [k[0] for k in keys], "doc_id": [k[1] for k in keys], "score": run.scores}).to_parquet(
            bundle.runs_dir / f"{label}.scores.parquet", index=False)
        values = evaluate(ranking, collection.qrels, query_ids, measure_names(params.reranker.depth))
        quality = quality_rows(values, run_id=params.run_id or "", dataset=dataset_label(params.dataset),
                               split=params.split, system="rerank", first_stage=first_stage_label(params),
                               reranker=params.reranker.model, variant=variant_name, device=device)
        write_part(bundle.root, "quality", label, quality)
        meta["quality"] = "measured"
    else:
        meta["quality"] = "not measured: random weights (shape twin); its scores carry no relevance"

    throughput = empty
    if params.throughput.enabled:
        from runlocalai_bench.measure import measure_throughput

        throughput = measure_throughput(reranker, pairs, params, variant_name, device, cache_dir)
        write_part(bundle.root, "throughput", label, throughput)
    meta.update(status="ok", reason=None)
    write_json(bundle.stages_dir / f"{label}.json", meta)
    return RerankOutcome("ok", None, meta, quality, throughput)
