"""Figures in the house style, each with a title that states its subject, a caption and a provenance footer,
saved as SVG and PNG.

One visual language across figures: a colour per backend (torch, ONNX Runtime, OpenVINO, llama.cpp) and a
marker per precision, so a variant looks the same everywhere. Bar charts are sorted by value with the value
printed on each bar. A figure that cannot be drawn (random weights, a single variant, no such rows) comes back
as a :class:`Figure` with ``reason`` set, and the report prints the reason in its place.

File names are the figure ids (stable across runs). SVGs are byte-identical for identical tables: no dates in
the metadata, and a fixed hash salt for matplotlib's element ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from runlocalai_bench.perf import timing  # noqa: E402
from runlocalai_bench.quality.stats import bootstrap_mean  # noqa: E402
from runlocalai_bench.quality.summary import MACRO  # noqa: E402
from runlocalai_bench.rerankers.registry import REFERENCE_VARIANT, VARIANTS, is_served  # noqa: E402
from runlocalai_bench.units import duration_ms, sig, size  # noqa: E402

STYLE = Path(__file__).with_name("house.mplstyle")
BACKEND_COLOURS = {"torch": "#4c72b0", "onnx": "#dd8452", "openvino": "#55a868", "gguf": "#c44e52",
                   "server": "#8172b3", "infinity": "#937860"}
BACKEND_NAMES = {"torch": "PyTorch", "onnx": "ONNX Runtime", "openvino": "OpenVINO", "gguf": "llama.cpp (GGUF)",
                 "server": "llama-server (served GGUF)", "infinity": "infinity (served, torch)"}
PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "bf16": "D", "int8": "^", "f16": "v", "q8_0": "P", "q4_k_m": "X"}
OTHER_COLOUR, OTHER_MARKER = "#7f7f7f", "o"
FIRST_STAGE_COLOUR = "#444444"


@dataclass(frozen=True)
class Figure:
    id: str
    title: str
    caption: str
    reason: str | None = None  # why it was not drawn; None when it was

    @property
    def drawn(self) -> bool:
        return self.reason is None


def not_drawn(figure_id: str, title: str, reason: str) -> Figure:
    return Figure(figure_id, title, "", reason)


def variant_style(variant: str) -> tuple[str, str]:
    """(colour, marker) of a variant: colour by backend, marker by precision."""
    spec = VARIANTS.get(variant)
    if spec is None:
        return OTHER_COLOUR, OTHER_MARKER
    return BACKEND_COLOURS.get(spec.backend, OTHER_COLOUR), PRECISION_MARKERS.get(spec.precision, OTHER_MARKER)


def _backend_legend(ax, variants) -> None:
    backends = sorted({VARIANTS[v].backend for v in variants if v in VARIANTS})
    handles = [Line2D([], [], color=BACKEND_COLOURS[b], marker="s", ls="", label=BACKEND_NAMES.get(b, b))
               for b in backends if b in BACKEND_COLOURS]
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=7)


def _label(row: pd.Series, several_runs: bool = False) -> str:
    text = f"{row['variant']} · {row['device']}"
    return text + (f" · {row['run_id']}" if several_runs else "")


def _save(fig, folder: Path, figure: Figure, footer: str) -> Figure:
    fig.suptitle(figure.title, x=0.01, ha="left", fontsize=10, fontweight="bold")
    fig.text(0.01, 0.005, footer, fontsize=6, color="#555555", ha="left", va="bottom", wrap=True)
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{figure.id}.svg", metadata={"Date": None, "Creator": None})
    fig.savefig(folder / f"{figure.id}.png", dpi=150, metadata={"Software": None})
    plt.close(fig)
    return figure


def _new(width: float = 7.5, height: float = 4.2, left: float = 0.3, right: float = 0.95):
    """A figure with fixed room (in inches) for the title above and the axis label and footer below."""
    fig, ax = plt.subplots(figsize=(width, height))
    fig.subplots_adjust(bottom=1.05 / height, left=left, top=1 - 0.5 / height, right=right)
    return fig, ax


def _plain_log_axis(axis, low: float | None = None, high: float | None = None) -> None:
    """A log scale labelled 1, 2, 5, 10, 20, 50 ... (every integer step when the data span less than a
    decade) instead of 4x10^1, with thousands separators and no exponents."""
    narrow = low is not None and high is not None and low > 0 and high / low < 10
    axis.set_major_locator(LogLocator(base=10, subs=tuple(range(1, 10)) if narrow else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: sig(value) if value else "0"))
    axis.set_minor_formatter(NullFormatter())


def _place_labels(ax, xs, ys, labels: list[str], fontsize: float = 7) -> None:
    """Label each point right of it, moving a label down or up (then to the left) when it would cover one
    already placed: points close in speed and quality otherwise print their names on top of each other."""
    fig = ax.figure
    fig.canvas.draw()
    scale = fig.dpi / 72.0
    placed: list[tuple[float, float, float, float]] = []
    offsets = [(5, 4), (5, -11), (5, 15), (5, -22), (5, 26), (5, -33)]
    for x, y, text in sorted(zip(xs, ys, labels), key=lambda item: -item[1]):
        px, py = ax.transData.transform((x, y))
        width, height = len(text) * fontsize * 0.56 * scale, fontsize * 1.25 * scale
        chosen = None
        for dx, dy in offsets + [(-5 - len(text) * fontsize * 0.56, 4)]:
            box = (px + dx * scale, py + dy * scale, px + dx * scale + width, py + dy * scale + height)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                chosen = (dx, dy, box)
                break
        dx, dy, box = chosen or (5, 4, (px, py, px + width, py + height))
        placed.append(box)
        ax.annotate(text, (x, y), fontsize=fontsize, xytext=(dx, dy), textcoords="offset points")


def _sorted_bars(ax, labels: list[str], values: np.ndarray, colours: list[str], fmt: Callable[[float], str],
                 low: np.ndarray | None = None, high: np.ndarray | None = None) -> None:
    """Horizontal bars sorted by value (largest on top), each with its value printed at its end."""
    order = np.argsort(values, kind="stable")
    y = np.arange(len(order))
    values = np.asarray(values)[order]
    xerr = None
    if low is not None and high is not None:
        xerr = [np.maximum(values - np.asarray(low)[order], 0), np.maximum(np.asarray(high)[order] - values, 0)]
    ax.barh(y, values, color=[colours[i] for i in order], xerr=xerr, capsize=2, ecolor="#333333")
    ax.set_yticks(y, [labels[i] for i in order])
    ends_low = values if xerr is None else values - xerr[0]
    ends_high = values if xerr is None else values + xerr[1]
    reach = max(float(np.nanmax(np.abs(np.concatenate([ends_low, ends_high])))) if len(values) else 1.0, 1e-12)
    for yi, value, lo, hi in zip(y, values, ends_low, ends_high):  # the value just past the bar or its whisker
        if value >= 0:
            ax.text(max(value, hi) + reach * 0.015, yi, fmt(value), va="center", ha="left", fontsize=7)
        else:
            ax.text(min(value, lo) - reach * 0.015, yi, fmt(value), va="center", ha="right", fontsize=7)
    ax.margins(x=0.2)


def _first_stage(frame: pd.DataFrame) -> pd.Series:
    """Rows of the first stage alone (not a reranker, not the oracle ordering)."""
    return ~frame["system"].isin(["rerank", "oracle"])


def _short_model(spec: str) -> str:
    """'cross-encoder/ms-marco-MiniLM-L-12-v2' -> 'ms-marco-MiniLM-L-12-v2' for a point label."""
    return str(spec).split("/")[-1]


def main_reranker_rows(tables: dict[str, pd.DataFrame], main: set[str] | None) -> dict[str, pd.DataFrame]:
    """The tables without comparison rerankers' rows (``main``: the rerankers under test), for the figures
    about variants of one reranker; first-stage and oracle rows stay."""
    if not main:
        return tables
    kept = {}
    for name, frame in tables.items():
        if "reranker" in frame.columns and "system" in frame.columns:
            frame = frame[(frame["system"] != "rerank") | frame["reranker"].isin(main)]
        elif "reranker" in frame.columns:
            frame = frame[frame["reranker"].isin(main) | frame["reranker"].isna()]
        kept[name] = frame
    return kept


def _headline_quality(summary: pd.DataFrame) -> pd.DataFrame:
    """nDCG@10 rows of each run at the level the run is judged: its macro-average when it has several
    datasets, its one dataset otherwise."""
    rows = summary[summary["measure"] == "nDCG@10"]
    keep = []
    for _, run in rows.groupby("run_id"):
        keep.append(run[run["dataset"] == MACRO] if (run["dataset"] == MACRO).any() else run)
    return pd.concat(keep) if keep else rows.iloc[0:0]


def _pooled_rates(throughput: pd.DataFrame, workload: str = "candidates") -> pd.DataFrame:
    """Pairs/s per (run, reranker, variant, device) over all its datasets: their timed pairs over their time,
    as the headline's macro-average row computes it (a mean of per-dataset rates would let a small, fast
    dataset count as much as a large, slow one, and the figure would disagree with the table); ``low`` and
    ``high`` are the slowest and fastest dataset."""
    rows = throughput[throughput["workload"] == workload]
    rows = rows.assign(_seconds=rows["n_pairs"] / rows["pairs_per_s"])
    out = rows.groupby(["run_id", "reranker", "variant", "device"], as_index=False).agg(
        _pairs=("n_pairs", "sum"), _seconds=("_seconds", "sum"), low=("pairs_per_s", "min"),
        high=("pairs_per_s", "max"))
    out["pairs_per_s"] = out["_pairs"] / out["_seconds"]
    return out.drop(columns=["_pairs", "_seconds"])


# --------------------------------------------------------------------------------------------- quality


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Points not beaten on both speed and quality by any other point, sorted by speed."""
    keep = []
    for i, p in points.iterrows():
        dominated = ((points["pairs_per_s"] >= p["pairs_per_s"]) & (points["quality"] >= p["quality"])
                     & ((points["pairs_per_s"] > p["pairs_per_s"]) | (points["quality"] > p["quality"]))).any()
        if not dominated:
            keep.append(i)
    return points.loc[keep].sort_values("pairs_per_s")


