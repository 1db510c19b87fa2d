"""The bundle's report: figures, tables, skips and the claims verdict as Markdown and standalone HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mistune
import pandas as pd

from runlocalai_bench.environment import device_profile
from runlocalai_bench.params import read_params
from runlocalai_bench.paths import scrub
from runlocalai_bench.reporting.claims import load_claims, verdicts
from runlocalai_bench.reporting.figures import all_figures
from runlocalai_bench.reporting.provenance import combined_footer, run_descriptions
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


def reranking_runs(bundle: Bundle) -> dict[str, str]:
    """run_id -> reranker weights ("trained"/"random") of every pooled run that reranked at all."""
    pooled = bundle.root / "params"
    params = [read_params(p) for p in sorted(pooled.glob("*.yaml"))] if pooled.is_dir() else [bundle.params()]
    return {p.run_id or "": p.reranker.weights for p in params if "rerank" in p.stages}


def device_profiles(envs: dict[str, dict[str, Any]], tables: dict[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """"run_id|device" -> the device's profile (label, GPU class, cores) for every row of the tables."""
    profiles = {}
    for name in ("throughput", "summary"):
        for _, row in tables[name].iterrows():
            device = row.get("device") if isinstance(row.get("device"), str) else "cpu"
            profiles[f"{row['run_id']}|{device}"] = device_profile(envs.get(row["run_id"], {}), device)
    return profiles


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
    descriptions = run_descriptions(bundle)
    weights = reranking_runs(bundle)
    footer = combined_footer(descriptions)
    memory_line = env.get("cpu", {}).get("memory_gb")
    if any(str(d).startswith("cuda") for d in tables["throughput"].get("device", [])) and env.get("gpus"):
        memory_line = env["gpus"][0]["memory_gb"]
    claims_path = claims_path or params.claims
    verdict_table, claimed_lift = pd.DataFrame(), None
    if claims_path:
        claims = load_claims(claims_path)
        verdict_table = verdicts(claims, tables, weights, device_profiles(envs, tables))
        lift = next((c for c in claims.claims if c.table == "summary" and c.column == "lift_rel"), None)
        if lift and lift.low is not None and lift.high is not None:
            claimed_lift = (lift.low, lift.high)
    figures = all_figures(tables, bundle.figures_dir, footer, memory_line * 1024 if memory_line else None, claimed_lift)

    md = [f"# runlocalai-bench report: {params.run_id}\n",
          "## What was run\n",
          *[f"- {d.line()}" for d in descriptions],
          ""]
    if any(w == "random" for w in weights.values()):
        md.append("> **Random weights (shape twin):** runs "
                  f"{', '.join(r for r, w in weights.items() if w == 'random')} used the real architecture with random "
                  "weights; their speed and memory are the real model's, and no quality numbers are reported for "
                  "them, because a random-weight model's scores carry no relevance.\n")
    if any(d.reranker and "tiny random test model" in d.reranker for d in descriptions):
        md.append("> **Test model:** a reranker here is a tiny random-initialised test checkpoint; its quality "
                  "numbers only exercise the pipeline and say nothing about any real model.\n")
    runs = tables["runs"]
    problems = runs[runs["status"] != "ok"] if not runs.empty else runs
    md.append("## Executions\n")
    md.append(_markdown_table(runs, ["run_id", "stage", "variant", "device", "status", "reason", "seconds"]))
    if not problems.empty:
        md.append("Skipped or failed executions are listed with their reason above; they have no rows in the tables.\n")
    if not verdict_table.empty:
        md += ["## Claims verdict\n", f"Claims from `{Path(claims_path).name}`; every verdict names the measurement behind it.\n",
               _markdown_table(verdict_table, ["claim", "text", "measured", "hardware", "verdict", "evidence", "note"])]
    summary = tables["summary"]
    md += ["## Quality (nDCG@10, RR@10, recall)\n",
           "Mean over queries with 95% bootstrap CI; lift = paired mean difference over the first stage on the same "
           "queries (CI by paired bootstrap, p by paired sign-flip randomization test). The reranked run keeps the "
           "first stage's candidates below the reranked depth in their order, so recall at the first stage's depth "
           "is the same for every system.\n",
           _markdown_table(summary, ["run_id", "dataset", "first_stage", "first_stage_depth", "rerank_depth", "system",
                                     "variant", "device", "measure", "n_queries", "mean", "ci_low", "ci_high",
                                     "lift_abs", "lift_rel", "lift_ci_low", "lift_ci_high", "p_value", "wins", "ties",
                                     "losses"]),
           "## Quantization drift against torch-fp32\n",
           _markdown_table(tables["drift"], ["variant", "device", "reference", "n_pairs", "max_abs_diff", "mean_abs_diff",
                                             "top10_overlap", "kendall_tau"]),
           "## Throughput, latency, memory, roofline\n",
           "`peak_tflops` is the hardware's theoretical peak for the precision's fastest path (`peak_source` says how "
           "it was computed: a GPU's datasheet, or cores x clock x operations per cycle from the CPU's flags); "
           "`matmul_tflops` is the best layer-shaped matmul measured here. `estimate_mb` is weights + one batch's "
           "activations; `peak_rss_mb` is the peak resident set during each job (pages an mmapped file never "
           "touched are not resident); `peak_vram_mb` is the process's peak GPU memory as NVML (nvidia-smi) reports "
           "it.\n",
           _markdown_table(tables["throughput"], ["run_id", "variant", "device", "workload", "batch_size", "max_length", "mean_tokens",
                                                  "pairs_per_s", "pairs_per_s_iqr", "latency_p50_ms", "latency_p99_ms",
                                                  "peak_rss_mb", "peak_vram_mb", "estimate_mb", "model_bytes",
                                                  "achieved_tflops", "peak_tflops", "mfu", "executed_precision"]),
           "## Figures\n"]
    for figure in figures:
        if figure.drawn:
            md.append(f"### {figure.title}\n\n![{figure.caption}](figures/{figure.id}.svg)\n\n_{figure.caption}_\n")
        else:
            md.append(f"### {figure.title}\n\n_Not drawn: {figure.reason}._\n")
    text = scrub("\n".join(md))
    (bundle.root / "report.md").write_text(text, encoding="utf-8")
    html = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>runlocalai-bench report "
            f"{params.run_id}</title><style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;"
            "padding:0 1em;color:#222}}table{{border-collapse:collapse;font-size:12px;margin:1em 0}}"
            "td,th{{border:1px solid #ccc;padding:3px 6px}}th{{background:#f3f3f3}}img{{max-width:100%}}"
            "blockquote{{background:#fff8e1;border-left:4px solid #f0b400;margin:1em 0;padding:.5em 1em}}"
            f"</style></head><body>{mistune.html(text)}</body></html>")
    (bundle.root / "report.html").write_text(html, encoding="utf-8")
    return {"figures": [f.id for f in figures if f.drawn], "verdicts": verdict_table}
