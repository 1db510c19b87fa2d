"""Tidy result tables: every table's name and leading columns, defined here once, and reading/writing them.

The leading columns are a contract (outside checks and pooled bundles rely on their names and order); a table
may carry more columns after them. Each notebook execution writes *parts*
(``tables/parts/<table>--<part>.parquet``); the runner pools them into ``tables/<table>.parquet`` + ``.csv``
when the run ends, so a kernel never rewrites another's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

# 2: headline, comparisons, model and verdicts tables; oracle rows in quality and summary; reranker in runs.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]  # the contract: these first, in this order
    description: str
    # False for a table added within the schema version (read as empty where a bundle lacks it): bundles written
    # before it existed stay valid, as every reader gets its columns from read_table.
    always_written_since_v2: bool = True


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("quality", ("run_id", "dataset", "split", "system", "first_stage", "reranker", "variant", "device",
                      "query_id", "measure", "value"),
          "one row per query and measure, for the first stage and every reranked variant"),
    Table("summary", ("run_id", "dataset", "system", "reranker", "variant", "device", "measure", "n_queries", "mean",
                      "ci_low", "ci_high", "lift_abs", "lift_rel", "lift_ci_low", "lift_ci_high", "lift_rel_ci_low",
                      "lift_rel_ci_high", "p_value", "wins", "ties", "losses", "first_stage", "first_stage_depth",
                      "rerank_depth"),
          "per dataset (and macro-average over the run's datasets), system, variant, device and measure: mean with "
          "a 95% bootstrap CI and the paired lift over the first stage on the same queries; which first stage, "
          "how deep it retrieved and how many candidates were reranked"),
    Table("throughput", ("run_id", "reranker", "variant", "device", "weights", "workload", "batch_size", "max_length",
                         "mean_tokens", "n_pairs", "pairs_per_s", "pairs_per_s_iqr", "latency_p50_ms", "latency_p90_ms",
                         "latency_p99_ms", "load_s", "model_bytes", "peak_rss_mb", "peak_vram_mb", "flops_per_pair",
                         "achieved_tflops", "peak_tflops", "mfu", "dataset"),
          "pairs/s, latency, memory and roofline per variant, device, workload (candidates and query per dataset, "
          "fixed shapes once: dataset empty); memory: the job's peak; bundles from 2026-12 on add the model's "
          "share (model_memory_mb: the peak minus what the process held before the model was loaded), the "
          "memory before and after loading and the runtime's own account (runtime_memory_mb)"),
    Table("load", ("run_id", "reranker", "variant", "device", "dataset", "mode", "concurrency", "offered_rate",
                   "requests", "errors", "error_rate", "seconds", "requests_per_s", "pairs_per_s", "latency_p50_ms",
                   "latency_p90_ms", "latency_p99_ms", "goodput_per_s", "latency_target_ms", "mean_pairs",
                   "peak_rss_mb", "client_cpu", "slots", "threads"),
          "served variants under load, one row per point: closed loop at a concurrency (requests in flight) or "
          "open loop at an offered Poisson rate (requests/s); one request = one query with its candidates; "
          "latency from the scheduled arrival in the open loop (p90 and p99 only from 50 and 500 answered "
          "requests, as in tables/throughput); goodput = requests/s answered within "
          "latency_target_ms; peak_rss_mb = the server process's peak during the point (on CUDA its GPU memory's "
          "peak follows the contract's columns: peak_vram_mb); client_cpu = the client's "
          "CPU seconds per second (client and server share the machine)", always_written_since_v2=False),
    Table("hosted", ("run_id", "dataset", "reranker", "provider", "model", "query_id", "documents", "status",
                     "requests", "sent", "attempts", "units", "unit", "cost_usd", "latency_s", "served_utc", "error"),
          "hosted comparison rerankers (api:<provider>/<model>), one row per query: whether its candidates were "
          "scored (ok) or not (failed, with the error), the requests they took (sent now; the rest came from the "
          "response cache), the units the responses billed and their cost at params/references/prices.yaml's "
          "price, the seconds its requests took now (network included: not comparable with a local pairs/s) and "
          "when the answer was served", always_written_since_v2=False),
    Table("drift", ("run_id", "dataset", "reranker", "variant", "device", "reference", "n_queries", "n_pairs",
                    "max_abs_diff", "mean_abs_diff", "top10_overlap", "kendall_tau"),
          "each variant's scores against torch-fp32 on the same pairs"),
    Table("runs", ("run_id", "stage", "variant", "device", "status", "reason", "seconds", "notebook"),
          "every notebook execution of the run: ok, skipped or failed, with the reason"),
    Table("depth_quality", ("run_id", "dataset", "reranker", "variant", "device", "depth", "query_id", "measure",
                            "value", "pairs"),
          "per query and reranked depth k (0 = the first stage alone): nDCG@10 when only the top k are reranked"),
    Table("depth", ("run_id", "dataset", "reranker", "variant", "device", "depth", "measure", "n_queries", "mean",
                    "ci_low", "ci_high", "lift_abs", "lift_ci_low", "lift_ci_high", "pairs_per_query", "ms_per_query"),
          "the rerank-depth curve: quality, paired lift over the first stage and cost per query at each depth"),
    Table("comparisons", ("run_id", "dataset", "kind", "reranker", "variant", "device", "baseline",
                          "baseline_variant", "measure", "n_queries", "mean", "baseline_mean", "diff", "diff_ci_low",
                          "diff_ci_high", "p_value", "wins", "ties", "losses"),
          "paired differences on the same queries and candidates (system minus baseline): the main reranker "
          "against each comparison reranker (kind baseline) and against the oracle ordering (ceiling), and each "
          "variant against torch-fp32 (quantization; file_ratio = its file over fp32's); per dataset and "
          "macro-average"),
    Table("model", ("run_id", "reranker", "variant", "device", "weights", "architecture", "model_type",
                    "encoder_shape", "layers", "hidden", "heads", "intermediate", "vocab", "max_positions",
                    "context_tokens", "params_total", "params_embedding", "params_non_embedding", "file_bytes",
                    "source"),
          "what each reranker checkpoint is (config.json and the weight files' tensor shapes; a shape twin has "
          "the real model's) and the file each variant ran from; bundles since the LLM rerankers add how it scores "
          "(family: cross-encoder, or the LLM rule of rerankers/families.py) and its licence (the model card's)"),
    Table("verdicts", ("claim", "group", "text", "verdict", "measured", "hardware", "evidence", "anchor",
                       "would_change", "note", "where"),
          "each published claim judged against the tables above: the verdict, what was measured where, the table "
          "row behind it (anchor: <table>-<row>) and what would change it"),
    Table("reproduction", ("run_id", "dataset", "system", "first_stage", "reranker", "variant", "device", "compared",
                           "n_queries", "measured", "measured_ci_low", "measured_ci_high", "published", "diff",
                           "diff_ci_low", "diff_ci_high", "tolerance", "verdict", "differences", "reference",
                           "source"),
          "each first-stage and reranked row with a published counterpart (params/references/): measured with its "
          "95% CI, published, the difference and its CI, the verdict (reproduces / differs / consistent on a "
          "sample) and the protocol differences between the run and the reference"),
    Table("headline", ("run_id", "dataset", "level", "system", "comparison", "reranker", "variant", "device",
                       "hardware", "status",
                       "weights", "ndcg10", "ndcg10_ci_low", "ndcg10_ci_high", "lift_abs", "lift_abs_ci_low",
                       "lift_abs_ci_high", "lift_rel", "lift_rel_ci_low", "lift_rel_ci_high", "p_value", "kendall_tau",
                       "top10_overlap", "pairs_per_s", "latency_p50_ms", "latency_p99_ms", "peak_memory_bytes",
                       "model_memory_bytes", "memory_kind", "file_bytes", "mfu", "executed_precision", "first_stage",
                       "first_stage_depth", "rerank_depth", "n_queries", "reason"),
          "the numbers an editor quotes, one row per dataset (and macro-average; level = the run's headline level), "
          "system (first stage, rerank, or the oracle ceiling), reranker (comparison = one of reranker.baselines), "
          "variant and device, derived from the tables above; sorted by quality, then speed"),
)}
# The same columns as plain lists, for building frames.
COLUMNS: dict[str, list[str]] = {name: list(table.columns) for name, table in TABLES.items()}


class BundleError(ValueError):
    """A results bundle that is missing, incomplete or incompatible."""


def conform(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Check the contract columns are present, put them first in contract order, keep extra columns after."""
    columns = COLUMNS[table]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BundleError(f"table {table!r} lacks columns {missing}; it has {list(frame.columns)}")
    return frame[columns + [c for c in frame.columns if c not in columns]]