def quality_vs_speed(summary: pd.DataFrame, throughput: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "How much quality each variant gives up for its speed"
    quality = _headline_quality(summary)
    reranked = quality[quality["system"] == "rerank"]
    speed = _pooled_rates(throughput)
    if reranked.empty:
        reason = ("no reranked quality: the runs used random weights (shape twin), whose scores carry no relevance"
                  if not speed.empty else "no reranked quality and no candidates throughput in these tables")
        return not_drawn("quality_vs_speed", title, reason)
    points = reranked.merge(speed, on=["run_id", "reranker", "variant", "device"]).rename(columns={"mean": "quality"})
    if points.empty:
        return not_drawn("quality_vs_speed", title, "no variant has both quality and candidates throughput rows")
    several = points["run_id"].nunique() > 1
    fig, ax = _new(9.0, 4.8, left=0.08)
    fig.subplots_adjust(right=0.72)
    for _, p in points.iterrows():
        colour, marker = variant_style(p["variant"])
        ax.errorbar(p["pairs_per_s"], p["quality"], yerr=[[p["quality"] - p["ci_low"]], [p["ci_high"] - p["quality"]]],
                    fmt=marker, color=colour, ms=7, capsize=2, elinewidth=0.8)
    base = quality[_first_stage(quality) & quality["run_id"].isin(points["run_id"])]
    for _, b in base.iterrows():
        ax.axhspan(b["ci_low"], b["ci_high"], color="#bbbbbb", alpha=0.35, lw=0)
        ax.axhline(b["mean"], color=FIRST_STAGE_COLOUR, ls="--", lw=1)
        ax.annotate(f"first stage alone ({b['first_stage']}): {b['mean']:.3f}", (0.01, b["mean"]),
                    xycoords=("axes fraction", "data"), fontsize=7, xytext=(0, 3), textcoords="offset points")
    ceiling = quality[(quality["system"] == "oracle") & quality["run_id"].isin(points["run_id"])]
    for _, c in ceiling.iterrows():
        ax.axhline(c["mean"], color="#2a9d8f", ls=":", lw=1.2)
        ax.annotate(f"ceiling: the judgments' own order of the top {c['rerank_depth']:.0f}: {c['mean']:.3f}",
                    (0.01, c["mean"]), xycoords=("axes fraction", "data"), fontsize=7, xytext=(0, -9),
                    textcoords="offset points", color="#2a9d8f")
    front = pareto_front(points)
    if len(front) > 1:
        ax.plot(front["pairs_per_s"], front["quality"], color="#222222", lw=1, zorder=0,
                label="Pareto front: no other variant\nis both faster and better")
    else:
        only = front.iloc[0]
        ax.scatter(only["pairs_per_s"], only["quality"], s=220, facecolors="none", edgecolors="#222222",
                   label=f"Pareto front: {only['variant']} · {only['device']}\nalone (fastest and best)")
    ax.set_xscale("log")
    low, high = points["pairs_per_s"].min(), points["pairs_per_s"].max()
    _plain_log_axis(ax.xaxis, low, high)
    ax.set_xlim(low / 1.25, high * 1.6)  # room for the labels right of the points
    main = points["reranker"].mode().iloc[0] if points["reranker"].nunique() > 1 else None
    _place_labels(ax, points["pairs_per_s"].tolist(), points["quality"].tolist(),
                  [(_short_model(p["reranker"]) + " · " if main and p["reranker"] != main else "") + _label(p, several)
                   for _, p in points.iterrows()])
    ax.set_xlabel("pairs/s, end to end on the run's candidates (log scale; all datasets' pairs over their time)")
    level = "macro-average over datasets" if (quality["dataset"] == MACRO).any() else quality["dataset"].iloc[0]
    ax.set_ylabel(f"nDCG@10 ({level}), 95% CI")
    ax.grid(True, axis="both")
    handles, labels = ax.get_legend_handles_labels()
    backends = sorted({VARIANTS[v].backend for v in points["variant"] if v in VARIANTS})
    handles += [Line2D([], [], color=BACKEND_COLOURS[b], marker="s", ls="", label=BACKEND_NAMES[b]) for b in backends]
    precisions = sorted({VARIANTS[v].precision for v in points["variant"] if v in VARIANTS})
    handles += [Line2D([], [], color="#777777", marker=PRECISION_MARKERS.get(p, OTHER_MARKER), ls="", label=p)
                for p in precisions]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7)
    caption = ("Quality against speed per variant and device: nDCG@10 with its 95% bootstrap CI against end-to-end "
               "pairs/s; colour = backend, marker = precision; dashed line = the first stage alone (grey band = its "
               "CI); dotted line = the ceiling (the candidates in the order of their relevance judgments). The black "
               "line joins the variants no other beats on both axes; comparison rerankers are named on their point.")
    return _save(fig, folder, Figure("quality_vs_speed", title, caption), footer)


