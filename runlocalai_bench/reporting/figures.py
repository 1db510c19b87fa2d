"""Figures in the house style, each with a caption and a provenance footer, saved as SVG and PNG.

File names are the figure ids (stable across runs). SVGs are byte-identical for identical tables:
no dates in the metadata, and a fixed hash salt for matplotlib's element ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = Path(__file__).with_name("house.mplstyle")


@dataclass(frozen=True)
class Figure:
    id: str
    caption: str


def _label(row: pd.Series) -> str:
    return f"{row['variant']} · {row['device']}"


def _save(fig, folder: Path, figure: Figure, footer: str) -> Figure:
    fig.text(0.01, 0.005, footer, fontsize=6.5, color="#555555", ha="left", va="bottom", wrap=True)
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{figure.id}.svg", metadata={"Date": None, "Creator": None})
    fig.savefig(folder / f"{figure.id}.png", dpi=150, metadata={"Software": None})
    plt.close(fig)
    return figure


def _new(width: float = 7.5, height: float = 4.2):
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(bottom=0.22, left=0.3)
    return fig, ax


def _first_stage_means(summary: pd.DataFrame) -> pd.DataFrame:
    """The first stage's nDCG@10 per run and dataset: each reranked row is compared with its own run's."""
    rows = summary[(summary["measure"] == "nDCG@10") & (summary["system"] != "rerank")]
    return rows[["run_id", "dataset", "mean", "ci_low", "ci_high"]].rename(
        columns={"mean": "base", "ci_low": "base_low", "ci_high": "base_high"})


def ndcg_by_variant(summary: pd.DataFrame, folder: Path, footer: str) -> Figure | None:
    rows = summary[(summary["measure"] == "nDCG@10") & (summary["system"] == "rerank")]
    reranked = rows.merge(_first_stage_means(summary), on=["run_id", "dataset"], how="inner")
    if reranked.empty:
        return None
    reranked = reranked.sort_values(["run_id", "dataset", "variant", "device"]).reset_index(drop=True)
    several = reranked[["run_id", "dataset"]].drop_duplicates().shape[0] > 1
    fig, ax = _new()
    y = np.arange(len(reranked))
    ax.errorbar(reranked["mean"], y, xerr=[reranked["mean"] - reranked["ci_low"], reranked["ci_high"] - reranked["mean"]],
                fmt="o", capsize=3, label="reranked")
    for i, row in reranked.iterrows():  # the first stage of the same run and dataset, on the same line
        ax.plot([row["base_low"], row["base_high"]], [i, i], color="#bbbbbb", lw=6, alpha=0.6, solid_capstyle="butt")
        ax.plot([row["base"]], [i], marker="|", ms=14, mew=2, color="#444444",
                label="first stage alone (95% CI)" if i == 0 else None)
    labels = [_label(r) + (f" · {r['dataset']} · {r['run_id']}" if several else "") for _, r in reranked.iterrows()]
    ax.set_yticks(y, labels)
    ax.set_xlabel("nDCG@10 (mean over queries, 95% bootstrap CI)")
    ax.legend(loc="lower right")
    caption = ("nDCG@10 after reranking per variant and device (dots, 95% CI), next to the first stage alone on the "
               "same queries of the same run (dark tick, grey band = 95% CI).")
    return _save(fig, folder, Figure("ndcg_by_variant", caption), footer)


def per_query_lift(quality: pd.DataFrame, measure: str = "nDCG@10") -> pd.DataFrame:
    """Reranked rows with ``lift`` = value minus the first stage's value for the same query *of the same run
    and dataset* (query ids repeat across pooled runs; aligning on the id alone would mix runs)."""
    rows = quality[quality["measure"] == measure]
    keys = ["run_id", "dataset", "query_id"]
    base = rows[rows["system"] != "rerank"][keys + ["value"]].rename(columns={"value": "base"})
    reranked = rows[rows["system"] == "rerank"].merge(base, on=keys, how="inner", validate="many_to_one")
    return reranked.assign(lift=reranked["value"] - reranked["base"])


def lift_distribution(quality: pd.DataFrame, folder: Path, footer: str) -> Figure | None:
    reranked = per_query_lift(quality)
    if reranked.empty:
        return None
    groups = sorted(reranked.groupby(["variant", "device"]), key=lambda item: item[0])
    fig, ax = _new()
    data = [g["lift"].to_numpy() for _, g in groups]
    ax.boxplot(data, vert=False, tick_labels=[f"{v} · {d}" for (v, d), _ in groups], showmeans=True)
    ax.axvline(0, color="#444444", lw=0.8)
    ax.set_xlabel("per-query nDCG@10 lift over the first stage (reranked − first stage)")
    caption = ("Distribution of the per-query nDCG@10 lift, each query against the first stage of its own run; "
               "box = quartiles, triangle = mean, points = outlying queries.")
    return _save(fig, folder, Figure("lift_distribution", caption), footer)


def throughput_by_variant(throughput: pd.DataFrame, folder: Path, footer: str) -> Figure | None:
    rows = throughput[throughput["workload"] == "candidates"].sort_values(["device", "variant"])
    if rows.empty:
        return None
    fig, ax = _new()
    y = np.arange(len(rows))
    ax.barh(y, rows["pairs_per_s"], xerr=rows["pairs_per_s_iqr"] / 2, capsize=3, color="#4c72b0")
    ax.set_yticks(y, [f"{_label(r)} · batch {r['batch_size']}" for _, r in rows.iterrows()])
    ax.set_xlabel("pairs/s, end to end on the run's candidate pairs (median of rounds, bar = IQR)")
    caption = "Reranking throughput per variant and device: tokenization and length-sorted batching included."
    return _save(fig, folder, Figure("throughput_by_variant", caption), footer)


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Points not beaten on both speed and quality by any other point."""
    keep = []
    for i, p in points.iterrows():
        dominated = ((points["pairs_per_s"] >= p["pairs_per_s"]) & (points["quality"] >= p["quality"])
                     & ((points["pairs_per_s"] > p["pairs_per_s"]) | (points["quality"] > p["quality"]))).any()
        if not dominated:
            keep.append(i)
    return points.loc[keep].sort_values("pairs_per_s")


