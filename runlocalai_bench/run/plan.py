"""What a run will cost before anything heavy runs: per (dataset, variant, device) the queries, pairs and
tokens, the exports to build, the predicted time of each stage, the disk for caches and exports, the peak
memory, and the total.

Rates come from one of two places, and every row says which:

- a short **probe** on this machine: a few batches of the reranker (the real model when it is local, else its
  shape twin: the same architecture runs at the same speed) in each torch variant and in each variant whose
  export is already cached; variants whose export would be built by the run are predicted at the torch-fp32
  rate of the same device and marked so;
- the measured rates of an **earlier bundle** (``--from BUNDLE``): its end-to-end pairs/s per variant and
  device, and its load times (which include building exports).

A rate measured at one pair length is carried to another by the FLOP model (FLOPs per pair grow with T and
T^2), and the first stage's encoding rate follows from the reranker's achieved FLOP rate when the encoder shares
its architecture (bge-m3 and bge-reranker-v2-m3 are both XLM-R large). Nothing is downloaded: collections
that are not local are sized from ir_datasets' metadata and assumed to average ``ASSUMED_TOKENS`` tokens a pair.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from types import SimpleNamespace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runlocalai_bench.data.downloads import download_bytes
from runlocalai_bench.data.specs import DatasetKind, DatasetSpec, full_label
from runlocalai_bench.devices import device_kind, node_class, resolve_device, split_class
from runlocalai_bench.environment import compute_threads, cpu_info
from runlocalai_bench.errors import error_line
from runlocalai_bench.models.hub import cached_commit
from runlocalai_bench.models.refs import ModelNotFoundError, is_hub_id
from runlocalai_bench.models.resolve import local_folder, resolve
from runlocalai_bench.models.twins import KNOWN_CONFIGS, shape_twin
from runlocalai_bench.params import Params, ParamsError
from runlocalai_bench.perf.flops import flops_per_pair, memory_estimate_mb, model_shape, weight_bytes
from runlocalai_bench.perf.peaks import cpu_path
from runlocalai_bench.perf.throughput import DatasetWork, throughput_jobs
from runlocalai_bench.retrieval.dense import EMBEDDING_DTYPE, load_encoder
from runlocalai_bench.retrieval.embedding_cache import EmbeddingCache, cache_key
from runlocalai_bench.units import sig
from runlocalai_bench.rerankers.base import VariantUnavailable
from runlocalai_bench.rerankers.exports import export_root
from runlocalai_bench.rerankers.registry import (
    REFERENCE_VARIANT, backend_of, check_available, check_family, get_variant, load_reranker, reference_variant,
)
from runlocalai_bench.rerankers.hosted import HOSTED_DEVICE, HOSTED_VARIANT
from runlocalai_bench.results.bundle import Bundle, meta_device, rerank_execution
from runlocalai_bench.results.tables import read_table
from runlocalai_bench.run.budget import Allocation, DatasetCost, ExecutionCost, allocate, hours
from runlocalai_bench.rerankers.families import REMOTE_CODE_MODELS, Family, family_from, family_of
from runlocalai_bench.run.finalize import baseline_variants
from runlocalai_bench.run.hosted import cost_refusal, hosted_plan_rows, planned_cost
from runlocalai_bench.run.kernel import output_to

ASSUMED_TOKENS = 256  # tokens per pair when no local text can be sampled
SAMPLE_QUERIES = 32
PROBE_PAIRS = 16
LONG_RUN_S = 3 * 3600


@dataclass
class DatasetSize:
    label: str
    n_queries: int
    n_docs: int
    pairs: int
    mean_tokens: float
    mean_sq_tokens: float
    doc_tokens: float
    source: str  # where the sizes and token counts come from
    content_hash: str = ""  # of a local corpus (keys its cached embeddings)
    judged_per_query: float = 1.0  # judged documents per judged query (what a reduced corpus keeps per query)
    sample: list[tuple[str, str]] = field(default_factory=list, repr=False)


@dataclass
class Rate:
    pairs_per_s: float
    mean_tokens: float
    mean_sq_tokens: float
    source: str
    load_s: float | None = None

    def at(self, shape: dict[str, int], mean_tokens: float, mean_sq_tokens: float) -> float:
        """This rate carried to pairs of another length by the FLOP model."""
        return self.pairs_per_s * flops_per_pair(shape, self.mean_tokens, self.mean_sq_tokens) / flops_per_pair(
            shape, mean_tokens, mean_sq_tokens)


@dataclass
class Plan:
    rows: pd.DataFrame  # one per (dataset, variant, device), plus the first stage's per dataset
    executions: dict[str, float]  # execution name -> predicted seconds
    disk_bytes: float
    notes: list[str]
    probe_pid: int | None = None  # the process that probed speed: a spawned child whenever a GPU is involved
    unpredicted: list[str] = field(default_factory=list)  # executions without a rate: their time is not in the total
    allocation: Allocation | None = None  # under a budget: the queries each execution evaluates, reduced corpora
    downloads: list[tuple[str, float | None, str]] = field(default_factory=list)  # (what, bytes, how it was sized)
    lanes: dict[str, str] = field(default_factory=dict)  # priced rerank execution -> its lane ("" this machine)

    @property
    def total_s(self) -> float:
        """Wall time: what runs on this machine one after another, and each node's executions beside it
        (``--engine ray``); the slowest lane decides. Without node classes, the sum of every execution. The first
        stage, the report and executions that only record why they cannot run are counted outside the lanes, as
        the budget's allocation counts them (so the two totals agree)."""
        lanes: dict[str, float] = {}
        outside = 0.0
        for name, seconds in self.executions.items():
            if name in self.lanes:
                lanes[self.lanes[name]] = lanes.get(self.lanes[name], 0.0) + seconds
            else:
                outside += seconds
        return float(outside + max(lanes.values(), default=0.0))


# ------------------------------------------------------------------------------------------------ sizes


def _sample_pairs(spec: DatasetSpec, params: Params) -> tuple[Any, list[tuple[str, str]]]:
    """A local collection and a seeded sample of (query, document) pairs from it (documents drawn at random:
    the first stage has not run, and candidate lengths follow the corpus's)."""
    collection = spec.load(params.split)
    query_ids = collection.sample_queries(params.queries.n, params.queries.seed)
    rng = np.random.default_rng(params.seed)
    docs = sorted(collection.docs)
    picked = rng.choice(len(query_ids), size=min(SAMPLE_QUERIES, len(query_ids)), replace=False)
    pairs = [(collection.queries[query_ids[i]], collection.docs[docs[rng.integers(len(docs))]].contents) for i in picked]
    return collection, pairs