def _reference_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """nDCG@10 rerank rows of one variant per run: torch-fp32 where it ran, else the first variant listed."""
    rows = summary[(summary["measure"] == "nDCG@10") & (summary["system"] == "rerank")]
    picked = []
    for _, run in rows.groupby("run_id"):
        variant = REFERENCE_VARIANT if (run["variant"] == REFERENCE_VARIANT).any() else sorted(run["variant"])[0]
        chosen = run[run["variant"] == variant]
        picked.append(chosen[chosen["device"] == sorted(chosen["device"])[0]])
    return pd.concat(picked) if picked else rows.iloc[0:0]


def lift_by_dataset(summary: pd.DataFrame, folder: Path, footer: str,
                    claimed: tuple[float, float] | None = None) -> Figure:
    title = "nDCG@10 lift over the first stage, by dataset"
    rows = _reference_rows(summary)
    if rows.empty:
        return not_drawn("lift_by_dataset", title, "no reranked quality (random weights, or no rerank executions)")
    several = rows["run_id"].nunique() > 1
    labels = [f"{r['dataset']}" + (f" · {r['run_id']}" if several else "") for _, r in rows.iterrows()]
    colours = ["#222222" if r["dataset"] == MACRO else variant_style(r["variant"])[0] for _, r in rows.iterrows()]
    fig, ax = _new(7.5, max(3.0, 0.32 * len(rows) + 1.6))
    _sorted_bars(ax, labels, rows["lift_rel"].to_numpy() * 100, colours, lambda v: f"{v:+.1f}%",
                 rows["lift_rel_ci_low"].to_numpy() * 100, rows["lift_rel_ci_high"].to_numpy() * 100)
    ax.axvline(0, color="#444444", lw=0.8)
    if claimed:
        ax.axvspan(*claimed, color="#f0b400", alpha=0.25, lw=0, label=f"claimed {claimed[0]:g}-{claimed[1]:g}%")
        left, right = ax.get_xlim()
        span = max(right, claimed[1]) - min(left, claimed[0])
        ax.set_xlim(min(left, claimed[0] - 0.05 * span), max(right, claimed[1] + 0.05 * span))
        ax.legend(loc="best", fontsize=7)
    variant = ", ".join(sorted({f"{r['variant']} · {r['device']}" for _, r in rows.iterrows()}))
    ax.set_xlabel(f"relative nDCG@10 lift over the first stage, % (95% CI; {variant})")
    caption = ("Relative nDCG@10 lift of the reranker over the first stage on the same queries, per dataset and "
               "on the macro-average (black), with paired bootstrap 95% CIs; the shaded band is the range the page "
               "claims.")
    return _save(fig, folder, Figure("lift_by_dataset", title, caption), footer)