def quality_vs_speed(summary: pd.DataFrame, throughput: pd.DataFrame, folder: Path, footer: str) -> Figure | None:
    quality = summary[(summary["measure"] == "nDCG@10") & (summary["system"] == "rerank")][["run_id", "variant", "device", "mean"]]
    speed = throughput[throughput["workload"] == "candidates"][["run_id", "variant", "device", "pairs_per_s"]]
    points = quality.merge(speed, on=["run_id", "variant", "device"]).rename(columns={"mean": "quality"})
    if points.empty:
        return None
    fig, ax = _new(6.5, 4.5)
    fig.subplots_adjust(left=0.12)
    ax.scatter(points["pairs_per_s"], points["quality"], color="#4c72b0")
    for _, p in points.iterrows():
        ax.annotate(f"{p['variant']} · {p['device']}", (p["pairs_per_s"], p["quality"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    front = pareto_front(points)
    ax.plot(front["pairs_per_s"], front["quality"], color="#c44e52", lw=1.2, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("pairs/s (log scale)")
    ax.set_ylabel("nDCG@10")
    ax.legend(loc="lower left")
    caption = "Quality against speed per variant and device; the red line joins the variants no other beats on both."
    return _save(fig, folder, Figure("quality_vs_speed", caption), footer)


def peak_memory(throughput: pd.DataFrame, memory_line_mb: float | None, folder: Path, footer: str) -> Figure | None:
    rows = throughput[throughput["workload"] == "candidates"].sort_values(["device", "variant", "batch_size"])
    if rows.empty:
        return None
    # CUDA: the process's peak GPU memory as NVML (nvidia-smi) sees it; CPU: the peak resident set of the job.
    values = rows["peak_vram_mb"].where(rows["device"].str.startswith("cuda"), rows["peak_rss_mb"]).astype(float)
    fig, ax = _new()
    y = np.arange(len(rows))
    ax.barh(y, values, color="#55a868")
    if "estimate_mb" in rows:
        ax.scatter(rows["estimate_mb"], y, marker="|", s=200, color="#222222", label="estimate: weights + activations")
    if memory_line_mb:
        ax.axvline(memory_line_mb, color="#c44e52", ls="--", label=f"device memory {memory_line_mb / 1024:.0f} GiB")
    ax.set_yticks(y, [f"{_label(r)} · batch {r['batch_size']}" for _, r in rows.iterrows()])
    ax.set_xlabel("peak memory, MiB (CPU: resident set during the job; CUDA: process GPU memory, NVML)")
    ax.legend(loc="lower right", fontsize=7)
    caption = "Peak memory per variant (bars) next to the weights + activations estimate (ticks) and the device's memory."
    return _save(fig, folder, Figure("peak_memory", caption), footer)


def mfu_by_variant(throughput: pd.DataFrame, folder: Path, footer: str) -> Figure | None:
    rows = throughput[throughput["workload"] == "fixed"].sort_values(["device", "variant", "batch_size", "max_length"])
    if rows.empty:
        return None
    fig, ax = _new()
    y = np.arange(len(rows))
    ax.barh(y, rows["mfu"] * 100, color="#8172b2")
    ax.set_yticks(y, [f"{_label(r)} · b{r['batch_size']}×{r['max_length']}" for _, r in rows.iterrows()])
    ax.set_xlabel("model FLOP utilisation, % of the hardware's theoretical peak for the precision")
    caption = ("Model-only MFU on fixed shapes: achieved FLOP/s (from config and tokens) over the hardware's theoretical "
               "peak for the precision's fastest path (tables/throughput peak_source says how it was computed).")
    return _save(fig, folder, Figure("mfu_by_variant", caption), footer)


def all_figures(tables: dict[str, pd.DataFrame], folder: Path, footer: str, memory_line_mb: float | None) -> list[Figure]:
    plt.style.use(str(STYLE))
    plt.rcParams["svg.hashsalt"] = "runlocalai-bench"
    made = [
        ndcg_by_variant(tables["summary"], folder, footer),
        lift_distribution(tables["quality"], folder, footer),
        throughput_by_variant(tables["throughput"], folder, footer),
        quality_vs_speed(tables["summary"], tables["throughput"], folder, footer),
        peak_memory(tables["throughput"], memory_line_mb, folder, footer),
        mfu_by_variant(tables["throughput"], folder, footer),
    ]
    return [f for f in made if f is not None]