def dataset_size(spec: DatasetSpec, params: Params, tokenizer: Any) -> DatasetSize:
    depth = params.reranker.depth
    local = spec.kind is not DatasetKind.IR_DATASETS
    if not local:
        import ir_datasets  # metadata only: nothing is downloaded

        dataset = ir_datasets.load(spec.text)
        n_queries, n_docs = dataset.queries_count() or 0, dataset.docs_count() or 0
        judged = (dataset.qrels_count() or 0) / n_queries if n_queries else 1.0
        if params.queries.n:
            n_queries = min(n_queries, params.queries.n)
        return DatasetSize(spec.label, n_queries, n_docs, n_queries * depth, ASSUMED_TOKENS, ASSUMED_TOKENS ** 2,
                           ASSUMED_TOKENS, f"ir_datasets metadata; {ASSUMED_TOKENS} tokens a pair assumed (no local text)",
                           _cached_corpus_hash(params, spec.text), judged_per_query=max(judged, 1.0))
    collection, sample = _sample_pairs(spec, params)
    n_queries = len(collection.sample_queries(params.queries.n, params.queries.seed))
    encoded = tokenizer([q for q, _ in sample], [d for _, d in sample], truncation="longest_first",
                        max_length=params.reranker.max_length)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.float64)
    docs = tokenizer([d for _, d in sample], truncation=True, max_length=params.first_stage.max_length)
    doc_tokens = float(np.mean([len(ids) for ids in docs["input_ids"]]))
    judged = [len(collection.qrels[q]) for q in collection.judged_query_ids]
    return DatasetSize(spec.label, n_queries, len(collection.docs), n_queries * min(depth, len(collection.docs)),
                       float(lengths.mean()), float((lengths ** 2).mean()), doc_tokens,
                       f"{len(sample)} sampled pairs tokenized", collection.content_hash,
                       judged_per_query=float(np.mean(judged)) if judged else 1.0, sample=sample)


# ------------------------------------------------------------------------------------------------ rates


def _reranker_folder(params: Params) -> tuple[Path, Any, str]:
    """A local checkpoint with the reranker's architecture: the model itself when local, else its shape twin."""
    cache = params.cache_path
    try:
        ref = resolve(params.reranker.model, params.reranker.revision, cache, require=params.reranker.weights == "trained")
        if params.reranker.weights == "trained" and (not is_hub_id(params.reranker.model) or _cached(ref)):
            return local_folder(ref), ref, "the model"
    except ModelNotFoundError:
        ref = resolve(params.reranker.model, None, cache, require=False)
    folder, _ = shape_twin(ref, cache, params.seed)
    return folder, resolve(str(folder), None, cache), "its shape twin"


def _cached(ref) -> bool:
    return ref.revision is not None and cached_commit(ref.location, ref.requested_revision) == ref.revision


def _export_built(variant: str, ref, params: Params) -> bool | None:
    """Whether ``variant``'s converted files already exist (None: it needs none)."""
    spec = get_variant(variant)
    return backend_of(spec).exports_built(spec, export_root(ref, params.cache_path))


def probe_rates(params: Params, sizes: list[DatasetSize], skip: set[tuple[str, str]] = frozenset(),
                reference_only: bool = False) -> tuple[dict[tuple[str, str], Rate], dict[str, int], str, dict]:
    """Pairs/s per (variant, device) measured on a few batches here (all but ``skip``; with ``reference_only``
    just torch-fp32 per device), the model's shape, what was probed, and why a variant could not be probed."""
    folder, ref, what = _reranker_folder(params)
    sample = [p for size in sizes for p in size.sample][:PROBE_PAIRS] or [("what is a reranker", "a model " * 120)] * 8
    rates: dict[tuple[str, str], Rate] = {}
    problems: dict[tuple[str, str], str] = {}
    shape: dict[str, int] = {}
    for device in params.reranker.devices:
        resolved = resolve_device(device)
        variants = params.reranker.variants if not reference_only else [REFERENCE_VARIANT]
        if node_class(device):  # another node's speed: an earlier bundle from there knows it (--from), never a probe here
            problems.update({(v, device): f"runs on a node of class {node_class(device)!r}: a probe here says nothing "
                             "of it; give --from a bundle that ran there" for v in variants if (v, device) not in skip})
            continue
        for variant in variants:
            spec = get_variant(variant)
            if (variant, device) in skip:
                continue
            try:
                check_available(spec, resolved)
            except VariantUnavailable:
                continue
            if spec.calibrated or _export_built(variant, ref, params) is False:
                continue  # its export would be built by the run (calibrated ones always are): not worth minutes
            reranker = None
            try:
                reranker = load_reranker(spec, resolved, folder, ref, params.cache_path, params.reranker.max_length,
                                         threads=compute_threads(params.reranker.threads),
                                         tokens_per_call=params.reranker.gguf_tokens_per_call,
                                         server_slots=params.serve.slots, server_timeout_s=params.serve.request_timeout_s)
                shape = shape or model_shape(reranker.config)
                batch = params.reranker.batch_size
                reranker.score(sample[:batch], batch, params.reranker.max_length)  # warm-up
                # Before the clock: a served variant cuts its pairs here once (client-side work, cached), as a
                # timed round after the warm-up does not repeat it either.
                lengths = reranker.token_lengths(sample, params.reranker.max_length).astype(np.float64)
                started = time.perf_counter()
                reranker.score(sample, batch, params.reranker.max_length)
                seconds = time.perf_counter() - started
                rates[(variant, device)] = Rate(len(sample) / seconds, float(lengths.mean()), float((lengths ** 2).mean()),
                                                f"probe here ({what}, {len(sample)} pairs)", reranker.load_s)
                reranker.close()
            except Exception as exc:  # noqa: BLE001 - a variant that cannot be probed is predicted otherwise
                problems[(variant, device)] = error_line(exc)
                if reranker is not None:
                    reranker.close()  # a served variant's server stops now, not at exit
    return rates, shape or _folder_shape(folder), what, problems


def _folder_shape(folder: Path) -> dict[str, int]:
    """The model's shape read from its config alone (when nothing could be probed)."""
    from transformers import AutoConfig

    return model_shape(AutoConfig.from_pretrained(folder, local_files_only=True))