def write_part(bundle: Path, table: str, part: str, frame: pd.DataFrame) -> Path:
    """Write one execution's rows of ``table`` atomically (temp file + rename): an execution killed halfway
    never leaves a truncated part for a resumed run to pool."""
    path = Path(bundle) / "tables" / "parts" / f"{table}--{part}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    conform(table, frame).to_parquet(staging, index=False)
    staging.replace(path)
    return path


def read_parts(bundle: Path, table: str, executions: set[str] | None = None) -> pd.DataFrame:
    """Pool a table's parts; with ``executions``, only the parts those executions wrote."""
    paths = sorted((Path(bundle) / "tables" / "parts").glob(f"{table}--*.parquet"))
    if executions is not None:
        paths = [p for p in paths if p.stem.removeprefix(f"{table}--") in executions]
    frames = [pd.read_parquet(p) for p in paths]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=COLUMNS[table])
    return pd.concat(frames, ignore_index=True)


def write_table(bundle: Path, table: str, frame: pd.DataFrame) -> None:
    """Write ``tables/<table>.parquet`` and ``.csv`` (the CSV is for editors and spreadsheets)."""
    folder = Path(bundle) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    frame = conform(table, frame)
    frame.to_parquet(folder / f"{table}.parquet", index=False)
    frame.to_csv(folder / f"{table}.csv", index=False)


def read_table(bundle: Path, table: str) -> pd.DataFrame:
    path = Path(bundle) / "tables" / f"{table}.parquet"
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS[table])
    return pd.read_parquet(path)
