"""What each notebook does, as functions: the notebooks call these and show the results.

Every function takes the bundle folder, reads the resolved parameters from it and writes its outputs back into
it, so a notebook execution is reproducible from the bundle alone. Each execution loops over the run's
datasets: the first stage keeps its encoder loaded for all of them (document embeddings are cached per corpus),
and a rerank execution loads its variant once, scores every dataset, then times it.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.rankings import Ranking, rerank_top
from runlocalai_bench.data.trec import read_trec, write_scores, write_trec
from runlocalai_bench.devices import resolve_device, split_class, with_class
from runlocalai_bench.environment import compute_threads
from runlocalai_bench.models.facts import licence_of, model_facts
from runlocalai_bench.models.refs import ModelRef, model_label
from runlocalai_bench.models.resolve import local_folder, resolve
from runlocalai_bench.models.twins import shape_twin, twin_note
from runlocalai_bench.params import Params
from runlocalai_bench.quality.finite import check_finite
from runlocalai_bench.perf.load import measure_load
from runlocalai_bench.perf.memory import load_measured, peak_rss_mb
from runlocalai_bench.perf.nvml import record_baseline
from runlocalai_bench.perf.throughput import DatasetWork, describe_failures, measure_throughput
from runlocalai_bench.quality.compare import ORACLE
from runlocalai_bench.quality.depth import depth_rows
from runlocalai_bench.quality.metrics import evaluate, measure_names, quality_rows
from runlocalai_bench.rerankers.base import Pair, Reranker, VariantUnavailable
from runlocalai_bench.rerankers.families import code_repositories, family_of, remote_code_needed
from runlocalai_bench.rerankers.registry import check_available, get_variant, load_reranker
from runlocalai_bench.results.bundle import Bundle, rerank_execution, write_json
from runlocalai_bench.results.tables import write_part
from runlocalai_bench.data.protocol import drop_identical_ids, extra_depth
from runlocalai_bench.quality.reachable import missing_judged_record
from runlocalai_bench.retrieval.calibration import (
    NONE, CalibrationSource, choose_sources, describe as describe_calibration, train_source, unevaluated_source,
)
from runlocalai_bench.retrieval.candidates import calibration_sample, candidate_pairs, scores_by_key
from runlocalai_bench.retrieval.first_stage import first_stage as make_first_stage
from runlocalai_bench.retrieval.reduced import reduce_corpus
from runlocalai_bench.rerankers.hosted import is_hosted
from runlocalai_bench.run.hosted import rerank_hosted
from runlocalai_bench.run.jobs import DatasetJob, StageOutcome, budgeted_queries, load_run_collection
from runlocalai_bench.run.progress import ProgressWriter
from runlocalai_bench.run.scratch import has_first_stage, scratch_bundle

CALIBRATION_QUERIES = 16  # queries outside the evaluated set whose candidates static quantization calibrates on
CALIBRATION_PAIRS = 64  # pairs static int8 quantization calibrates on
SCORING_CHUNK = 1024  # pairs scored between checkpoints: an interrupted execution resumes from the last chunk


# ------------------------------------------------------------------------------------------ first stage


def first_stage(bundle_dir: str | Path | None = None) -> StageOutcome:
    """Retrieve every sampled query's candidates in every dataset, by the dataset's protocol
    (data/protocol.py); write run files and quality rows. ``bundle_dir=None`` (a notebook run by hand) works in
    the scratch bundle of the smoke parameters.

    Also retrieves for the calibration queries (``runs/<dataset>/calibration.trec`` and their texts beside it):
    static int8 quantization calibrates on those, never on the evaluated queries (retrieval/calibration.py).
    """
    bundle = Bundle(Path(bundle_dir) if bundle_dir is not None else scratch_bundle())
    params = bundle.params()
    progress = ProgressWriter(bundle.root, "first_stage", stage="first_stage")
    stage = make_first_stage(params.first_stage, params.cache_path)
    loaded: dict[str, tuple[Collection, list[str], float]] = {}
    train, unevaluated = {}, {}
    # Calibration queries only where a variant of the run calibrates (a train split may be a download of its own).
    calibrates = "rerank" in params.stages and any(get_variant(v).calibrated for v in params.reranker.variants)
    budget, budgeted = bundle.budget(), budgeted_queries(bundle, None)
    corpora: dict[str, dict] = {}
    skipped_datasets = []
    for spec in params.datasets:
        choice = (budget or {}).get("corpora", {}).get(spec.label, {"kind": "full"})
        if budgeted is not None and spec.label not in budgeted:
            skipped_datasets.append({"label": spec.label, "reason": f"budget: {choice.get('reason') or 'no share'}"})
            continue
        started = time.perf_counter()
        collection, query_ids = load_run_collection(params, spec, None if budgeted is None else budgeted[spec.label])
        corpora[spec.label] = {"kind": "full", "docs": len(collection.docs)}
        if choice["kind"] == "reduced":
            collection, corpora[spec.label] = reduce_corpus(collection, query_ids, int(choice["docs"]),
                                                            params.first_stage.depth, params.seed)
        loaded[spec.label] = (collection, query_ids, time.perf_counter() - started)
        train[spec.label] = train_source(spec, CALIBRATION_QUERIES, params.seed) if calibrates else None
        unevaluated[spec.label] = (unevaluated_source(spec, collection, query_ids, CALIBRATION_QUERIES, params.seed)
                                   if calibrates else None)
    calibration = (choose_sources(train, unevaluated) if calibrates else
                   {label: CalibrationSource(NONE, "no variant of this run calibrates", {}) for label in train})
    frames, datasets, model = [], [], None
    for spec in params.datasets:
        if spec.label not in loaded:
            continue
        collection, query_ids, load_s = loaded.pop(spec.label)
        label = bundle.quality_label(spec.label)
        protocol, depth = collection.protocol, params.first_stage.depth
        source = calibration[spec.label]
        renamed = calibration_queries(source.queries, {q: collection.queries[q] for q in query_ids},
                                      collection.queries)
        source = replace(source, excluded=len(source.queries) - len(renamed))
        searched = replace(collection, queries={**collection.queries, **renamed})
        progress.update("retrieving", 0, len(query_ids), spec.label, unit="queries", force=True)
        result = stage.retrieve(searched, query_ids + [q for q in renamed if q not in query_ids], spec,
                                progress.callback("encoding documents", spec.label, unit="documents"),
                                depth=depth + extra_depth(protocol))
        # Counted over the evaluated queries only; the calibration queries' candidates follow the same rule.
        ranking, dropped = drop_identical_ids({q: result.ranking.get(q, []) for q in query_ids}, depth, protocol)
        calibrated, _ = drop_identical_ids({q: result.ranking.get(q, []) for q in renamed}, depth, protocol)
        write_trec(bundle.first_stage_run(spec.slug), ranking, tag=result.system)
        write_scores(bundle.dataset_runs(spec.slug) / "first_stage.scores.parquet", ranking)
        write_trec(bundle.calibration_run(spec.slug), calibrated, tag=result.system)
        write_json(bundle.calibration_queries(spec.slug), {**source.record(), "queries": renamed})
        values = evaluate(ranking, collection.qrels, query_ids,
                          measure_names(params.first_stage.depth, params.reranker.depth))
        frames.append(quality_rows(
            values, run_id=params.run_id or "", dataset=label, split=collection.split, system=result.system,
            first_stage=params.first_stage.label, first_stage_depth=params.first_stage.depth,
            language=collection.query_language))
        if "rerank" in params.stages:  # the ceiling of reranking these candidates, for tables/comparisons
            rerank_depth = params.reranker.depth
            ideal = rerank_top(ranking, oracle_scores(ranking, collection.qrels, rerank_depth), rerank_depth, query_ids)
            frames.append(quality_rows(
                evaluate(ideal, collection.qrels, query_ids, measure_names(params.first_stage.depth, rerank_depth)),
                run_id=params.run_id or "", dataset=label, split=collection.split, system=ORACLE,
                first_stage=params.first_stage.label, first_stage_depth=params.first_stage.depth,
                rerank_depth=rerank_depth, reranker=ORACLE, language=collection.query_language))
        model = result.model.as_dict() if result.model else model
        evaluated = set(query_ids)
        datasets.append({
            "spec": str(spec), "label": spec.label, "source": collection.source, "split": collection.split,
            "language": collection.language, "corpus_sha256": collection.content_hash, "n_docs": len(collection.docs),
            "protocol": protocol.as_dict(),
            ("identical_ids_dropped" if protocol.ignore_identical_ids else "identical_ids_retrieved"): dropped,
            "duplicate_doc_ids": {"count": sum(n - 1 for n in collection.duplicate_doc_ids.values()),
                                  "ids": sorted(collection.duplicate_doc_ids)[:20]},
            "missing_judged_documents": missing_judged_record(collection, query_ids),
            "n_judged_queries": len(collection.judged_query_ids),
            "n_zero_positive_queries": len([q for q in collection.zero_positive_query_ids if q in evaluated]),
            "n_queries": len(query_ids), "corpus": corpora[spec.label], "quality_label": label,
            "calibration": source.record(), "search": result.search,
            "embedding_cache_hit": result.cache_hit, "seconds": {"load_collection_s": load_s, **result.seconds}})
        progress.update("retrieving", len(query_ids), len(query_ids), spec.label, unit="queries", force=True)
    quality = pd.concat(frames, ignore_index=True)
    write_part(bundle.root, "quality", "first_stage", quality)
    meta = {
        "stage": "first_stage", "system": params.first_stage.kind, "label": params.first_stage.label,
        "depth": params.first_stage.depth, "model": model,
        "model_label": model_label(params.first_stage.model, model) if model else params.first_stage.label,
        "datasets": datasets, "skipped_datasets": skipped_datasets,
        "calibration_queries": f"up to {CALIBRATION_QUERIES} per dataset, from its train split, else other datasets' "
                               "train splits, else queries the run does not evaluate (retrieval/calibration.py); "
                               "for static int8 calibration only",
    }
    write_json(bundle.stages_dir / "first_stage.json", meta)
    return StageOutcome(quality, meta)


# --------------------------------------------------------------------------------------------- rerank


def calibration_queries(candidates: dict[str, str], evaluated: dict[str, str], known: dict[str, str]) -> dict[str, str]:
    """The calibration queries a dataset may use, under ids that cannot clash: a query that *is* an evaluated
    one (same id and text, or the same text under another id: a split may repeat a query) is left out; one that
    only shares an id with another query of the collection is renamed ``calibration:<id>``."""
    texts = set(evaluated.values())
    kept = {}
    for query_id, text in candidates.items():
        if query_id in evaluated and evaluated[query_id] == text or text in texts:
            continue
        clash = query_id in known and known[query_id] != text
        kept[f"calibration:{query_id}" if clash else query_id] = text
    if set(kept) & set(evaluated):  # never: calibrating on evaluated pairs is a test-data leak
        raise AssertionError(f"calibration queries overlap the evaluated ones: {sorted(set(kept) & set(evaluated))[:5]}")
    return kept


def oracle_scores(ranking: Ranking, qrels: dict[str, dict[str, int]], depth: int) -> dict[tuple[str, str], float]:
    """Scores that order each query's top ``depth`` candidates by their relevance grade (positive judgments;
    unjudged counts as 0), ties in first-stage order: the best any reranker of these candidates can do."""
    scores = {}
    for query_id, docs in ranking.items():
        judged = qrels.get(query_id, {})
        for rank, (doc_id, _) in enumerate(docs[:depth]):
            scores[(query_id, doc_id)] = max(judged.get(doc_id, 0), 0) - rank / (depth + 1)
    return scores


def reranker_checkpoint(params: Params, cache_dir: Path,
                        baseline: str | None = None) -> tuple[Path, ModelRef, str, dict | None]:
    """(folder to load, its ModelRef, tokenizer source, twin note) for the run's reranker, or for the
    comparison reranker ``baseline`` (same weights setting; its hub revision is resolved like the main one's)."""
    random = params.reranker.weights == "random"
    spec, revision = (baseline, None) if baseline else (params.reranker.model, params.reranker.revision)
    pinned = params.reranker.trust_remote_code.get(spec)
    if pinned and revision and revision != pinned:
        raise ValueError(f"reranker.revision {revision!r} differs from reranker.trust_remote_code.{spec} {pinned!r}: "
                         "remote code runs only at the pinned commit; give one revision")
    revision = pinned or revision
    ref = resolve(spec, revision, cache_dir, require=not random)
    if random:
        folder, tokenizer = shape_twin(ref, cache_dir, params.seed)
        return folder, resolve(str(folder), None, cache_dir), tokenizer, twin_note(folder)
    folder = local_folder(ref)
    return folder, ref, str(folder), twin_note(folder)


def remote_code_refusal(params: Params, spec: str, ref: ModelRef, folder: Path) -> str | None:
    """Why the checkpoint ``spec`` (which runs code from its repository) may not load, or None when the
    parameters allow its code at exactly the commit that was resolved. Never allowed by default, never for an
    unpinned revision or a local folder (no commit to pin)."""
    allowed = params.reranker.trust_remote_code.get(spec)
    if allowed is None:
        return (f"{spec} runs code from its repository (trust_remote_code): not allowed by default; to allow it, set "
                f"reranker.trust_remote_code: {{{spec}: <40-hex commit>}} in the parameter file (that commit's code)")
    if ref.revision != allowed:
        return (f"{spec} runs code from its repository: reranker.trust_remote_code pins {allowed}, but the checkpoint "
                f"found is {ref.revision or 'a local folder with no commit'}; remote code runs at the pinned commit only")
    others = code_repositories(folder)
    unpinned = sorted(r for r in others if r not in params.reranker.trust_remote_code)
    if unpinned or len(others) > 1:
        return (f"{spec} runs code from {', '.join(sorted(others))} as well: set reranker.trust_remote_code."
                f"{unpinned[0] if unpinned else sorted(others)[0]} to the commit whose code you allow (one code "
                "repository besides the model's own at most)")
    return None


def code_revision(params: Params, folder: Path) -> str | None:
    """The pinned commit of the one other repository whose code the checkpoint runs (None: its own code only)."""
    others = code_repositories(folder)
    return params.reranker.trust_remote_code[next(iter(others))] if others else None


def calibration_pairs(bundle: Bundle, params: Params, collections: dict[str, Collection]) -> tuple[list[Pair], dict]:
    """Pairs for static quantization from every dataset's calibration queries (never the evaluated queries),
    and each dataset's calibration record (kind, source, queries) as the first stage wrote it."""
    pairs: list[Pair] = []
    records: dict[str, dict] = {}
    for spec in params.datasets:
        path, texts_path = bundle.calibration_run(spec.slug), bundle.calibration_queries(spec.slug)
        if spec.label not in collections or not (path.is_file() and texts_path.is_file()):
            continue
        record = json.loads(texts_path.read_text(encoding="utf-8"))
        texts = record.pop("queries")
        records[spec.label] = record
        candidates = {q: docs[: params.reranker.depth] for q, docs in read_trec(path).items() if q in texts}
        searched = replace(collections[spec.label], queries={**collections[spec.label].queries, **texts})
        pairs += candidate_pairs(searched, candidates, sorted(candidates))[1]
    return calibration_sample(pairs, CALIBRATION_PAIRS, params.seed), records


def score_with_checkpoints(reranker: Reranker, pairs: list[Pair], params: Params, partial: Path,
                           progress: ProgressWriter, dataset: str) -> np.ndarray:
    """Scores of ``pairs``, computed ``SCORING_CHUNK`` pairs at a time; every finished chunk is saved to
    ``partial`` first, so an execution that is interrupted and run again (``--resume``) scores only the rest.
    Chunks are fixed slices of the input, so the batches (and the scores) are the same either way."""
    scores = np.full(len(pairs), np.nan, dtype=np.float32)
    done: set[int] = set()
    if partial.is_file():
        saved = pd.read_parquet(partial)
        if len(saved) and saved["index"].max() < len(pairs):
            scores[saved["index"].to_numpy()] = saved["score"].to_numpy()
            done = set(saved["chunk"].unique().tolist())
    reranker_settings = (params.reranker.batch_size, params.reranker.max_length, params.reranker.length_sorted)
    for chunk, start in enumerate(range(0, len(pairs), SCORING_CHUNK)):
        stop = min(start + SCORING_CHUNK, len(pairs))
        if chunk in done:
            continue
        result = reranker.score(pairs[start:stop], *reranker_settings,
                                progress=progress.callback("scoring", dataset, offset=start, total=len(pairs)))
        scores[start:stop] = result.values
        finished = np.flatnonzero(~np.isnan(scores))
        staging = partial.with_name(partial.name + ".tmp")
        pd.DataFrame({"index": finished, "chunk": finished // SCORING_CHUNK, "score": scores[finished]}).to_parquet(
            staging, index=False)
        staging.replace(partial)
    progress.update("scoring", len(pairs), len(pairs), dataset, force=True)
    return scores


def rerank(bundle_dir: str | Path | None, variant_name: str, requested_device: str,
           baseline: str | None = None) -> StageOutcome:
    """Rerank every dataset's candidates with one (variant, device); evaluate; time; record memory and the
    checkpoint's facts. ``baseline``: a comparison reranker (one of ``reranker.baselines``) instead of the
    reranker under test. ``bundle_dir=None`` (a notebook run by hand) works in the scratch bundle of the smoke
    parameters, running its first stage first if it has none."""
    if bundle_dir is None:
        bundle_dir = scratch_bundle()
        if not has_first_stage(bundle_dir):
            first_stage(bundle_dir)
    bundle = Bundle(Path(bundle_dir))
    params = bundle.params()
    if baseline is not None and baseline not in params.reranker.baselines:
        raise ValueError(f"{baseline!r} is not one of reranker.baselines ({', '.join(params.reranker.baselines) or 'none'})")
    if is_hosted(baseline):  # scored by a provider's API: no variant or device of this machine (run/hosted.py)
        return rerank_hosted(bundle, params, baseline)
    variant = get_variant(variant_name)
    # `cpu@epyc` (the Ray engine's node class): the hardware calls get `cpu`, every row says `cpu@epyc`, so the
    # rows of one variant on two classes of machine stay apart in every table.
    physical, cls = split_class(requested_device)
    device = resolve_device(physical)
    row_device = with_class(device, cls)
    record_baseline(device)  # GPU memory before this process's CUDA context: first, before any CUDA call
    model_spec = baseline or params.reranker.model
    label = rerank_execution(variant_name, requested_device, baseline)
    progress = ProgressWriter(bundle.root, label, stage="rerank", variant=variant_name, device=requested_device)
    cache_dir = params.cache_path
    meta: dict = {"stage": "rerank", "variant": variant_name, "requested_device": requested_device, "device": device,
                  "node_class": cls,
                  "weights": params.reranker.weights, "baseline": baseline, "reranker": model_spec, "datasets": {}}
    empty = pd.DataFrame()

    def skipped(exc: VariantUnavailable) -> StageOutcome:
        meta.update(status="skipped", reason=str(exc))
        write_json(bundle.stages_dir / f"{label}.json", meta)
        return StageOutcome(empty, meta, "skipped", str(exc))

    try:
        check_available(variant, device)
    except VariantUnavailable as exc:
        return skipped(exc)
    budget = bundle.budget()
    if budget is not None and label in budget["skipped"]:
        return skipped(VariantUnavailable(f"budget {params.budget}: {budget['skipped'][label]}"))
    if budget is not None and label not in budget["queries"]:
        return skipped(VariantUnavailable("not in the run's budget allocation (budget.json; a variant added on a "
                                          "forced resume): run it anew to have it planned"))
    budgeted = budgeted_queries(bundle, label)
    datasets = [spec for spec in params.datasets if budgeted is None or spec.label in budgeted]

    collections: dict[str, Collection] = {}
    evaluated: dict[str, list[str]] = {}
    for spec in datasets:
        collections[spec.label], evaluated[spec.label] = load_run_collection(
            params, spec, None if budgeted is None else budgeted[spec.label])
    folder, ref, tokenizer_source, note = reranker_checkpoint(params, cache_dir, baseline)
    remote_code = remote_code_needed(folder)
    if remote_code:
        meta["remote_code"] = {"needed": True, "allowed_revision": params.reranker.trust_remote_code.get(model_spec),
                               "revision": ref.revision,
                               "code_repositories": {r: params.reranker.trust_remote_code.get(r)
                                                     for r in sorted(code_repositories(folder))}}
        refusal = remote_code_refusal(params, model_spec, ref, folder)
        if refusal:
            return skipped(VariantUnavailable(refusal))
    user_file = None if baseline else params.reranker.gguf_files.get(variant_name)
    progress.update("loading", 0, 1, unit="models", force=True)
    calibration, calibration_records = calibration_pairs(bundle, params, collections) if variant.calibrated else ([], {})
    if variant.calibrated:
        meta["calibration"] = {"pairs": len(calibration), "datasets": calibration_records,
                               "summary": describe_calibration(calibration_records)}
    depth, jobs = params.reranker.depth, []
    for spec in datasets:
        jobs.append(DatasetJob.build(spec, collections[spec.label], evaluated[spec.label],
                                     read_trec(bundle.first_stage_run(spec.slug)), depth))
        meta["datasets"][spec.label] = {"n_queries": len(evaluated[spec.label]), "n_pairs": len(jobs[-1].pairs),
                                        "sampled_by_budget": budgeted is not None}
    # The corpora are dropped before the model is loaded: the pairs hold the only texts scoring needs, and the
    # memory read before loading (subtracted from every peak as the model's share) should not carry them.
    del collections
    try:
        reranker = load_measured(variant, device, lambda: load_reranker(
            variant, device, folder, ref, cache_dir, params.reranker.max_length, calibration,
            Path(user_file) if user_file else None, compute_threads(params.reranker.threads),
            params.reranker.gguf_tokens_per_call, params.serve.slots, params.serve.request_timeout_s,
            params.reranker.instruction, remote_code, code_revision(params, folder) if remote_code else None))
    except VariantUnavailable as exc:  # known at load time only (e.g. a model GGUF cannot represent)
        return skipped(exc)
    # From here the reranker holds native memory, and a served one a server process: closed whatever happens.
    try:
        write_part(bundle.root, "model", label, pd.DataFrame([{
            "run_id": params.run_id or "", "reranker": model_spec, "variant": variant_name, "device": row_device,
            "weights": params.reranker.weights, **model_facts(folder), "file_bytes": reranker.file_bytes,
            "source": (f"shape twin of {model_spec}: its config.json, random weights" if params.reranker.weights == "random"
                       else model_label(model_spec, ref.as_dict(), note)),
            "family": family_of(model_spec, folder).name, "licence": licence_of(folder, model_spec)}]))
        meta.update(model=ref.as_dict(), model_label=model_label(model_spec, ref.as_dict(), note), checkpoint=note,
                    tokenizer=tokenizer_source, weight_files=[p.name for p in reranker.weight_files],
                    executed_precision=reranker.executed_precision, backend_details=reranker.details,
                    load_s=reranker.load_s, file_bytes=reranker.file_bytes, weight_bytes=reranker.weight_bytes,
                    rerank_depth=params.reranker.depth, memory=reranker.memory.as_dict() if reranker.memory else None,
                    export=reranker.details.get("export"), runtime_memory_after_load=reranker.runtime_memory())

        quality_frames, depth_frames, work = [], [], []
        for job in jobs:
            spec, query_ids, first, keys, pairs = job.spec, job.query_ids, job.first, job.keys, job.pairs
            dataset_label = bundle.quality_label(spec.label)
            work.append(DatasetWork(dataset_label, pairs, job.grouped()))
            if params.reranker.weights != "trained":
                continue
            scores_path = bundle.rerank_scores(spec.slug, label)
            values = score_with_checkpoints(reranker, pairs, params, scores_path.with_suffix(".partial.parquet"),
                                            progress, spec.label)
            check_finite(values, f"{model_spec} {variant_name} on {device}", spec.label)
            by_key = scores_by_key(keys, values)
            ranking = rerank_top(first, by_key, depth, query_ids)
            write_trec(bundle.rerank_run(spec.slug, label), ranking, tag=f"{variant_name}@{row_device}")
            pd.DataFrame({"query_id": [k[0] for k in keys], "doc_id": [k[1] for k in keys], "score": values}).to_parquet(
                scores_path, index=False)
            scores_path.with_suffix(".partial.parquet").unlink(missing_ok=True)
            measured = evaluate(ranking, job.qrels, query_ids, measure_names(params.first_stage.depth, depth))
            quality_frames.append(quality_rows(
                measured, run_id=params.run_id or "", dataset=dataset_label, split=job.split, system="rerank",
                first_stage=params.first_stage.label, first_stage_depth=params.first_stage.depth, rerank_depth=depth,
                reranker=model_spec, variant=variant_name, device=row_device, language=job.language))
            depth_frames.append(depth_rows(first, by_key, params.depth_curve, job.qrels, query_ids).assign(
                run_id=params.run_id or "", dataset=dataset_label, reranker=model_spec, variant=variant_name,
                device=row_device))
        meta["scoring_peak_rss_mb"] = peak_rss_mb()  # since the window opened before loading: the load's peak included
        if reranker.memory_pid() is not None:  # a served variant: its server's peak, loading included (never reset yet)
            meta["server_scoring_peak_rss_mb"] = peak_rss_mb(reranker.memory_pid())
        quality = pd.concat(quality_frames, ignore_index=True) if quality_frames else empty
        depth_table = pd.concat(depth_frames, ignore_index=True) if depth_frames else empty
        if quality_frames:
            write_part(bundle.root, "quality", label, quality)
            write_part(bundle.root, "depth_quality", label, depth_table)
            meta["quality"] = "measured"
        else:
            meta["quality"] = "not measured: random weights (shape twin); its scores carry no relevance"

        throughput, failures, note = empty, [], None
        if params.throughput.enabled:
            throughput = measure_throughput(reranker, work, params, variant_name, device, cache_dir,
                                            progress.callback("timing", unit="jobs"), baseline, failures)
            if not throughput.empty:
                throughput["device"] = row_device
            write_part(bundle.root, "throughput", label, throughput)
            note = describe_failures(failures, len(throughput) + len(failures))
            if reranker.load_target() is not None:  # a served variant: the sweep under concurrent load (tables/load)
                progress.update("load sweep", 0, 1, unit="sweeps", force=True)
                load = measure_load(reranker, work, params, variant_name, device)
                if not load.empty:
                    load["device"] = row_device
                write_part(bundle.root, "load", label, load)
    finally:
        reranker.close()
    meta.update(status="ok", reason=note, throughput_failures=failures, backend_details=reranker.details)
    write_json(bundle.stages_dir / f"{label}.json", meta)
    return StageOutcome(quality, meta, reason=note, throughput=throughput, depth=depth_table)