def lift_by_language(quality: pd.DataFrame, folder: Path, footer: str, samples: int = 2000, seed: int = 0) -> Figure:
    title = "nDCG@10 lift over the first stage, by query language"
    lifts = per_query_lift(quality)
    if lifts.empty or "language" not in lifts:
        return not_drawn("lift_by_language", title, "no reranked quality (random weights, or no rerank executions)")
    reference = REFERENCE_VARIANT if (lifts["variant"] == REFERENCE_VARIANT).any() else sorted(lifts["variant"])[0]
    lifts = lifts[lifts["variant"] == reference]
    lifts = lifts[lifts["device"] == sorted(lifts["device"])[0]]
    groups = sorted(lifts.groupby("language"), key=lambda item: item[0])
    if len(groups) < 2:
        return not_drawn("lift_by_language", title, f"every evaluated query is in one language ({groups[0][0]})")
    intervals = [bootstrap_mean(g["lift"].to_numpy(), samples, seed) for _, g in groups]
    labels = [f"{language} ({len(g)} queries)" for language, g in groups]
    fig, ax = _new(7.5, max(3.0, 0.32 * len(groups) + 1.6))
    _sorted_bars(ax, labels, np.array([i.estimate for i in intervals]), [variant_style(reference)[0]] * len(groups),
                 lambda v: f"{v:+.3f}", np.array([i.low for i in intervals]), np.array([i.high for i in intervals]))
    ax.axvline(0, color="#444444", lw=0.8)
    ax.set_xlabel(f"mean per-query nDCG@10 lift (reranked − first stage), 95% CI; {reference}")
    caption = ("Mean per-query nDCG@10 lift by the language of the query (ISO 639-1; und = not recorded), pooled "
               "over the run's datasets, with bootstrap 95% CIs.")
    return _save(fig, folder, Figure("lift_by_language", title, caption), footer)


def _first_stage_means(summary: pd.DataFrame) -> pd.DataFrame:
    """The first stage's nDCG@10 per run and dataset: each reranked row is compared with its own run's."""
    rows = summary[(summary["measure"] == "nDCG@10") & _first_stage(summary)].reindex(
        columns=["run_id", "dataset", "mean", "ci_low", "ci_high", "n_queries"])  # n: absent in hand-made summaries
    return rows.rename(
        columns={"mean": "base", "ci_low": "base_low", "ci_high": "base_high", "n_queries": "base_n"})


