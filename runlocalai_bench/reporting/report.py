"""The bundle's report: figures, tables, skips and the claims verdict as Markdown and standalone HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mistune
import pandas as pd

from runlocalai_bench.environment import hardware_label
from runlocalai_bench.params import read_params
from runlocalai_bench.reporting.claims import load_claims, verdicts
from runlocalai_bench.reporting.figures import all_figures
from runlocalai_bench.results.bundle import Bundle
from runlocalai_bench.results.tables import TABLES, read_table


def load_tables(root: Path) -> dict[str, pd.DataFrame]:
    return {name: read_table(root, name) for name in TABLES}


def environments(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """run_id -> environment fingerprint (a merged bundle keeps one per pooled run)."""
    pooled = bundle.root / "environments"
    if pooled.is_dir():
        return {p.stem: json.loads(p.read_text()) for p in sorted(pooled.glob("*.json"))}
    params = bundle.params()
    return {params.run_id or "": bundle.environment()}


def run_weights(bundle: Bundle, envs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """run_id -> reranker weights ("trained"/"random"), from each pooled run's own parameters."""
    pooled = bundle.root / "params"
    if pooled.is_dir():
        return {p.stem: read_params(p).reranker.weights for p in sorted(pooled.glob("*.yaml"))}
    return {run_id: bundle.params().reranker.weights for run_id in envs}


