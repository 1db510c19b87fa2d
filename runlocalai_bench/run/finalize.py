"""Pool the per-execution parts of a bundle into its tables, and compute the statistics across executions; the
executions a run plans, and the record of those that ended."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from runlocalai_bench.params import Params, ParamsError
from runlocalai_bench.perf.peaks import common_peaks
from runlocalai_bench.quality.compare import comparisons
from runlocalai_bench.quality.depth import summarize_depth
from runlocalai_bench.quality.drift import drift_table
from runlocalai_bench.quality.summary import summarize
from runlocalai_bench.reporting.report import build_report
from runlocalai_bench.results.bundle import Bundle, meta_device, rerank_execution
from runlocalai_bench.rerankers.hosted import HOSTED_DEVICE, HOSTED_VARIANT
from runlocalai_bench.rerankers.registry import reference_variant
from runlocalai_bench.run.engines import NOTEBOOKS
from runlocalai_bench.run.scratch import scratch_bundle
from runlocalai_bench.results.tables import COLUMNS, read_parts, write_table


def finalize_tables(bundle: Bundle, params: Params, executions: list[dict]) -> None:
    """Write ``tables/*`` from the parts that *successful* executions left, then the statistics across them.

    A failed execution may have written its quality part before failing (say, in the throughput cell): its rows
    must not reach the summary or a claim, as they never reach the drift table.
    """
    ok = {e["execution"] for e in executions if e["status"] == "ok"}
    quality = read_parts(bundle.root, "quality", ok)
    throughput = common_peaks(read_parts(bundle.root, "throughput", ok))
    depth_quality = read_parts(bundle.root, "depth_quality", ok)
    write_table(bundle.root, "quality", quality)
    write_table(bundle.root, "throughput", throughput)
    write_table(bundle.root, "load", read_parts(bundle.root, "load", ok))
    write_table(bundle.root, "hosted", read_parts(bundle.root, "hosted", ok))
    write_table(bundle.root, "summary", summarize(quality, params.bootstrap_samples, params.seed))
    write_table(bundle.root, "drift", bundle_drift(bundle, params, ok))
    write_table(bundle.root, "depth_quality", depth_quality)
    depth = summarize_depth(depth_quality, throughput, params.bootstrap_samples, params.seed)
    write_table(bundle.root, "depth", depth if not depth.empty else pd.DataFrame(columns=COLUMNS["depth"]))
    model = read_parts(bundle.root, "model", ok)
    write_table(bundle.root, "model", model)
    sizes = {(r["run_id"], r["reranker"], r["variant"], r["device"]): r["file_bytes"] for _, r in model.iterrows()}
    write_table(bundle.root, "comparisons", comparisons(quality, {params.run_id or "": params.reranker.model},
                                                        params.bootstrap_samples, params.seed, sizes))


def bundle_drift(bundle: Bundle, params: Params, ok: set[str]) -> pd.DataFrame:
    """Drift rows per dataset from the score files the successful rerank executions wrote (trained weights)."""
    frames = []
    reranks = {name: meta for name, meta in bundle.all_stage_meta().items()  # the reranker under test only
               if meta.get("stage") == "rerank" and name in ok and meta.get("status") == "ok" and not meta.get("baseline")}
    for spec in params.datasets:
        scores = {}
        for name, meta in reranks.items():
            path = bundle.rerank_scores(spec.slug, name)
            if path.is_file():
                scores[(meta["variant"], meta_device(meta))] = pd.read_parquet(path)
        frames.append(drift_table(scores, params.run_id or "", bundle.quality_label(spec.label), params.reranker.model))
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS["drift"])


EXECUTIONS_LOG = "executions.jsonl"


@dataclass(frozen=True)
class Execution:
    name: str  # first_stage | rerank--<variant>--<device> | baseline--<model>--<variant>--<device> | report
    stage: str
    variant: str | None = None
    device: str | None = None
    baseline: str | None = None  # a comparison reranker's model spec; None for the reranker under test

    @property
    def title(self) -> str:
        parts = ("baseline " + self.baseline if self.baseline else self.stage.replace("_", " "), self.variant, self.device)
        return " ".join(x for x in parts if x)

    @property
    def notebook(self) -> str:
        if self.variant:
            return f"02_rerank--{self.name.split('--', 1)[1]}.ipynb" if self.baseline else (
                f"02_rerank--{self.variant}--{(self.device or '').replace(':', '')}.ipynb")
        return NOTEBOOKS[self.stage]


def baseline_variants(params: Params, device: str) -> list[str]:
    """The variants a comparison reranker runs in on ``device``: the device's reference variant, then
    ``reranker.baseline_variants``."""
    reference = reference_variant(device)
    return [reference] + [v for v in params.reranker.baseline_variants if v != reference]


def executions_of(params: Params) -> list[Execution]:
    """Every execution a run plans: the first stage, each (variant, device) of the reranker under test, then
    each comparison reranker on each device in that device's reference variant and ``baseline_variants``."""
    planned = [Execution("first_stage", "first_stage")] if "first_stage" in params.stages else []
    if "rerank" in params.stages:
        planned += [Execution(rerank_execution(v, d), "rerank", v, d)
                    for v in params.reranker.variants for d in params.reranker.devices]
        planned += [Execution(rerank_execution(v, d, b), "rerank", v, d, b)
                    for b in params.reranker.local_baselines for d in params.reranker.devices
                    for v in baseline_variants(params, d)]
        # A hosted reranker runs once whatever the devices: its answers come from the provider's machines.
        planned += [Execution(rerank_execution(HOSTED_VARIANT, HOSTED_DEVICE, b), "rerank", HOSTED_VARIANT,
                              HOSTED_DEVICE, b) for b in params.reranker.hosted]
    return planned


def execution_reranker(params: Params, execution: Execution) -> str | None:
    """The model an execution reranks with (its comparison reranker, or the reranker under test)."""
    if execution.stage != "rerank":
        return None
    return execution.baseline or params.reranker.model


def recorded_executions(bundle: Path) -> list[dict]:
    path = Path(bundle) / EXECUTIONS_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def runs_table(executions: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(executions)
    if "reused" not in frame:
        frame["reused"] = False
    frame["reused"] = frame["reused"].fillna(False).astype(bool)
    return frame


def finalize(bundle_dir: str | Path) -> Path:
    """Pool a bundle's parts into its tables again and rebuild its report: after a notebook was rerun by hand
    (in JupyterLab, or ``python -m runlocalai_bench.run.execute``). An execution counts as it ended last: its
    stage record says ok or skipped; one without a record failed."""
    bundle = Bundle(Path(bundle_dir))
    if not bundle.params_path.is_file():
        raise ParamsError(f"{bundle.root}: no params.yaml (not a runlocalai-bench bundle)")
    params = bundle.params()
    recorded = {r["execution"]: r for r in recorded_executions(bundle.root)}
    executions = []
    for execution in executions_of(params):
        meta = bundle.stage_meta(execution.name)
        status = meta.get("status", "ok" if meta else "failed")
        base = recorded.get(execution.name, {"run_id": params.run_id, "stage": execution.stage,
                                             "reranker": execution_reranker(params, execution),
                                             "variant": execution.variant, "device": execution.device,
                                             "seconds": None, "notebook": f"notebooks/{execution.notebook}",
                                             "execution": execution.name, "reused": False})
        executions.append({**base, "status": status, "reason": meta.get("reason") if meta else base.get("reason")})
    finalize_tables(bundle, params, executions)
    write_table(bundle.root, "runs", runs_table(executions))
    build_report(bundle.root)
    return bundle.root


def report(bundle_dir: str | Path | None = None, claims: str | Path | None = None) -> dict:
    """What the report notebook does: build the report of ``bundle_dir`` (its tables pooled by the runner), or
    with ``None`` (the notebook run by hand) pool the scratch bundle's tables first."""
    if bundle_dir is None:
        bundle_dir = finalize(scratch_bundle())
    return build_report(bundle_dir, claims)