def ndcg_by_variant(summary: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "nDCG@10 after reranking, by variant"
    rows = _headline_quality(summary)
    reranked = rows[rows["system"] == "rerank"].merge(_first_stage_means(summary), on=["run_id", "dataset"], how="inner")
    if reranked.empty:
        return not_drawn("ndcg_by_variant", title, "no reranked quality (random weights, or no rerank executions)")
    reranked = reranked.sort_values("mean").reset_index(drop=True)
    several = reranked["run_id"].nunique() > 1
    # A time budget gives executions nested samples of different sizes: then no two lines share their queries
    # with the first stage, and the labels carry each line's n.
    counts = reranked.reindex(columns=["n_queries", "base_n"]).astype(float)
    sampled = bool((counts.notna().all(axis=1) & (counts["n_queries"] != counts["base_n"])).any())
    fig, ax = _new(7.5, max(3.0, 0.32 * len(reranked) + 1.6))
    y = np.arange(len(reranked))
    for i, row in reranked.iterrows():  # the first stage of the same run and dataset, on the same line
        ax.plot([row["base_low"], row["base_high"]], [i, i], color="#bbbbbb", lw=6, alpha=0.6, solid_capstyle="butt")
        ax.plot([row["base"]], [i], marker="|", ms=14, mew=2, color=FIRST_STAGE_COLOUR,
                label="first stage alone (95% CI)" if i == 0 else None)
        colour, marker = variant_style(row["variant"])
        ax.errorbar(row["mean"], i, xerr=[[row["mean"] - row["ci_low"]], [row["ci_high"] - row["mean"]]], fmt=marker,
                    color=colour, capsize=3)
        ax.annotate(f"{row['mean']:.3f}", (row["ci_high"], i), xytext=(4, -3), textcoords="offset points", fontsize=7)
    ax.set_yticks(y, [_label(r, several) + (f" · n={r['n_queries']:.0f}" if sampled else "")
                      for _, r in reranked.iterrows()])
    level = "macro-average over datasets" if (reranked["dataset"] == MACRO).any() else reranked["dataset"].iloc[0]
    ax.set_xlabel(f"nDCG@10 ({level}; mean over queries, 95% bootstrap CI)")
    ax.legend(loc="lower right")
    caption = ("nDCG@10 after reranking per variant and device (marker, 95% CI), next to the first stage alone on "
               "the same queries of the same run (dark tick, grey band = 95% CI), sorted by quality.")
    if sampled:
        caption = ("nDCG@10 after reranking per variant and device (marker, 95% CI; n = queries it evaluated), next to "
                   "the first stage alone on its own, larger sample (dark tick, grey band = 95% CI), sorted by quality. "
                   "A time budget gave variants nested samples of different sizes: lines are not on the same queries, "
                   "so compare variants by the paired differences on their common queries (tables/comparisons), "
                   "not by these means.")
    return _save(fig, folder, Figure("ndcg_by_variant", title, caption), footer)


def per_query_lift(quality: pd.DataFrame, measure: str = "nDCG@10") -> pd.DataFrame:
    """Reranked rows with ``lift`` = value minus the first stage's value for the same query *of the same run
    and dataset* (query ids repeat across pooled runs; aligning on the id alone would mix runs)."""
    rows = quality[quality["measure"] == measure]
    keys = ["run_id", "dataset", "query_id"]
    base = rows[_first_stage(rows)][keys + ["value"]].rename(columns={"value": "base"})
    reranked = rows[rows["system"] == "rerank"].merge(base, on=keys, how="inner", validate="many_to_one")
    return reranked.assign(lift=reranked["value"] - reranked["base"])


def lift_distribution(quality: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "Per-query nDCG@10 lift, by variant"
    reranked = per_query_lift(quality)
    if reranked.empty:
        return not_drawn("lift_distribution", title, "no reranked quality (random weights, or no rerank executions)")
    groups = sorted(reranked.groupby(["variant", "device"]), key=lambda item: item[1]["lift"].median())
    fig, ax = _new(7.5, max(3.0, 0.32 * len(groups) + 1.6))
    boxes = ax.boxplot([g["lift"].to_numpy() for _, g in groups], vert=False, showmeans=True, patch_artist=True,
                       tick_labels=[f"{v} · {d}" for (v, d), _ in groups])
    for patch, ((variant, _), _) in zip(boxes["boxes"], groups):
        patch.set_facecolor(variant_style(variant)[0])
        patch.set_alpha(0.45)
    ax.axvline(0, color="#444444", lw=0.8)
    ax.set_xlabel("per-query nDCG@10 lift over the first stage (reranked − first stage), all datasets")
    caption = ("Distribution of the per-query nDCG@10 lift, each query against the first stage of its own run and "
               "dataset, sorted by median; box = quartiles, triangle = mean, points = outlying queries.")
    return _save(fig, folder, Figure("lift_distribution", title, caption), footer)


def depth_curve(depth: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "How many candidates are worth reranking"
    if depth.empty:
        return not_drawn("depth_curve", title, "no depth curve: random weights, or no rerank executions")
    reference = REFERENCE_VARIANT if (depth["variant"] == REFERENCE_VARIANT).any() else sorted(depth["variant"])[0]
    rows = depth[depth["variant"] == reference]
    rows = rows[rows["device"] == sorted(rows["device"])[0]]
    if rows["depth"].nunique() < 2:
        return not_drawn("depth_curve", title, f"only one reranked depth ({rows['depth'].iloc[0]}) in this run")
    fig, ax = _new(7.5, 4.4, left=0.1, right=0.88)
    cost = ax.twinx()
    colour = variant_style(reference)[0]
    for dataset, curve in sorted(rows.groupby("dataset"), key=lambda item: item[0] != MACRO):
        curve = curve.sort_values("depth")
        macro = dataset == MACRO or rows["dataset"].nunique() == 1
        ax.plot(curve["depth"], curve["lift_abs"], marker="o", color=colour if macro else "#9db4d6",
                lw=2 if macro else 0.8, label=f"lift, {dataset}" if macro else None, zorder=3 if macro else 2)
        if macro:
            ax.fill_between(curve["depth"], curve["lift_ci_low"], curve["lift_ci_high"], color=colour, alpha=0.15, lw=0)
            if curve["ms_per_query"].notna().all():
                cost.plot(curve["depth"], curve["ms_per_query"], color="#c44e52", ls="--", marker="s", ms=4,
                          label="predicted ms per query")
    ax.axhline(0, color="#444444", lw=0.8)
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xlabel("candidates reranked per query (k; the rest keep their first-stage order)")
    ax.set_ylabel(f"nDCG@10 lift over the first stage ({reference})")
    cost.set_ylabel("predicted reranking time per query, ms", color="#c44e52")
    cost.spines["right"].set_visible(True)
    cost.grid(False)
    lines = ax.get_legend_handles_labels()[0] + cost.get_legend_handles_labels()[0]
    ax.legend(handles=lines + ([Line2D([], [], color="#9db4d6", lw=0.8, label="each dataset")]
                               if rows["dataset"].nunique() > 1 else []), loc="lower right", fontsize=7)
    caption = ("Absolute nDCG@10 lift when only the top k first-stage candidates are reranked (from one scoring "
               "pass; 95% CI band on the macro-average or the one dataset), and the time per query predicted from the "
               "measured end-to-end rate (dashed, right axis).")
    return _save(fig, folder, Figure("depth_curve", title, caption), footer)


# ----------------------------------------------------------------------------------------- throughput


def throughput_by_variant(throughput: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "Reranking throughput, by variant"
    rows = _pooled_rates(throughput)
    if rows.empty:
        return not_drawn("throughput_by_variant", title, "no candidates throughput rows (throughput disabled?)")
    several = rows["run_id"].nunique() > 1
    fig, ax = _new(7.5, max(3.0, 0.32 * len(rows) + 1.6))
    # A served variant's bar is labelled: its sample is whole queries, not the in-process bars' pairs.
    _sorted_bars(ax, [_label(r, several) + ("\n(whole queries)" if is_served(r["variant"]) else "")
                      for _, r in rows.iterrows()], rows["pairs_per_s"].to_numpy(),
                 [variant_style(v)[0] for v in rows["variant"]], sig)
    _backend_legend(ax, rows["variant"])
    batch = ", ".join(str(b) for b in sorted(throughput[throughput["workload"] == "candidates"]["batch_size"].unique()))
    ax.set_xlabel(f"pairs/s end to end on the run's candidates\n(median of rounds; all datasets' pairs over their time; "
                  f"batch {batch})")
    caption = ("End-to-end reranking throughput per variant and device (tokenization and length-sorted batching "
               "included), sorted by speed; colour = backend." + (
                   " Served variants are timed on whole queries, one request each, in-process ones on pairs sampled "
                   "across queries: compare them on the same queries in the report's \"Served under load\"."
                   if any(is_served(v) for v in rows["variant"].unique()) else ""))
    return _save(fig, folder, Figure("throughput_by_variant", title, caption), footer)


def latency_by_variant(throughput: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "Latency of one query's reranking, by variant"
    rows = throughput[throughput["workload"] == "query"]
    if rows.empty:
        return not_drawn("latency_by_variant", title, "no query-workload rows (the query workload was not run)")
    rows = rows.assign(latency_p99_ms=timing.shown_tail(rows, 99))
    rows = rows.groupby(["run_id", "variant", "device"], as_index=False).agg(
        p50=("latency_p50_ms", "median"), p99=("latency_p99_ms", "median"), k=("pairs_per_query", "mean"))
    several = rows["run_id"].nunique() > 1
    fig, ax = _new(7.5, max(3.0, 0.32 * len(rows) + 1.6))
    _sorted_bars(ax, [_label(r, several) for _, r in rows.iterrows()], rows["p50"].to_numpy(),
                 [variant_style(v)[0] for v in rows["variant"]], duration_ms,
                 rows["p50"].to_numpy(), rows["p99"].fillna(rows["p50"]).to_numpy())  # no whisker: n too small
    _backend_legend(ax, rows["variant"])
    ax.set_xlabel(f"ms per query, {rows['k'].mean():.0f} candidates each (bar = p50, whisker = p99)")
    caption = ("The latency a search box feels: one request scores one query's candidates, tokenization included; "
               "median over queries (bar) and 99th percentile (whisker; none where fewer than "
               f"{timing.min_samples(99)} requests were timed, too few for a 99th percentile).")
    return _save(fig, folder, Figure("latency_by_variant", title, caption), footer)


def throughput_by_length(throughput: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "Model-only throughput against pair length"
    rows = throughput[throughput["workload"] == "fixed"]
    if rows.empty or rows["max_length"].nunique() < 2:
        return not_drawn("throughput_by_length", title, "the fixed workload ran at fewer than two lengths")
    fig, ax = _new(7.5, 4.4, left=0.1, right=0.88)
    share = ax.twinx()
    for (variant, device, batch), curve in rows.groupby(["variant", "device", "batch_size"]):
        curve = curve.sort_values("max_length")
        colour, marker = variant_style(variant)
        ax.plot(curve["max_length"], curve["pairs_per_s"], marker=marker, color=colour,
                label=f"{variant} · {device} · batch {batch}")
    attention = rows.groupby("max_length")["attention_flops_share"].first().sort_index() if (
        "attention_flops_share" in rows) else pd.Series(dtype=float)
    if not attention.empty:
        share.bar(attention.index, attention.to_numpy() * 100, width=attention.index.to_numpy() * 0.25,
                  color="#999999", alpha=0.25, label="attention share of FLOPs (T² term)")
        for length, value in attention.items():
            share.annotate(f"{value * 100:.0f}%", (length, value * 100), fontsize=6.5, ha="center", xytext=(0, 2),
                           textcoords="offset points", color="#555555")
        share.set_ylim(0, 100)
        share.set_ylabel("attention share of the FLOPs, %", color="#555555")
        share.spines["right"].set_visible(True)
        share.grid(False)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis, float(rows["pairs_per_s"].min()), float(rows["pairs_per_s"].max()))
    ax.set_zorder(share.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlabel("tokens per pair (model only, fixed shape)")
    ax.set_ylabel("pairs/s (log scale)")
    lines = ax.get_legend_handles_labels()[0] + share.get_legend_handles_labels()[0]
    ax.legend(handles=lines, loc="lower left", fontsize=7)
    caption = ("Model-only pairs/s at each pair length (log-log), and the share of each pair's FLOPs spent in "
               "attention's T² term (grey bars, right axis): where the curve steepens, attention dominates.")
    return _save(fig, folder, Figure("throughput_by_length", title, caption), footer)


def peak_memory(throughput: pd.DataFrame, memory_line_mb: float | None, folder: Path, footer: str) -> Figure:
    title = "Peak memory while reranking, by variant"
    rows = throughput[throughput["workload"] == "candidates"]
    if rows.empty:
        return not_drawn("peak_memory", title, "no candidates throughput rows (throughput disabled?)")
    values = rows["peak_vram_mb"].where(rows["device"].str.startswith("cuda"), rows["peak_rss_mb"]).astype(float)
    share = rows["model_memory_mb"] if "model_memory_mb" in rows else pd.Series(np.nan, index=rows.index)
    rows = rows.assign(memory=values, share=share.astype(float)).groupby(
        ["run_id", "variant", "device", "batch_size"], as_index=False).agg(
        memory=("memory", "max"), share=("share", "max"), estimate=("estimate_mb", "max"))
    several = rows["run_id"].nunique() > 1
    fig, ax = _new(7.5, max(3.0, 0.32 * len(rows) + 1.6))
    labels = [f"{_label(r, several)} · batch {r['batch_size']}" for _, r in rows.iterrows()]
    _sorted_bars(ax, labels, rows["memory"].fillna(0).to_numpy(), [variant_style(v)[0] for v in rows["variant"]],
                 lambda v: size(v * 2**20))  # decimal units, as the headline and model pages print them
    order = np.argsort(rows["memory"].fillna(0).to_numpy(), kind="stable")
    if rows["share"].notna().any():  # the model's share of the peak, drawn inside its bar
        ax.barh(np.arange(len(order)), rows["share"].to_numpy()[order], height=0.35, color="#777777", alpha=0.8,
                label="model's share: peak minus memory before loading")
    ax.scatter(rows["estimate"].to_numpy()[order], np.arange(len(order)), marker="|", s=200, color="#111111",
               label="estimate: weights + one batch's activations")
    if memory_line_mb:
        ax.axvline(memory_line_mb, color="#c44e52", ls="--", label=f"device memory {memory_line_mb / 1024:.0f} GiB")
    ax.set_xlabel("peak memory, MiB (labels in decimal MB/GB)\nCPU: resident set during the job; CUDA: the process's "
                  "GPU memory (NVML)")
    ax.legend(loc="lower right", fontsize=7)
    caption = ("Peak memory per variant while reranking the run's candidates (bars, sorted: the whole process), the "
               "model's share of it (grey inner bars: the peak minus what the process held before loading the model), "
               "the weights + activations estimate to compare with that share (ticks) and the device's memory.")
    return _save(fig, folder, Figure("peak_memory", title, caption), footer)


def mfu_by_variant(throughput: pd.DataFrame, folder: Path, footer: str) -> Figure:
    title = "Model FLOP utilisation, by variant"
    rows = throughput[throughput["workload"] == "fixed"]
    if rows.empty or rows["mfu"].isna().all():
        return not_drawn("mfu_by_variant", title, "no fixed-shape rows with a known peak")
    several = rows["run_id"].nunique() > 1
    fig, ax = _new(7.5, max(3.0, 0.32 * len(rows) + 1.6))
    labels = [f"{_label(r, several)} · b{r['batch_size']}×{r['max_length']}" for _, r in rows.iterrows()]
    _sorted_bars(ax, labels, rows["mfu"].fillna(0).to_numpy() * 100, [variant_style(v)[0] for v in rows["variant"]],
                 lambda v: f"{v:.2g}%")
    _backend_legend(ax, rows["variant"])
    ax.set_xlabel("model FLOP utilisation, % of the hardware's theoretical peak for the precision")
    caption = ("Model-only MFU on fixed shapes: achieved FLOP/s (from config and tokens) over the hardware's theoretical "
               "peak for the precision's fastest path (tables/throughput peak_source says how it was computed).")
    return _save(fig, folder, Figure("mfu_by_variant", title, caption), footer)


def load_curve(load: pd.DataFrame, throughput: pd.DataFrame, folder: Path, footer: str) -> Figure:
    """Served variants under load: pairs/s against latency per request, a line per variant, device and dataset
    through the closed-loop points (labelled by concurrency), open-loop points hollow, and the in-process variant of
    the same file as the reference point (its per-query workload: one request at a time, in the measuring process).
    The latency is the highest percentile every point measured from enough requests (p99: 500, p90: 50), else
    the median: a "p99" of eight requests would be their largest one."""
    title = "Served rerankers under load: throughput against latency"
    rows = load[load["errors"] < load["requests"]] if not load.empty else load
    if rows.empty:
        return not_drawn("load_curve", title, "no served variant was measured under load (tables/load is empty)")
    reference = throughput[throughput["workload"] == "query"] if not throughput.empty else throughput
    references = []
    for (run_id, variant, device, dataset), _ in rows.groupby(["run_id", "variant", "device", "dataset"], sort=True):
        twin = VARIANTS[variant].same_file_as if variant in VARIANTS else None
        same = reference[(reference["run_id"] == run_id) & (reference["variant"] == twin)
                         & (reference["device"] == device) & (reference["dataset"] == dataset)] if twin else reference.iloc[0:0]
        references.append(same)
    measured = pd.concat([r for r in references if not r.empty]) if any(not r.empty for r in references) else None
    percentile = next((p for p in (99, 90) if rows[f"latency_p{p}_ms"].notna().all()
                       and (measured is None or timing.shown_tail(measured, p).notna().all())), 50)
    column = f"latency_p{percentile}_ms"
    several = rows["dataset"].nunique() > 1
    several_runs = rows["run_id"].nunique() > 1
    fig, ax = _new(9.5, 4.6, left=0.1, right=0.62)  # the legend beside the axes: points fill the whole plot
    styles = ["-", "--", ":", "-."]
    for number, ((run_id, variant, device, dataset), group) in enumerate(
            rows.groupby(["run_id", "variant", "device", "dataset"], sort=True)):
        colour, marker = variant_style(variant)
        style = styles[sorted(rows["dataset"].unique()).index(dataset) % len(styles)]
        where = (f" · {dataset}" if several else "") + (f" · {run_id}" if several_runs else "")
        closed = group[group["mode"] == "closed"].sort_values("concurrency")
        ax.plot(closed["pairs_per_s"], closed[column], color=colour, marker=marker, lw=1.2, ls=style,
                label=f"{variant} · {device}{where}")
        _place_labels(ax, closed["pairs_per_s"].to_numpy(), closed[column].to_numpy(),
                      [f"c={int(c)}" for c in closed["concurrency"]], fontsize=6)
        opened = group[group["mode"] == "open"]
        ax.scatter(opened["pairs_per_s"], opened[column], facecolors="none", edgecolors=colour, marker=marker, s=30)
        same = references[number]
        if not same.empty:
            twin = same["variant"].iloc[0]
            ref_colour, ref_marker = variant_style(twin)
            latency = (same["latency_p50_ms"] if percentile == 50 else timing.shown_tail(same, percentile)).median()
            ax.scatter([same["pairs_per_s"].median()], [latency], color=ref_colour, marker=ref_marker, s=45, zorder=3,
                       label=f"{twin} · {device}{where}, in process")
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis, rows[column].min(), rows[column].max())
    ax.set_xlabel("pairs/s achieved (one request = one query with its candidates)")
    ax.set_ylabel(f"p{percentile} latency per request, ms")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    target = rows["latency_target_ms"].iloc[0]
    if target <= 3 * rows[column].max():  # far above every point it would only squash them
        ax.axhline(target, color="#999999", lw=0.8, ls="--")
    shown = ("the median" if percentile == 50 else f"p{percentile}") + (
        f" (a tail percentile needs {timing.min_samples(90)} requests a point for p90, {timing.min_samples(99)} for "
        "p99; these points had fewer)" if percentile == 50 else "")
    caption = ("Each served variant's server (llama-server, infinity) on this machine, client and server sharing its "
               "cores. Line: "
               "closed loop, c = requests kept in flight; hollow: open loop, Poisson arrivals at fractions of the best "
               "closed-loop rate, latency from each scheduled arrival (a queue shows as latency, not as fewer "
               f"requests). Latency: {shown}. Dashed (where in range): the goodput target ({duration_ms(target)}). "
               "Filled point (in process): the in-process variant of the same file (GGUF file or checkpoint), one "
               "query at a time "
               "(tables/throughput, query workload).")
    return _save(fig, folder, Figure("load_curve", title, caption), footer)


def all_figures(tables: dict[str, pd.DataFrame], folder: Path, footer: str, memory_line_mb: float | None,
                claimed_lift: tuple[float, float] | None = None, main: set[str] | None = None) -> list[Figure]:
    """Every figure, drawn or with the reason it could not be, in the order the report shows them. ``main``
    names the rerankers under test: comparison rerankers appear in quality_vs_speed only."""
    plt.style.use(str(STYLE))
    plt.rcParams["svg.hashsalt"] = "runlocalai-bench"
    everything = tables
    tables = main_reranker_rows(tables, main)
    summary, throughput, quality = tables["summary"], tables["throughput"], tables["quality"]
    return [
        quality_vs_speed(everything["summary"], everything["throughput"], folder, footer),
        lift_by_dataset(summary, folder, footer, claimed_lift),
        depth_curve(tables["depth"], folder, footer),
        ndcg_by_variant(summary, folder, footer),
        lift_by_language(quality, folder, footer),
        lift_distribution(quality, folder, footer),
        throughput_by_variant(throughput, folder, footer),
        latency_by_variant(throughput, folder, footer),
        load_curve(tables["load"], throughput, folder, footer),
        throughput_by_length(throughput, folder, footer),
        peak_memory(throughput, memory_line_mb, folder, footer),
        mfu_by_variant(throughput, folder, footer),
    ]