def hardware_map(envs: dict[str, dict[str, Any]], tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    labels = {}
    for name in ("throughput", "summary"):
        for _, row in tables[name].iterrows():
            device = row.get("device") if isinstance(row.get("device"), str) else None
            labels[f"{row['run_id']}|{device or '?'}"] = hardware_label(envs.get(row["run_id"], {}), device or "cpu")
    return labels


def provenance_footer(params: Any, env: dict[str, Any], meta: dict[str, dict[str, Any]], weights: str) -> str:
    first = meta.get("first_stage", {}).get("model") or {}
    reranker = next((m.get("model") for m in meta.values() if m.get("stage") == "rerank" and m.get("model")), {}) or {}
    code = env.get("code", {})
    commit = (code.get("commit") or "unknown")[:10] + ("+dirty" if code.get("dirty") else "")
    def model(ref: dict, spec: str) -> str:
        rev = ref.get("revision") or (ref.get("content_hash") or "")[:10]
        return f"{spec}@{rev}" if rev else spec
    return (f"run {params.run_id} · data {params.dataset} ({params.split}) · first stage "
            f"{model(first, params.first_stage.model if params.first_stage.kind == 'dense' else 'bm25')} · reranker "
            f"{model(reranker, params.reranker.model)} ({weights} weights) · "
            f"{hardware_label(env)} · {env.get('date_utc', '')[:10]} · runlocalai-bench {commit}")


def _markdown_table(frame: pd.DataFrame, columns: list[str], floats: str = "{:.4g}") -> str:
    if frame.empty:
        return "_none_\n"
    frame = frame[[c for c in columns if c in frame.columns]]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("" if pd.isna(value) else floats.format(value))
            else:
                cells.append("" if value is None else str(value).replace("|", "\\|"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def build_report(bundle_dir: str | Path, claims_path: str | Path | None = None) -> dict[str, Any]:
    """Write figures, report.md and report.html into the bundle; return what was written."""
    bundle = Bundle(Path(bundle_dir))
    params = bundle.params()
    tables = load_tables(bundle.root)
    envs = environments(bundle)
    env = envs.get(params.run_id or "", next(iter(envs.values())))
    meta = bundle.all_stage_meta()
    weights = run_weights(bundle, envs)
    measured = tables["throughput"]["weights"].dropna().unique() if "weights" in tables["throughput"] else []
    weights_label = " and ".join(sorted(measured)) or params.reranker.weights
    footer = provenance_footer(params, env, meta, weights_label)
    memory_line = env.get("cpu", {}).get("memory_gb")
    if any(str(d).startswith("cuda") for d in tables["throughput"].get("device", [])) and env.get("gpus"):
        memory_line = env["gpus"][0]["memory_gb"]
    figures = all_figures(tables, bundle.figures_dir, footer, memory_line * 1024 if memory_line else None)

    claims_path = claims_path or params.claims
    verdict_table = pd.DataFrame()
    if claims_path:
        claims = load_claims(claims_path)
        cores = {run_id: e.get("cpu", {}).get("usable_cores") for run_id, e in envs.items()}
        verdict_table = verdicts(claims, tables, weights, hardware_map(envs, tables), cores)

    md = [f"# runlocalai-bench report: {params.run_id}\n",
          f"_{footer}_\n",
          "## What was run\n",
          f"- Dataset: `{params.dataset}` split `{params.split}`, {meta.get('first_stage', {}).get('dataset', {}).get('n_queries', '?')} queries"
          f" (`queries.n={params.queries.n}`, seed {params.queries.seed}).",
          f"- First stage: {params.first_stage.kind} `{params.first_stage.model if params.first_stage.kind == 'dense' else 'bm25s'}`,"
          f" top {params.first_stage.depth}; reranker `{params.reranker.model}` ({params.reranker.weights} weights) reorders the top {params.reranker.depth}.",
          f"- Hardware: {', '.join(sorted({hardware_label(e) for e in envs.values()}))}.",
          ""]
    if "random" in weights_label:
        md.append("> **Random weights (shape twin):** speed and memory are the real architecture's; no quality "
                  "numbers are reported, because a random-weight model's scores carry no relevance.\n")
    if str(params.reranker.model).startswith("twin:"):
        md.append("> **Test model:** the reranker is a tiny random-initialised test checkpoint; its quality numbers "
                  "only exercise the pipeline and say nothing about any real model.\n")
    runs = tables["runs"]
    problems = runs[runs["status"] != "ok"] if not runs.empty else runs
    md.append("## Executions\n")
    md.append(_markdown_table(runs, ["run_id", "stage", "variant", "device", "status", "reason", "seconds"]))
    if not problems.empty:
        md.append("Skipped or failed executions are listed with their reason above; they have no rows in the tables.\n")
    if not verdict_table.empty:
        md += ["## Claims verdict\n", f"Claims from `{Path(claims_path).name}`; every verdict names the measurement behind it.\n",
               _markdown_table(verdict_table, ["claim", "text", "measured", "hardware", "verdict", "evidence"])]
    summary = tables["summary"]
    md += ["## Quality (nDCG@10, RR@10, recall)\n",
           "Mean over queries with 95% bootstrap CI; lift = paired mean difference over the first stage on the same "
           "queries (CI by paired bootstrap, p by paired randomization test).\n",
           _markdown_table(summary, ["run_id", "system", "variant", "device", "measure", "n_queries", "mean", "ci_low", "ci_high",
                                     "lift_abs", "lift_rel", "lift_ci_low", "lift_ci_high", "p_value", "wins", "ties", "losses"]),
           "## Quantization drift against torch-fp32\n",
           _markdown_table(tables["drift"], ["variant", "device", "reference", "n_pairs", "max_abs_diff", "mean_abs_diff",
                                             "top10_overlap", "kendall_tau"]),
           "## Throughput, latency, memory, roofline\n",
           "`peak_tflops` is the best rate of a layer-shaped matmul this machine showed in the variant's precision "
           "during the run; an MFU above 1 means the model's own kernels beat that reference matmul on this "
           "hardware, so read that peak as a lower bound there. `estimate_mb` is weights + one batch's "
           "activations; peak RSS counts only resident pages (an mmapped embedding table is resident only where "
           "tokens touched it).\n",
           _markdown_table(tables["throughput"], ["run_id", "variant", "device", "workload", "batch_size", "max_length", "mean_tokens",
                                                  "pairs_per_s", "pairs_per_s_iqr", "latency_p50_ms", "latency_p99_ms",
                                                  "peak_rss_mb", "peak_vram_mb", "estimate_mb", "model_bytes",
                                                  "achieved_tflops", "peak_tflops", "mfu", "executed_precision"]),
           "## Figures\n"]
    for figure in figures:
        md.append(f"### {figure.id}\n\n![{figure.caption}](figures/{figure.id}.svg)\n\n_{figure.caption}_\n")
    text = "\n".join(md)
    (bundle.root / "report.md").write_text(text, encoding="utf-8")
    html = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>runlocalai-bench report "
            f"{params.run_id}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;"
            "padding:0 1em;color:#222}}table{{border-collapse:collapse;font-size:12px;margin:1em 0}}"
            "td,th{{border:1px solid #ccc;padding:3px 6px}}th{{background:#f3f3f3}}img{{max-width:100%}}"
            "blockquote{{background:#fff8e1;border-left:4px solid #f0b400;margin:1em 0;padding:.5em 1em}}"
            f"</style></head><body>{mistune.html(text)}</body></html>")
    (bundle.root / "report.html").write_text(html, encoding="utf-8")
    return {"figures": [f.id for f in figures], "verdicts": verdict_table}