def probe_encoder(params: Params, sizes: list[DatasetSize]) -> Rate | None:
    """Documents/s of the dense first stage's encoder when it is local (a folder, a package, or cached)."""
    if params.first_stage.kind != "dense":
        return None
    try:
        ref = resolve(params.first_stage.model, params.first_stage.revision, params.cache_path)
        if is_hub_id(params.first_stage.model) and not _cached(ref):
            return None
        model = load_encoder(ref, params.first_stage, resolve_device(params.first_stage.device))
    except (ModelNotFoundError, OSError, ValueError):
        return None
    docs = [d for size in sizes for _, d in size.sample][:PROBE_PAIRS] or ["a document " * 100]
    model.encode_document(docs[:4], batch_size=params.first_stage.batch_size)  # warm-up
    started = time.perf_counter()
    model.encode_document(docs, batch_size=params.first_stage.batch_size)
    seconds = time.perf_counter() - started
    lengths = np.array([len(ids) for ids in model.tokenizer(docs, truncation=True,
                                                             max_length=params.first_stage.max_length)["input_ids"]],
                       dtype=np.float64)
    return Rate(len(docs) / seconds, float(lengths.mean()), float((lengths ** 2).mean()),
                f"encoder probe here ({len(docs)} documents)")


@dataclass(frozen=True)
class Probes:
    """What the probing process measured (:func:`probe_in_child`)."""

    rates: dict[tuple[str, str], Rate]
    shape: dict[str, int]
    what: str
    problems: dict[tuple[str, str], str]
    encoder: Rate | None
    pid: int | None  # None when the probing process died


def _probe_here(params: Params, sizes: list[DatasetSize], skip: set[tuple[str, str]], reference_only: bool,
                log_file: Path | None) -> Probes:
    """The probing itself, in this process or a spawned child (module level: a child imports it by name)."""
    with output_to(log_file):
        rates, shape, what, problems = probe_rates(params, sizes, skip, reference_only)
        encoder = probe_encoder(params, sizes)
    return Probes(rates, shape, what, problems, encoder, os.getpid())


def probes_a_device(params: Params) -> bool:
    """Whether probing would load a model on a GPU (cuda, mps; ``auto`` as it resolves here)."""
    devices = [*params.reranker.devices, params.first_stage.device]
    return any(resolve_device(device) != "cpu" for device in devices)


def probe_in_child(params: Params, sizes: list[DatasetSize], skip: set[tuple[str, str]] = frozenset(),
                   reference_only: bool = False, log_file: Path | None = None, isolate: bool | None = None) -> Probes:
    """Probe the reranker's and the encoder's speed, in a spawned process when a GPU is involved (``isolate``:
    None decides by :func:`probes_a_device`), and wait for it.

    Why a process: loading a model on a GPU creates a CUDA context that lives as long as the process. In the
    runner it would outlive the plan: on a GPU in exclusive-process mode every execution would then fail to get the
    device, and elsewhere each execution would find ~0.5 GB (the context) plus the probe's cached blocks already
    gone. A spawned child shares no CUDA, allocator or thread-pool state with the caller, and takes all of it along
    when it exits. A CPU-only probe leaves nothing the executions (processes of their own) could meet, and is
    spared the child's start."""
    if not (probes_a_device(params) if isolate is None else isolate):
        return _probe_here(params, sizes, set(skip), reference_only, log_file)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(_probe_here, params, sizes, set(skip), reference_only, log_file).result()
        except BrokenProcessPool:  # killed (a driver crash, out of memory): no rates; the plan says what it lacks
            folder, _, what = _reranker_folder(params)
            shape = _folder_shape(folder)
            problems = {(v, d): "the probing process died (see the log)" for d in params.reranker.devices
                        for v in ([REFERENCE_VARIANT] if reference_only else params.reranker.variants)}
            return Probes({}, shape, what, problems, None, None)


def kernel_overhead_s() -> float:
    """Seconds a fresh process takes to import what an execution needs: paid once per execution."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import runlocalai_bench.run.stages, ipykernel, torch, sentence_transformers"],
                   capture_output=True)
    return time.perf_counter() - started


def split_from(path: str | Path) -> tuple[Path, str | None]:
    """``--from BUNDLE`` or ``--from BUNDLE#RUN_ID`` (one run of a merged bundle): the folder and the run."""
    text = str(path)
    if "#" in text and not Path(text).exists():
        folder, run = text.rsplit("#", 1)
        return Path(folder), run
    return Path(text), None


def _run_cpu(bundle: Bundle, run: str) -> tuple[str, tuple[str, ...]] | None:
    """The CPU a run of a merged bundle recorded (``environments/<run_id>.json``): its model name and the flags
    that decide its fast paths. Both count: cloud VMs report generic names ("Intel(R) Xeon(R) Processor") for CPUs
    with and without AMX."""
    try:
        cpu = json.loads((bundle.root / "environments" / f"{run}.json").read_text(encoding="utf-8"))["cpu"]
        return cpu["model"], tuple(sorted(cpu.get("flags") or ()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def bundle_rates(path: str | Path, model: str | None = None) -> dict[tuple[str, str], Rate]:
    """Measured end-to-end rates (and load times) of an earlier bundle, per (variant, requested device).

    A bundle of another reranker is refused when ``model`` is given: its pairs/s are another architecture's, and
    the rates are carried to other lengths only (:meth:`Rate.at`), never to another model. A shape twin of the same
    model id (``weights: random``) has the same architecture and is accepted.

    A merged bundle pools runs of several machines; their rates are never blended (the median of a Xeon's and an
    EPYC's pairs/s describes neither). ``BUNDLE#RUN_ID`` names the run; without it the run that recorded this
    machine's CPU model is taken, and a bundle with none or several such runs is refused with the ids to choose."""
    folder, run = split_from(path)
    bundle = Bundle(folder)
    if model is not None and bundle.params().reranker.model != model:
        raise ParamsError(f"--from {path}: it measured {bundle.params().reranker.model}, not {model}; its rates "
                          "would price another model. Give a bundle of the same model (its shape twin will do)")
    throughput = read_table(bundle.root, "throughput")
    rows = throughput[throughput["workload"] == "candidates"] if not throughput.empty else throughput
    if "reranker" in rows and len(rows):  # the reranker under test only: comparison rerankers run at their own speed
        rows = rows[rows["reranker"] == bundle.params().reranker.model]
    runs = sorted(set(rows["run_id"].dropna())) if "run_id" in rows else []  # the runs with a rate to give
    if run is None and len(runs) > 1:
        info = cpu_info()
        here = (info["model"], tuple(sorted(info.get("flags") or ())))
        same = [r for r in runs if _run_cpu(bundle, r) == here]
        if len(same) != 1:
            raise ParamsError(f"--from {path}: it pools runs of several machines ({', '.join(runs)}), and "
                              f"{'none' if not same else 'more than one'} ran on this CPU ({here[0]}, "
                              f"{' '.join(here[1]) or 'no listed flags'}); name one: --from {folder}#RUN_ID")
        run = same[0]
    if run is not None:
        if run not in runs:
            raise ParamsError(f"--from {path}: no run {run!r} in {folder} (its runs: {', '.join(runs)})" if runs else
                              f"--from {path}: {folder} is not a merged bundle (no run ids): drop '#{run}'")
        rows = rows[rows["run_id"] == run]
    rates: dict[tuple[str, str], Rate] = {}
    metas = {k: m for k, m in bundle.all_stage_meta().items() if not m.get("baseline")}
    for (variant, device), group in rows.groupby(["variant", "device"]):
        mean_sq = group["mean_sq_tokens"].mean() if "mean_sq_tokens" in group else group["mean_tokens"].mean() ** 2
        load = next((m.get("load_s") for m in metas.values() if m.get("variant") == variant and m.get("device")
                     and meta_device(m) == device), None)
        rate = Rate(float(group["pairs_per_s"].median()), float(group["mean_tokens"].mean()), float(mean_sq),
                    f"bundle {bundle.root.name}{'#' + run if run and len(runs) > 1 else ''}", load)
        rates[(variant, device)] = rate
        requested = next((m.get("requested_device") for m in metas.values()
                          if m.get("variant") == variant and m.get("device") and meta_device(m) == device), None)
        if requested:
            rates[(variant, requested)] = rate
    return rates


# ------------------------------------------------------------------------------------------------ plan


def node_flags(path: Path) -> dict[str, set[str]]:
    """The CPU flags of each node class an earlier bundle ran on (its ``nodes/*.json``): whether a half precision
    runs emulated there is a fact of that node's CPU, not of this machine's."""
    flags: dict[str, set[str]] = {}
    for record in sorted((split_from(path)[0] / "nodes").glob("*.json")):
        try:
            node = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if node.get("node_class") and (node.get("environment") or {}).get("cpu", {}).get("flags") is not None:
            flags[node["node_class"]] = set(node["environment"]["cpu"]["flags"])
    return flags


def _tokenizer(params: Params):
    from transformers import AutoTokenizer  # tokenizing the sample needs it

    folder, _, _ = _reranker_folder(params)
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _rounds_s(settings: Any, round_s: float) -> float:
    return settings.warmup_rounds * round_s + max(settings.min_rounds * round_s, settings.min_seconds)


def _load_sweep_s(params: Params, request_s: float) -> float:
    """Seconds of one dataset's load sweep (perf.load) when one request takes ``request_s`` alone: each closed-loop
    point runs its warm-up and counted requests for at least ``min_seconds``; each open-loop point offers its
    arrivals at a fraction of the capacity, taken as one request at a time (the server's slots share the cores),
    and drains its queue at that capacity past saturation."""
    serve = params.serve
    # A closed-loop point: its warm-up (at least one answer per client), the counted requests (at least one per
    # client) or min_seconds, and the requests still in flight when it closes, answered one after another.
    closed = sum((max(serve.warmup_requests, c) + c - 1) * request_s
                 + max(serve.min_seconds, max(serve.min_requests, c) * request_s) for c in serve.concurrency)
    capacity = 1.0 / request_s if request_s > 0 else 0.0
    opened = 0.0
    for fraction in serve.rate_fractions if capacity else ():
        rate = capacity * fraction
        count = max(serve.open_requests, math.ceil(rate * serve.open_seconds))
        opened += max(count / rate, count / capacity) + request_s  # the last arrival's own answer
    return closed + opened


def _encoder_shape(params: Params) -> dict[str, int] | None:
    """The dense encoder's shape from its config: the local model's, else a known one (bge-m3's)."""
    if params.first_stage.kind != "dense":
        return None
    from transformers import AutoConfig  # reading a config

    try:
        ref = resolve(params.first_stage.model, params.first_stage.revision, params.cache_path)
        if not is_hub_id(params.first_stage.model) or _cached(ref):
            return model_shape(AutoConfig.from_pretrained(str(local_folder(ref)), local_files_only=True))
    except (ModelNotFoundError, OSError, ValueError):
        pass
    config = KNOWN_CONFIGS.get(params.first_stage.model)
    if config is None:
        return None
    return model_shape(AutoConfig.for_model(config["model_type"], **{k: v for k, v in config.items() if k != "model_type"}))


def _encoder_ref(params: Params):
    try:
        return resolve(params.first_stage.model, params.first_stage.revision, params.cache_path)
    except ModelNotFoundError:
        return None


def _cached_corpus_hash(params: Params, dataset_id: str) -> str:
    """The corpus hash of this encoder's cached embeddings of an ir_datasets corpus, or "" (none cached, or not a
    dense first stage). An ir_datasets corpus is hashed when it is read, which the plan does not do; the cache's
    own record of what it embedded stands in (EmbeddingCache.corpus_hashes)."""
    ref = _encoder_ref(params) if params.first_stage.kind == "dense" else None
    if ref is None:
        return ""
    cache = EmbeddingCache(params.cache_path)
    found = cache.corpus_hashes(dataset_id, max_length=params.first_stage.max_length, dtype=EMBEDDING_DTYPE)
    return next((corpus for corpus in found if cache.get(_embedding_key(params, ref, corpus)) is not None), "")


def _embedding_key(params: Params, ref: Any, corpus: str) -> str:
    """The key the dense first stage caches a corpus's document embeddings under (retrieval/dense.py)."""
    return cache_key(model=ref.spec, weights=ref.fingerprint, corpus=corpus, max_length=params.first_stage.max_length,
                     dtype=EMBEDDING_DTYPE, normalized=True, side="document")


def _embeddings_cached(params: Params, size: DatasetSize) -> bool:
    ref = _encoder_ref(params) if size.content_hash else None
    return ref is not None and EmbeddingCache(params.cache_path).get(_embedding_key(params, ref, size.content_hash)) is not None


def make_plan(params: Params, from_bundle: Path | None = None, reference_only: bool = False,
              log_file: Path | None = None, isolate: bool | None = None,
              node_lanes: dict[str, str] | None = None) -> Plan:
    """Predict the run ``params`` describe. ``reference_only`` probes torch-fp32 alone (what ``run`` does before
    it starts, to stay quick); the ``plan`` command probes every variant it can load without an export. What
    the probed libraries print goes to ``log_file`` (or nowhere), not between the plan's lines.

    ``node_lanes`` maps each node class to the node that will run it ("" for this machine's), as the Ray engine
    chose them: classes on one node run one after another, in one lane. Without it (the ``plan`` command, no
    cluster at hand) every class is taken for a node of its own, other than this machine."""
    node_lanes = node_lanes or {}

    def lane_of(device: str) -> str:
        cls = node_class(device)
        return node_lanes.get(cls, cls) if cls else ""

    with output_to(log_file):
        tokenizer = _tokenizer(params)
        sizes = [dataset_size(spec, params, tokenizer) for spec in params.datasets]
        measured = bundle_rates(from_bundle, params.reranker.model) if from_bundle else {}
        flags_of = node_flags(from_bundle) if from_bundle else {}
        probes = probe_in_child(params, sizes, set(measured), reference_only, log_file, isolate)
        probed, shape, what, problems, encoder = probes.rates, probes.shape, probes.what, probes.problems, probes.encoder
        overhead = kernel_overhead_s()
        encoder_shape = _encoder_shape(params)
    notes = [f"rates: {'bundle ' + Path(from_bundle).name + ' where it measured the variant, else ' if from_bundle else ''}"
             f"a probe here ({what}); variants not probed are predicted at torch-fp32's rate of the same device "
             "(on a node class: the bundle's rate of that variant there, or none)",
             f"each execution also pays about {overhead:.0f} s to start its kernel and import its libraries (measured here)"]
    notes += [f"{variant} · {device} could not be probed: {problem}" for (variant, device), problem in problems.items()]
    rows, executions, disk, unpredicted = [], {}, 0.0, []
    costs: list[ExecutionCost] = []  # what a budget shares out: fixed seconds and seconds per query per dataset
    lanes: dict[str, str] = {}  # priced rerank execution -> its lane (lane_of: "" this machine, else its node)
    # The FLOP rate the encoder is predicted at when it is not local: torch-fp32's, measured by the earlier bundle
    # or probed here; another variant only when neither has it (an emulated fp16 would make it 4x too slow).
    # The first stage runs on this machine: its own device's rate, else another device of this machine's, never a
    # node class's (a GPU node's rate would price an embedding this machine's CPU does).
    here = [d for d in params.reranker.devices if not node_class(d)]
    first_device = next((d for d in here if resolve_device(d) == resolve_device(params.first_stage.device)),
                        here[0] if here else None)
    reference = (measured.get((REFERENCE_VARIANT, first_device)) or probed.get((REFERENCE_VARIANT, first_device))
                 or next(iter(probed.values()), None))

    # first stage
    first_seconds = overhead
    embedded: dict[str, float] = {}  # dataset -> bytes a new document embedding takes on disk (absent: cached)
    for size in sizes:
        seconds, source = 0.0, f"{params.first_stage.kind}: candidates read, seconds"
        if params.first_stage.kind == "bm25":
            source = "bm25s indexing: seconds"
        elif params.first_stage.kind == "dense":
            if _embeddings_cached(params, size):
                source = "document embeddings cached: queries only"
            else:
                embedded[size.label] = (encoder_shape["hidden"] if encoder_shape else 1024) * 4
                disk += size.n_docs * embedded[size.label]
                if encoder is not None and encoder_shape:
                    seconds = size.n_docs / encoder.at(encoder_shape, size.doc_tokens, size.doc_tokens ** 2)
                    source = encoder.source
                elif encoder_shape and reference:
                    flop_rate = reference.pairs_per_s * flops_per_pair(shape, reference.mean_tokens, reference.mean_sq_tokens)
                    seconds = size.n_docs * flops_per_pair(encoder_shape, size.doc_tokens) / flop_rate
                    source = f"encoder not local: its FLOPs at the reranker's FLOP rate ({reference.source})"
                else:
                    seconds, source = None, "encoder not local and of unknown shape: time unknown"
        first_seconds += seconds or 0.0
        rows.append({"stage": "first_stage", "dataset": size.label, "variant": None, "device": None,
                     "queries": size.n_queries, "docs": size.n_docs, "pairs": None, "mean_tokens": size.doc_tokens,
                     "exports": "", "predicted_s": seconds, "peak_memory_mb": None, "rate_pairs_per_s": None,
                     "source": f"{size.source}; {source}"})
    executions["first_stage"] = first_seconds

    # rerank executions
    ref = _reranker_folder(params)[1]
    work = [DatasetWork(s.label, [("", "")] * s.pairs, [[("", "")] * params.reranker.depth] * s.n_queries) for s in sizes]
    family = _family_of(params.reranker.model, params)
    for variant in params.reranker.variants:
        spec = get_variant(variant)
        for device in params.reranker.devices:
            name = rerank_execution(variant, device)
            physical = resolve_device(split_class(device)[0])
            try:
                check_family(spec, family)
                if not node_class(device):
                    check_available(spec, physical)
                elif device_kind(physical) not in spec.devices:  # the node's libraries and hardware: it decides there
                    raise VariantUnavailable(f"{spec.name} runs on {', '.join(spec.devices)}, not {device}")
            except VariantUnavailable as exc:
                rows.append({"stage": "skipped", "dataset": None, "variant": variant, "device": device, "queries": None,
                             "docs": None, "pairs": None, "mean_tokens": None, "exports": "", "predicted_s": 0.0,
                             "peak_memory_mb": None, "rate_pairs_per_s": None, "source": f"skipped: {exc}"})
                executions[name] = overhead
                continue
            per_query: dict[str, float] = {}
            rate = measured.get((variant, device)) or probed.get((variant, device))
            assumed = rate is None
            if assumed and not node_class(device):  # a node class: only what the bundle measured of this variant there
                rate = measured.get((REFERENCE_VARIANT, device)) or probed.get((REFERENCE_VARIANT, device)) or reference
            built = _export_built(variant, ref, params)
            exports = "" if built is None else ("export cached" if built else f"builds its {spec.precision} export")
            total = overhead + ((rate.load_s or 0.0) if rate else 0.0)
            if rate is None:
                unpredicted.append(name)
            for size, job in zip(sizes, work):
                if rate is None:
                    continue
                per_pair = 1.0 / rate.at(shape, size.mean_tokens, size.mean_sq_tokens)
                score_s = size.pairs * per_pair if params.reranker.weights == "trained" else 0.0
                timing_s = 0.0
                if params.throughput.enabled:
                    for workload, _, _, _ in throughput_jobs(params, [job]):
                        if workload == "candidates":
                            timing_s += _rounds_s(params.throughput,
                                                  min(params.throughput.max_pairs or size.pairs, size.pairs) * per_pair)
                        elif workload == "query":
                            queries = min(params.throughput.max_queries or size.n_queries, size.n_queries)
                            timing_s += _rounds_s(params.throughput, queries * params.reranker.depth * per_pair)
                    timed = params.timed_datasets is None or full_label(job.label) in params.timed_datasets
                    if spec.served and params.serve.load and timed:
                        timing_s += _load_sweep_s(params, params.reranker.depth * per_pair)
                total += score_s + timing_s
                per_query[size.label] = score_s / size.n_queries if size.n_queries else 0.0
                rows.append({"stage": "rerank", "dataset": size.label, "variant": variant, "device": device,
                             "queries": size.n_queries, "docs": size.n_docs, "pairs": size.pairs,
                             "mean_tokens": size.mean_tokens, "exports": exports, "predicted_s": score_s + timing_s,
                             "peak_memory_mb": memory_estimate_mb(shape, spec.precision, params.reranker.batch_size,
                                                                  params.reranker.max_length),
                             "rate_pairs_per_s": rate.at(shape, size.mean_tokens, size.mean_sq_tokens),
                             "source": ("predicted at torch-fp32's rate: " if assumed else "") + rate.source})
            if params.throughput.enabled and "fixed" in params.throughput.workloads and rate is not None and not spec.served:
                for batch in params.throughput.batch_sizes_for(physical):
                    for length in params.throughput.max_lengths:
                        total += _rounds_s(params.throughput, batch / rate.at(shape, length, length ** 2))
            executions[name] = total
            costs.append(ExecutionCost(name, total - sum(per_query[s.label] * s.n_queries for s in sizes if s.label in per_query),
                                       per_query if rate is not None else None,
                                       emulated_reason(spec, device, flags_of.get(node_class(device) or "")),
                                       start_s=overhead, priority=0 if variant == REFERENCE_VARIANT else 1,
                                       lane=lane_of(device), device=device))
            lanes[name] = lane_of(device)
            if built is False:
                disk += weight_bytes(shape, spec.precision)
    # hosted comparison rerankers: priced per prices.yaml, timed at an assumed request latency (network)
    for baseline in params.reranker.hosted:
        name = rerank_execution(HOSTED_VARIANT, HOSTED_DEVICE, baseline)
        hosted_rows, per_query = hosted_plan_rows(baseline, sizes, params, tokenizer)
        rows += hosted_rows
        executions[name] = overhead + sum(r["predicted_s"] for r in hosted_rows)
        costs.append(ExecutionCost(name, overhead, per_query, start_s=overhead, lane="", device=HOSTED_DEVICE))
        lanes[name] = ""
    # comparison rerankers: the reference variant's FLOP rate on their own shape
    for baseline in params.reranker.local_baselines:
        config = _config_of(baseline, params)
        other = model_shape(SimpleNamespace(**config)) if config else None
        for device, variant in [(d, v) for d in params.reranker.devices for v in baseline_variants(params, d)]:
            name = rerank_execution(variant, device, baseline)
            skip = baseline_skip(baseline, config, variant, params)
            if skip:
                rows.append({"stage": "skipped", "dataset": None, "variant": variant, "device": device, "queries": None,
                             "docs": None, "pairs": None, "mean_tokens": None, "exports": "", "predicted_s": 0.0,
                             "peak_memory_mb": None, "rate_pairs_per_s": None,
                             "source": f"skipped: baseline {baseline}: {skip}"})
                executions[name] = overhead
                continue
            rate = measured.get((variant, device)) or probed.get((variant, device))
            rate_variant = variant
            if rate is None:  # a variant not probed: the reference variant's rate stands in, and the row says so
                rate_variant = reference_variant(device)
                rate = (measured.get((rate_variant, device)) or probed.get((rate_variant, device))
                        or (None if node_class(device) else reference))
            total, per_query = overhead, {}
            for size, job in zip(sizes, work):
                seconds, per_pair = None, None
                if rate is not None and other is not None:
                    flop_rate = rate.at(shape, size.mean_tokens, size.mean_sq_tokens) * flops_per_pair(
                        shape, size.mean_tokens, size.mean_sq_tokens)
                    per_pair = flops_per_pair(other, size.mean_tokens, size.mean_sq_tokens) / flop_rate
                    seconds = size.pairs * per_pair if params.reranker.weights == "trained" else 0.0
                    per_query[size.label] = seconds / size.n_queries if size.n_queries else 0.0
                    if params.throughput.enabled:
                        for workload, _, _, _ in throughput_jobs(params, [job], fixed=False):
                            count = (min(params.throughput.max_pairs or size.pairs, size.pairs) if workload == "candidates"
                                     else min(params.throughput.max_queries or size.n_queries, size.n_queries)
                                     * params.reranker.depth)
                            seconds += _rounds_s(params.throughput, count * per_pair)
                    total += seconds
                rows.append({"stage": "rerank", "dataset": size.label, "variant": variant, "device": device,
                             "reranker": baseline, "queries": size.n_queries, "docs": size.n_docs, "pairs": size.pairs,
                             "mean_tokens": size.mean_tokens, "exports": "", "predicted_s": seconds,
                             "peak_memory_mb": memory_estimate_mb(other, get_variant(variant).precision,
                                                                  params.reranker.batch_size, params.reranker.max_length)
                             if other else None,
                             "rate_pairs_per_s": 1.0 / per_pair if per_pair else None,
                             "source": (f"{rate_variant}'s FLOP rate here on {baseline}'s shape ({rate.source})" if per_pair
                                        else f"no rate of {variant} on {device}: time unknown" if rate is None
                                        else f"shape of {baseline} unknown offline: time unknown")})
            if rate is None:
                unpredicted.append(name)
            executions[name] = total
            costs.append(ExecutionCost(name, total - sum(per_query[s.label] * s.n_queries for s in sizes if s.label in per_query),
                                       per_query if len(per_query) == len(sizes) else None, start_s=overhead,
                                       lane=lane_of(device), device=device))
            lanes[name] = lane_of(device)
    if "report" in params.stages:
        executions["report"] = overhead
    if unpredicted:
        notes.append(f"{len(unpredicted)} rerank execution(s) have no predicted time (nothing could be probed on "
                     f"their device): {', '.join(unpredicted)}; the total leaves them out")
    if any(lanes.values()):
        notes.append("node classes run side by side (--engine ray): the total is this machine's executions or the "
                     "slowest class's, whichever is longer, after the first stage")
    plan = Plan(pd.DataFrame(rows), executions, disk, notes, probes.pid, unpredicted,
                downloads=downloads_of(params, shape, encoder_shape), lanes=lanes)
    if params.budget_s is not None:
        fit_to_budget(plan, params, sizes, costs, embedded)
    return plan


def _model_download(spec: str, revision: str | None, params: Params, shape: dict[str, int] | None,
                    ) -> tuple[str, float | None, str] | None:
    """A hub model the run will fetch (None when it is local or already cached): its fp32 weights' size from
    its shape (hub checkpoints of these models are fp32 safetensors; tokenizer files add a few MB)."""
    if not is_hub_id(spec):
        return None
    try:
        if _cached(resolve(spec, revision, params.cache_path, require=False)):
            return None
    except ModelNotFoundError:
        pass
    if shape is None:
        return f"model {spec}", None, "shape unknown offline"
    return f"model {spec}", weight_bytes(shape, "fp32"), "fp32 weights from its config's shape"


def downloads_of(params: Params, shape: dict[str, int], encoder_shape: dict[str, int] | None
                 ) -> list[tuple[str, float | None, str]]:
    """What the run downloads before it can run (models not cached, dataset files not in ir_datasets' home)."""
    found = []
    if params.first_stage.kind == "dense":
        found.append(_model_download(params.first_stage.model, params.first_stage.revision, params, encoder_shape))
    if "rerank" in params.stages and params.reranker.weights == "trained":
        found.append(_model_download(params.reranker.model, params.reranker.revision, params, shape))
        for baseline in params.reranker.local_baselines:
            config = _config_of(baseline, params)
            found.append(_model_download(baseline, None, params, model_shape(SimpleNamespace(**config)) if config else None))
    for spec in params.datasets:
        size, how = download_bytes(spec)
        if size != 0:
            found.append((f"dataset {spec.label}", size, how))
    return [f for f in found if f is not None]


def emulated_reason(spec: Any, device: str, flags: set[str] | None = None) -> str | None:
    """Why ``spec`` on ``device`` computes its precision through another (a budget gives it the minimum sample),
    or None. Torch and ONNX Runtime on a CPU without a native fp16/bf16 path convert every operation to fp32 and
    back: several times slower than fp32 itself, so a day of a budget would buy few queries of a configuration
    nobody deploys there. OpenVINO and llama.cpp pick their own fp32 kernels for such weights, and are not.

    On a node class the CPU is that node's: ``flags`` from an earlier bundle's node record; unknown, None."""
    if spec.precision not in ("fp16", "bf16") or not backend_of(spec).emulates_half_on_cpu:
        return None
    if resolve_device(split_class(device)[0]) != "cpu":
        return None
    if node_class(device) and flags is None:
        return None
    where = f"the {node_class(device)} node's CPU" if node_class(device) else "this CPU"
    path = cpu_path(spec.precision, set(cpu_info()["flags"]) if flags is None else flags)[1]
    return f"{spec.precision} on {where} runs emulated: {path}" if "no native" in path else None


def fit_to_budget(plan: Plan, params: Params, sizes: list[DatasetSize], costs: list[ExecutionCost],
                  embedded: dict[str, float] | None = None) -> None:
    """Share ``params.budget`` out (run/budget.py) and rewrite the plan's rows, times, downloads and disk to what
    will run: a skipped dataset is neither downloaded nor embedded, a reduced corpus embeds its documents only
    (``embedded``: bytes per document embedding of the datasets whose embeddings are not cached)."""
    first = plan.rows[plan.rows["stage"] == "first_stage"].set_index("dataset")
    datasets = []
    for size in sizes:
        seconds = first.loc[size.label, "predicted_s"]
        datasets.append(DatasetCost(size.label, size.n_queries, size.n_docs,
                                    None if seconds is None or pd.isna(seconds) else float(seconds),
                                    size.judged_per_query, params.first_stage.depth))
    first_overhead = plan.executions.get("first_stage", 0.0) - sum(d.first_stage_s or 0.0 for d in datasets)
    # Executions that cannot run here (a missing extra, no such device) still start a kernel to record why.
    unavailable_s = sum(s for name, s in plan.executions.items()
                        if name not in ("first_stage", "report") and name not in plan.lanes)
    allocation = allocate(params.budget_s, datasets, costs, params.queries.min_n,
                          first_overhead + plan.executions.get("report", 0.0) + unavailable_s)
    plan.allocation = allocation
    by_name = {c.name: c for c in costs}
    rows = plan.rows.copy()
    for index, row in rows.iterrows():
        if row["stage"] == "first_stage":
            choice = allocation.corpora[row["dataset"]]
            if choice.kind != "full":
                rows.at[index, "docs"] = choice.docs
                rows.at[index, "predicted_s"] = choice.seconds
                rows.at[index, "source"] = f"{choice.kind} corpus under the budget: {choice.reason}; {row['source']}"
            rows.at[index, "queries"] = allocation.first_stage_queries().get(row["dataset"], 0)
        elif row["stage"] == "rerank":
            name = rerank_execution(row["variant"], row["device"], row.get("reranker") if isinstance(row.get("reranker"), str) else None)
            cost = by_name.get(name)
            n = allocation.queries.get(name, {}).get(row["dataset"], 0)
            per_query = (cost.per_query_s or {}).get(row["dataset"]) if cost else None
            if per_query is not None and row["queries"]:
                rows.at[index, "pairs"] = int(row["pairs"] / row["queries"] * n)
                rows.at[index, "predicted_s"] = row["predicted_s"] - per_query * (row["queries"] - n)
            rows.at[index, "queries"] = n
            if name in allocation.skipped:
                rows.at[index, "source"] = f"skipped under the budget: {allocation.skipped[name]}"
    plan.rows = rows
    for size in sizes:
        choice = allocation.corpora[size.label]
        if choice.kind != "full":
            plan.disk_bytes -= (size.n_docs - choice.docs) * (embedded or {}).get(size.label, 0.0)
    skipped = {f"dataset {label}" for label, choice in allocation.corpora.items() if choice.kind == "skipped"}
    plan.downloads = [d for d in plan.downloads if d[0] not in skipped]
    plan.executions["first_stage"] = first_overhead + allocation.first_stage_s
    for cost in costs:
        if cost.name in allocation.skipped:
            plan.executions[cost.name] = cost.start_s
        else:
            plan.executions[cost.name] = cost.fixed_s + allocation.seconds.get(cost.name, 0.0)
    plan.notes.append(f"budget {params.budget} (queries.min_n {params.queries.min_n}): each execution evaluates a "
                      f"prefix of one seeded order of each dataset's queries, as many as its share pays for")
    plan.notes += allocation.notes


def baseline_skip(spec: str, config: dict[str, Any] | None, variant: str, params: Params) -> str | None:
    """Why comparison reranker ``spec`` will be a recorded skip in ``variant``, as far as is known before it is
    downloaded: its repository code is not allowed, or the variant's backend has no path for its family."""
    if (spec in REMOTE_CODE_MODELS or (config or {}).get("auto_map")) and spec not in params.reranker.trust_remote_code:
        return (f"runs code from its repository: set reranker.trust_remote_code.{spec} to the commit (40 hex) "
                "whose code you allow")
    try:
        check_family(get_variant(variant), _family_of(spec, params))
    except (VariantUnavailable, ValueError) as exc:
        return str(exc)
    return None


def _local_folder_of(spec: str, params: Params) -> Path | None:
    """A reranker's checkpoint folder where it is here without downloading (local folder, tiny twin, HF cache)."""
    try:
        ref = resolve(spec, None, params.cache_path, require=False)
        folder = Path(ref.location) if Path(ref.location).is_dir() else (local_folder(ref) if _cached(ref) else None)
    except (ModelNotFoundError, OSError, ValueError):
        folder = None
    return folder if folder is not None and (Path(folder) / "config.json").is_file() else None


def _config_of(spec: str, params: Params) -> dict[str, Any] | None:
    """A comparison reranker's config without downloading it: its own (local folder, tiny twin, HF cache), else
    the known configs of the rerankers this suite compares against."""
    folder = _local_folder_of(spec, params)
    if folder is not None:
        return json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    return KNOWN_CONFIGS.get(spec)


def _family_of(spec: str, params: Params) -> Family:
    """A reranker's family without downloading it (a local checkpoint's own files, else its id and known config)."""
    folder = _local_folder_of(spec, params)
    return family_of(spec, folder) if folder is not None else family_from(spec, KNOWN_CONFIGS.get(spec) or {})


def human_seconds(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "?"
    return hours(seconds)


def human_bytes(value: float) -> str:
    return f"{value / 1e9:.1f} GB" if value >= 1e9 else f"{value / 1e6:.0f} MB"


def describe(plan: Plan, params: Params) -> list[str]:
    """The plan as lines: one per execution (dataset, variant, device), then the totals and any warning."""
    lines = []
    for _, row in plan.rows.iterrows():
        if row["stage"] == "first_stage":
            lines.append(f"first stage  {row['dataset']}: {int(row['queries'])} queries, {int(row['docs']):,} documents "
                         f"({row['mean_tokens']:.0f} tokens each) ~ {human_seconds(row['predicted_s'])}  [{row['source']}]")
        elif row["stage"] == "skipped":
            lines.append(f"rerank       {row['variant']} · {row['device']}: {row['source']}")
        elif row["stage"] == "hosted":
            cost = f"~{row['cost_usd']:.2f} USD" if pd.notna(row["cost_usd"]) else "cost unknown"
            lines.append(f"hosted       {row['dataset']} · {row['reranker']}: {int(row['queries'])} queries, "
                         f"{int(row['pairs']):,} pairs, ~{sig(row['units'])} {row['unit'].replace('_', ' ')}, {cost} "
                         f"~ {human_seconds(row['predicted_s'])}  [{row['source']}]")
        elif isinstance(row.get("reranker"), str):
            rate = f"{sig(row['rate_pairs_per_s'])} pairs/s" if pd.notna(row["rate_pairs_per_s"]) else "rate unknown"
            lines.append(f"baseline     {row['dataset']} · {row['reranker']} · {row['variant']} · {row['device']}: "
                         f"{int(row['queries'])} queries, {int(row['pairs']):,} pairs, {rate} "
                         f"~ {human_seconds(row['predicted_s'])}  [{row['source']}]")
        else:
            memory = f"{row['peak_memory_mb'] / 1024:.1f} GB" if row["peak_memory_mb"] >= 1024 else f"{row['peak_memory_mb']:.0f} MB"
            export = f", {row['exports']}" if row["exports"] else ""
            lines.append(f"rerank       {row['dataset']} · {row['variant']} · {row['device']}: {int(row['queries'])} queries, "
                         f"{int(row['pairs']):,} pairs, {row['mean_tokens']:.0f} tokens, {sig(row['rate_pairs_per_s'])} pairs/s "
                         f"~ {human_seconds(row['predicted_s'])}, peak ~{memory}{export}  [{row['source']}]")
    if plan.allocation is not None:
        lines += budget_lines(plan.allocation)
    for what, size, how in plan.downloads:
        lines.append(f"download     {what}: {human_bytes(size) if size is not None else 'size unknown'}  [{how}]")
    if plan.downloads:
        known = sum(size for _, size, _ in plan.downloads if size is not None)
        unknown = sum(size is None for _, size, _ in plan.downloads)
        lines.append(f"download     {human_bytes(known)} in all{f' (+{unknown} of unknown size)' if unknown else ''}, "
                     f"once; plus {human_bytes(plan.disk_bytes)} of caches and exports: "
                     f"{human_bytes(known + plan.disk_bytes)} of disk")
    unknown = f"; {len(plan.unpredicted)} not predicted, see the note" if plan.unpredicted else ""
    lines.append(f"total        {'>' if plan.unpredicted else '~'} {human_seconds(plan.total_s)} "
                 f"({len(plan.executions)} executions{unknown}), {human_bytes(plan.disk_bytes)} of new caches and exports")
    if params.reranker.hosted:
        cost, unpriced = planned_cost(plan.rows)
        cap = params.api.max_cost_usd
        lines.append(f"hosted       ~{cost:.2f} USD in all for {', '.join(params.reranker.hosted)}"
                     + (f" (+ {', '.join(unpriced)}: no price)" if unpriced else "")
                     + (f"; cap api.max_cost_usd {cap:g} USD" if cap is not None else "; no cap (api.max_cost_usd null)")
                     + "; their keys come from the environment, answers already cached cost nothing")
        refusal = cost_refusal(plan.rows, params)
        if refusal:
            lines.append(f"refused      {refusal}")
    lines += [f"note         {n}" for n in plan.notes]
    if plan.total_s > LONG_RUN_S and plan.allocation is None:
        lines.append(f"warning      this run is predicted to take {human_seconds(plan.total_s)}; to fit in hours: "
                     f"--set queries.n=50, --set reranker.depth=20, fewer variants, or params/cpu.yaml on a CPU")
    return lines


def budget_lines(allocation: Allocation) -> list[str]:
    """Per execution the queries it evaluates under the budget (per dataset), or why it evaluates none."""
    lines = []
    for name in sorted({*allocation.queries, *allocation.skipped}):
        if name in allocation.skipped:
            lines.append(f"budget       {name}: skipped, {allocation.skipped[name]}")
            continue
        counts = allocation.queries[name]
        each = ", ".join(f"{label} {n}" for label, n in counts.items())
        lines.append(f"budget       {name}: {each or 'no dataset left'} queries ~ {human_seconds(allocation.seconds[name])}"
                     " of scoring")
    if len(allocation.lanes) > 1:
        for lane, seconds in sorted(allocation.lanes.items()):
            where = f"node {lane[:12]}" if lane else "this machine"
            lines.append(f"budget       {where}: ~{human_seconds(seconds)} of executions, side by side with the others")
    fits = "fits" if allocation.predicted_s <= allocation.budget_s else "does NOT fit"
    lines.append(f"budget       {human_seconds(allocation.predicted_s)} predicted for a budget of "
                 f"{human_seconds(allocation.budget_s)}: {fits}")
    return lines
