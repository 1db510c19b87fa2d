"""Published claims as data, and verdicts that always point at the measurement behind them.

A claim names a table, a column and a range; its filters say which rows are evidence for it (the reranker,
the first stage it must follow, the minimum depth and query count, the class of hardware). The verdict is one
of :data:`VERDICTS`:

- **holds** / **contradicted**: the value (its 95% CI where the table has one) lies inside / outside the range;
- **inconclusive**: the CI straddles a bound of the range, so the measurement cannot tell;
- **not tested on this hardware**: rows exist, but on hardware outside the claim's class (a 2-core VM for a
  "modern CPU", a datacenter GPU for a "consumer GPU"); the measured value is reported beside the claim;
- **not measurable with random weights**: a quality claim and only shape-twin runs;
- **no matching run**: some filter found no row; the evidence names that filter and what the run had instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runlocalai_bench.params import ParamsError, format_validation_error
from runlocalai_bench.quality.summary import MACRO
from runlocalai_bench.units import duration_ms, percent, sig

HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"
NOT_TESTED, NOT_MEASURABLE, NO_MATCH = "not tested on this hardware", "not measurable with random weights", "no matching run"
VERDICTS = (HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTED, NOT_MEASURABLE, NO_MATCH)
# A verdict row: the claim, what was measured where, the verdict and its evidence; ``anchor`` names the table
# row behind it ("summary-12": row 12 of tables/summary, an id in report.html).
VERDICT_COLUMNS = ["claim", "group", "text", "measured", "hardware", "verdict", "evidence", "note", "anchor", "where",
                   "would_change", "reason"]
OTHER_DEVICE = "measured on "  # how a not-tested reason starts when the row ran on another kind of device
# Columns whose table carries a 95% CI, and how that CI was made (named in the evidence).
CI_COLUMNS = {
    "lift_rel": ("lift_rel_ci_low", "lift_rel_ci_high", "paired bootstrap CI of the relative lift"),
    "lift_abs": ("lift_ci_low", "lift_ci_high", "paired bootstrap CI of the absolute lift"),
    "mean": ("ci_low", "ci_high", "bootstrap CI of the mean"),
    "diff": ("diff_ci_low", "diff_ci_high", "paired bootstrap CI of the difference"),
    "ndcg10": ("ndcg10_ci_low", "ndcg10_ci_high", "bootstrap CI of the mean"),
}


class Range(BaseModel):
    """A numeric filter: the row's value must lie in [min, max] (either side open)."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        return " and ".join(part for part in (f">= {self.min:g}" if self.min is not None else "",
                                              f"<= {self.max:g}" if self.max is not None else "") if part)


FilterValue = bool | str | int | float | list[bool | str | int | float] | Range


GROUPS = ("model facts", "quality", "speed", "memory", "quantization", "comparisons")


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    text: str
    group: Literal["model facts", "quality", "speed", "memory", "quantization", "comparisons"] = Field(
        description="the report's verdict section lists claims by group")
    table: Literal["summary", "throughput", "comparisons", "model", "depth", "headline"]
    column: str  # e.g. lift_rel, pairs_per_s, model_bytes, peak_vram_mb, params_total, diff
    rule: Literal["range", "equals", "strict_upgrade", "costs_quality"] = Field(
        default="range", description="range: low <= value <= high (on the CI where the table has one); equals: "
        "the column's text is `equals`; strict_upgrade: on tables/comparisons, the reranker is significantly "
        "worse (Holm-adjusted over datasets) on no dataset and its macro-average difference over the baseline has "
        "a CI above 0; costs_quality: a paired difference whose CI lies below 0 (a measurable loss); within "
        "+-margin, or above 0, contradicts it")
    equals: str | None = None
    margin: float = Field(default=0.005, ge=0, description="costs_quality: differences within +-margin are no loss")
    low: float | None = None  # the claim holds when low <= value <= high (either bound may be open)
    high: float | None = None
    unit: str = ""
    scale: float = Field(default=1.0, description="multiply the table value by this before comparing (e.g. bytes -> GB)")
    filters: dict[str, FilterValue] = Field(
        default_factory=dict, description="column -> a value, a list of accepted values, or {min, max}")
    device_kind: Literal["cpu", "cuda", "mps", "any"] = "any"
    gpu_class: Literal["consumer", "workstation", "datacenter", "any"] = Field(
        default="any", description="GPU rows on other classes are reported beside the claim, not judged")
    needs_trained_weights: bool = False
    most: bool = Field(default=False, description="the claim is about 'most tasks': add a verdict on the per-dataset "
                                                  "tally (holds where it holds on more than half the datasets)")
    min_cpu_cores: int | None = Field(default=None, description="CPU rows from machines with fewer usable cores do not test it")
    note: str = Field(default="", description="how the claim is read, shown with its verdict")

    @model_validator(mode="after")
    def _rule(self) -> "Claim":
        if self.rule == "range" and self.low is None and self.high is None:
            raise ValueError(f"claim {self.id!r}: give low, high or both")
        if self.rule == "equals" and self.equals is None:
            raise ValueError(f"claim {self.id!r}: rule equals needs `equals: <text>`")
        if self.rule == "costs_quality" and (self.table != "comparisons" or self.column != "diff"):
            raise ValueError(f"claim {self.id!r}: rule costs_quality reads column diff of table comparisons")
        if self.rule == "strict_upgrade" and (self.table != "comparisons" or not {"reranker", "baseline"} <= set(self.filters)):
            raise ValueError(f"claim {self.id!r}: rule strict_upgrade reads table comparisons and needs filters "
                             "reranker and baseline")
        return self


class Unmeasurable(BaseModel):
    """A statement of the page that no benchmark of this suite can check, kept in the report with why."""
    model_config = ConfigDict(extra="forbid")
    text: str
    reason: str


class ClaimsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    source: str
    retrieved: str
    claims: list[Claim]
    unmeasurable: list[Unmeasurable] = Field(default_factory=list)


def load_claims(path: str | Path) -> ClaimsFile:
    path = Path(path)
    try:
        return ClaimsFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read claims file ({exc.strerror})") from None
    except ValidationError as exc:
        raise ParamsError(format_validation_error(str(path), exc, ClaimsFile)) from None


def _keep(rows: pd.DataFrame, column: str, wanted: FilterValue) -> pd.DataFrame:
    if isinstance(wanted, Range):
        values = pd.to_numeric(rows[column], errors="coerce")
        mask = values.notna()
        if wanted.min is not None:
            mask &= values >= wanted.min
        if wanted.max is not None:
            mask &= values <= wanted.max
        return rows[mask]
    accepted = wanted if isinstance(wanted, list) else [wanted]
    return rows[rows[column].isin(accepted)]


def _describe_filter(column: str, wanted: FilterValue) -> str:
    if isinstance(wanted, Range):
        return f"{column} {wanted.describe()}"
    if isinstance(wanted, list):
        return f"{column} in {', '.join(map(str, wanted))}"
    return f"{column} = {wanted}"


def _present(rows: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in rows[column].dropna().unique()})
    shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
    return f"the rows have {column} {shown}" if values else f"no row has a {column}"


def matching_rows(claim: Claim, table: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """Rows that are evidence for ``claim`` before any hardware filter, or (empty, why) naming the filter
    that left none."""
    rows = table
    if rows.empty:
        return rows, f"tables/{claim.table} is empty"
    for column, wanted in claim.filters.items():
        if column not in rows.columns:
            return rows.iloc[0:0], f"tables/{claim.table} has no column {column!r} to filter on"
        kept = _keep(rows, column, wanted)
        if kept.empty:
            return kept, f"no row of tables/{claim.table} has {_describe_filter(column, wanted)} ({_present(rows, column)})"
        rows = kept
    if claim.column not in rows.columns:
        return rows.iloc[0:0], f"tables/{claim.table} has no column {claim.column!r}"
    kept = rows[rows[claim.column].notna()]
    if kept.empty:
        return kept, f"every matching row of tables/{claim.table} leaves {claim.column} empty"
    return kept, None


def _hardware_reason(claim: Claim, device: str, profile: dict[str, Any]) -> str | None:
    """Why a row's hardware is outside the claim's class, or None."""
    kind = device.split(":")[0]
    if claim.device_kind != "any" and kind != claim.device_kind:
        return f"{OTHER_DEVICE}{device}, the claim is about {claim.device_kind}"
    if claim.gpu_class != "any" and kind in ("cuda", "mps") and profile.get("gpu_class") != claim.gpu_class:
        return (f"{profile.get('label', device)} is a {profile.get('gpu_class') or 'unclassified'} GPU, "
                f"the claim is about {claim.gpu_class} GPUs")
    cores = profile.get("cores")
    if claim.min_cpu_cores and kind == "cpu" and cores is not None and cores < claim.min_cpu_cores:
        return f"{cores} cores, the claim is about CPUs with at least {claim.min_cpu_cores}"
    return None


def _judge_value(claim: Claim, row: pd.Series) -> tuple[str, str, str]:
    """(verdict, measured text, CI note) for one evidence row."""
    if claim.rule == "equals":
        text = str(row[claim.column])
        return (HOLDS if text.strip().lower() == claim.equals.strip().lower() else CONTRADICTED), text, ""
    value = float(row[claim.column]) * claim.scale
    if claim.rule == "costs_quality":
        return _costs_quality(claim, row)
    inside = (claim.low is None or value >= claim.low) and (claim.high is None or value <= claim.high)
    measured = f"{_number(value)}{claim.unit}"
    ci = CI_COLUMNS.get(claim.column)
    if ci and all(c in row and pd.notna(row[c]) for c in ci[:2]):
        low, high = float(row[ci[0]]) * claim.scale, float(row[ci[1]]) * claim.scale
        measured += f" (95% CI {sig(low)}{claim.unit} to {sig(high)}{claim.unit})"
        n = row.get("n_queries")
        note = f"{ci[2]}{f' over {int(n)} queries' if pd.notna(n) else ''}"
        below = claim.low is not None and high < claim.low
        above = claim.high is not None and low > claim.high
        within = (claim.low is None or low >= claim.low) and (claim.high is None or high <= claim.high)
        verdict = CONTRADICTED if below or above else HOLDS if within else INCONCLUSIVE
        return verdict, measured, note
    if claim.column == "pairs_per_s" and pd.notna(row.get("pairs_per_s_iqr")):
        measured += f" (IQR {sig(float(row['pairs_per_s_iqr']) * claim.scale)})"
    return (HOLDS if inside else CONTRADICTED), measured, ""


def _number(value: float) -> str:
    """A measured value as a reader quotes it: whole numbers exactly (8,192 tokens, 24 layers), others to three
    significant digits."""
    return f"{int(value):,}" if float(value).is_integer() else sig(value)


def _costs_quality(claim: Claim, row: pd.Series) -> tuple[str, str, str]:
    """"X trades quality for size": its paired nDCG@10 difference against torch-fp32 shows a loss (CI below 0);
    a CI inside +-margin (no loss worth the name) or above 0 (a gain) contradicts it."""
    diff, low, high = (float(row[c]) for c in ("diff", "diff_ci_low", "diff_ci_high"))
    margin = claim.margin
    if high < 0:
        verdict = HOLDS
    elif low > 0 or (low >= -margin and high <= margin):
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    measured = f"{diff:+.4f} nDCG@10 (95% CI {low:+.4f} to {high:+.4f}) against torch-fp32"
    note = (f"paired bootstrap CI over {int(row['n_queries'])} queries; within +-{margin:g} counts as no loss"
            if pd.notna(row.get("n_queries")) else "")
    return verdict, measured, note


def _run_text(row: pd.Series) -> str:
    """"run X", or "runs X, Y" for a checkpoint fact that several pooled runs read alike."""
    runs = row.get("_runs")
    return f"runs {runs}" if isinstance(runs, str) and "," in runs else f"run {row['run_id']}"


def _where(row: pd.Series) -> str:
    parts = [_run_text(row)]
    if row.get("dataset") == MACRO and isinstance(row.get("datasets"), str):
        parts.append(f"macro-average over {row['datasets']}")
    for column in ("dataset", "reranker", "variant", "device", "workload", "batch_size", "first_stage", "rerank_depth"):
        value = row.get(column)
        if value is not None and not (isinstance(value, float) and pd.isna(value)) and value is not pd.NA:
            parts.append(f"{column} {value}")
    return ", ".join(parts)


def describe_row(row: pd.Series, hardware: str | None = None) -> str:
    """Where a verdict's evidence comes from, as a reader would say it: "the macro-average of 9 datasets after
    dense BAAI/bge-m3 top 100, torch-fp32 on <CPU>, run X"."""
    parts = []
    dataset = row.get("dataset")
    if dataset == MACRO:
        n = len(str(row.get("datasets") or "").split(", ")) if isinstance(row.get("datasets"), str) else None
        parts.append(f"the macro-average of {n} datasets" if n else "the macro-average over datasets")
    elif isinstance(dataset, str) and dataset:
        parts.append(dataset)
    first, depth = row.get("first_stage"), row.get("first_stage_depth")
    if isinstance(first, str) and first and pd.notna(depth):
        parts.append(f"after {first} top {int(depth)}")
    variant, device = row.get("variant"), row.get("device")
    if isinstance(variant, str) and variant:
        parts.append(f"{variant} on {hardware or device}")
    if isinstance(row.get("workload"), str) and row.get("workload"):
        batch, latency = row.get("batch_size"), row.get("latency_p50_ms")
        parts.append(f"{row['workload']} workload" + (f", batch {int(batch)}" if pd.notna(batch) else "")
                     + (f", {duration_ms(latency)} per call (p50)" if latency is not None and pd.notna(latency) else ""))
    if isinstance(row.get("baseline"), str) and row.get("baseline"):
        parts.append(f"against {row['baseline']} {row.get('baseline_variant') or ''}".rstrip())
    ratio = row.get("file_ratio")
    if ratio is not None and pd.notna(ratio):
        parts.append(f"file {percent(ratio, digits=2)} of torch-fp32's")
    parts.append(_run_text(row))
    return ", ".join(parts)


def sentence(verdict: pd.Series | dict) -> str:
    """A verdict as one sentence an editor can quote: "Holds: 12.3% (95% CI 8.1% to 16.4%) on the
    macro-average of 9 datasets after BAAI/bge-m3 top 100, run X." """
    label = str(verdict["verdict"])
    label = label[0].upper() + label[1:]
    reason = verdict.get("reason")
    if verdict["verdict"] == NOT_TESTED and isinstance(reason, str) and reason:
        # Say why first: a CPU's rate printed after a GPU claim, or a 2-core rate after an 8-core claim, reads
        # as a contradiction when it is not evidence at all.
        if reason.startswith(OTHER_DEVICE) or verdict.get("measured") is None:
            return f"{label} ({reason})."
        return f"{label} ({reason}); measured beside it, not judged: {verdict['measured']} on {verdict['where']}."
    if verdict.get("measured") is None or (isinstance(verdict.get("measured"), float) and pd.isna(verdict["measured"])):
        return f"{label}: {verdict['evidence']}."
    return f"{label}: {verdict['measured']} on {verdict['where']}."


def judge(claim: Claim, tables: dict[str, pd.DataFrame], weights: dict[str, str],
          profiles: dict[str, dict[str, Any]]) -> list[dict]:
    """Verdict rows for one claim: one per evidence row, or one saying why there is none.

    ``weights`` maps run_id to "trained"/"random"; ``profiles`` maps "run_id|device" to the device's profile
    (:func:`environment.device_profile`: label, GPU class, cores).
    """
    base = {"claim": claim.id, "text": claim.text, "note": claim.note, "anchor": None, "where": None,
            "group": claim.group}
    table = tables.get(claim.table, pd.DataFrame())
    if claim.rule == "strict_upgrade":
        random_runs = sorted(r for r, w in weights.items() if w == "random")
        if claim.needs_trained_weights and random_runs and len(random_runs) == len(weights):
            return [{**base, "measured": None, "hardware": None, "verdict": NOT_MEASURABLE,
                     "evidence": f"run(s) {', '.join(random_runs)} used random weights (shape twins): their "
                                 "scores carry no relevance"}]
        return _strict_upgrade(claim, base, table, profiles)
    rows, why_none = matching_rows(claim, table)
    if rows.empty:
        random_runs = sorted(r for r, w in weights.items() if w == "random")
        if claim.needs_trained_weights and random_runs and len(random_runs) == len(weights):
            return [{**base, "measured": None, "hardware": None, "verdict": NOT_MEASURABLE,
                     "evidence": f"run(s) {', '.join(random_runs)} used random weights (shape twin): "
                                 "their scores carry no relevance"}]
        return [{**base, "measured": None, "hardware": None, "verdict": NO_MATCH, "evidence": why_none}]
    if claim.table == "model":
        # A checkpoint's fact is one fact however many pooled runs read it (a twin run and a length sweep of
        # the same checkpoint): one verdict per distinct checkpoint and value, naming every run behind it.
        keys = [c for c in ("reranker", "variant", "weights", "source", claim.column) if c in rows]
        runs = rows.groupby(keys, dropna=False, sort=False)["run_id"].transform(lambda r: ", ".join(sorted(set(r))))
        rows = rows.assign(_runs=runs).drop_duplicates(keys)
    out = []
    for _, row in rows.iterrows():
        device = row.get("device") if isinstance(row.get("device"), str) else "cpu"
        profile = profiles.get(f"{row['run_id']}|{device}", {"label": device})
        verdict, measured, ci_note = _judge_value(claim, row)
        evidence = f"tables/{claim.table}: {_where(row)}" + (f"; {ci_note}" if ci_note else "")
        reason = _hardware_reason(claim, device, profile)
        if reason:
            verdict, evidence = NOT_TESTED, f"{evidence}; {reason}"
        elif claim.needs_trained_weights and weights.get(row["run_id"]) == "random":
            verdict, evidence = NOT_MEASURABLE, f"{evidence}; random weights"
        out.append({**base, "measured": measured, "hardware": profile.get("label", device), "verdict": verdict,
                    "evidence": evidence, "reason": reason, "anchor": f"{claim.table}-{row.name}",
                    "where": describe_row(row, profile.get("label")), "_row": row})
    if claim.most and "dataset" in rows.columns:
        out += _tallies(claim, base, out)
    return [{k: v for k, v in r.items() if k != "_row"} for r in out]


def _tallies(claim: Claim, base: dict, judged: list[dict]) -> list[dict]:
    """For an "on most tasks" claim: per run, variant and device, the verdict on the per-dataset verdicts."""
    groups: dict[tuple, list[dict]] = {}
    for verdict in judged:
        row = verdict["_row"]
        if row.get("dataset") != MACRO and verdict["verdict"] in (HOLDS, CONTRADICTED, INCONCLUSIVE):
            groups.setdefault((row["run_id"], row.get("variant"), row.get("device")), []).append(verdict)
    out = []
    for (run_id, variant, device), verdicts_ in groups.items():
        if len(verdicts_) < 2:
            continue
        counts = {v: [x["_row"]["dataset"] for x in verdicts_ if x["verdict"] == v] for v in (HOLDS, CONTRADICTED, INCONCLUSIVE)}
        n = len(verdicts_)
        verdict = HOLDS if len(counts[HOLDS]) > n / 2 else CONTRADICTED if len(counts[CONTRADICTED]) >= n / 2 else INCONCLUSIVE
        measured = f"holds on {len(counts[HOLDS])} of {n} datasets"
        evidence = (f"tables/summary: run {run_id}, variant {variant}, device {device}; per-dataset verdicts: "
                    + "; ".join(f"{v} on {', '.join(d)}" for v, d in counts.items() if d)
                    + f"; 'most' read as more than half ({n // 2 + 1} of {n})")
        out.append({**base, "claim": f"{claim.id} (most datasets)", "measured": measured,
                    "hardware": verdicts_[0]["hardware"], "verdict": verdict, "evidence": evidence,
                    "where": f"the per-dataset verdicts of {variant} on {device}, run {run_id}",
                    "anchor": verdicts_[0]["anchor"], "_row": {}})
    return out


def _oriented(claim: Claim, table: pd.DataFrame) -> tuple[pd.DataFrame, bool, str | None]:
    """Comparison rows of the claim's reranker against its baseline: as measured, or, when the run compared
    them the other way round, with the difference negated (A over B is -(B over A) on the same queries)."""
    if table.empty:
        return table, False, "tables/comparisons is empty (the run compared no rerankers)"
    wanted = claim.filters
    others = {k: v for k, v in wanted.items() if k not in ("reranker", "baseline")}
    swapped_claim = claim.model_copy(update={"filters": {**others, "reranker": wanted["baseline"],
                                                         "baseline": wanted["reranker"]}})
    rows, why = matching_rows(claim.model_copy(update={"column": "diff"}), table)
    if not rows.empty:
        return rows, False, None
    swapped, _ = matching_rows(swapped_claim.model_copy(update={"column": "diff"}), table)
    if not swapped.empty:
        flipped = swapped.copy()
        flipped["diff"], flipped["diff_ci_low"], flipped["diff_ci_high"] = (
            -swapped["diff"], -swapped["diff_ci_high"], -swapped["diff_ci_low"])
        flipped["reranker"], flipped["baseline"] = swapped["baseline"], swapped["reranker"]
        return flipped, True, None
    return rows, False, why


def holm_worse(datasets: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """Datasets where the difference is negative and significant after Holm's step-down adjustment over the
    datasets' two-sided p-values: with ten datasets and two equal rerankers, an unadjusted 5% test would find
    one "significantly worse" dataset by chance about four times in ten."""
    ordered = datasets.sort_values("p_value", kind="stable")
    m, worse = len(ordered), []
    for i, (_, row) in enumerate(ordered.iterrows()):
        if pd.isna(row["p_value"]) or row["p_value"] > alpha / (m - i):
            break
        if row["diff"] < 0:
            worse.append(row["dataset"])
    return sorted(worse)


def _strict_upgrade(claim: Claim, base: dict, table: pd.DataFrame, profiles: dict[str, dict[str, Any]]) -> list[dict]:
    """"A is a strict upgrade over B": on the same candidates, A is significantly worse on no dataset (paired
    sign-flip p, Holm-adjusted over the datasets: :func:`holm_worse`), and its macro-average difference (the
    one dataset's, with one) has a CI above 0."""
    rows, swapped, why_none = _oriented(claim, table)
    if rows.empty:
        return [{**base, "measured": None, "hardware": None, "verdict": NO_MATCH, "evidence": why_none}]
    out = []
    for (run_id, device, variant), group in rows.groupby(["run_id", "device", "variant"], dropna=False):
        datasets = group[group["dataset"] != MACRO]
        overall = group[group["dataset"] == MACRO]
        overall = overall.iloc[0] if len(overall) else (datasets.iloc[0] if len(datasets) == 1 else None)
        worse = holm_worse(datasets)
        profile = profiles.get(f"{run_id}|{device}", {"label": device})
        if overall is None:
            out.append({**base, "measured": None, "hardware": profile.get("label"), "verdict": NO_MATCH,
                        "evidence": f"tables/comparisons: run {run_id} has no macro-average row for {device}"})
            continue
        low, high = float(overall["diff_ci_low"]), float(overall["diff_ci_high"])
        verdict = (CONTRADICTED if worse or high < 0 else HOLDS if low > 0 else INCONCLUSIVE)
        level = "the macro-average" if overall["dataset"] == MACRO else overall["dataset"]
        measured = (f"{float(overall['diff']):+.3f} nDCG@10 (95% CI {low:+.3f} to {high:+.3f}) on {level}; "
                    f"significantly worse (Holm-adjusted) on {len(worse)} of {len(datasets)} "
                    f"dataset{'s' if len(datasets) != 1 else ''}" + (f" ({', '.join(worse)})" if worse else ""))
        evidence = (f"tables/comparisons: run {run_id}, {variant} on {device}, {claim.filters['reranker']} minus "
                    f"{claim.filters['baseline']} per query on the same candidates"
                    + ("; the run compared them the other way round: difference negated" if swapped else "")
                    + "; strict upgrade = no dataset significantly worse and the overall CI above 0")
        reason = _hardware_reason(claim, str(device), profile)
        out.append({**base, "measured": measured, "hardware": profile.get("label", device),
                    "verdict": NOT_TESTED if reason else verdict, "evidence": evidence + (f"; {reason}" if reason else ""),
                    "anchor": f"comparisons-{overall.name}",
                    "where": f"{claim.filters['reranker']} against {claim.filters['baseline']}, {variant} on "
                             f"{profile.get('label', device)}, run {run_id}"})
    return out


def what_would_change(claim: Claim, verdict: dict) -> str:
    """What measurement would change a verdict: the run it needs, or what the evidence would have to show."""
    label = verdict["verdict"]
    if label == NOT_TESTED:
        needs = []
        if claim.gpu_class != "any":
            needs.append(f"a {claim.gpu_class} GPU")
        elif claim.device_kind == "cuda":
            needs.append("a CUDA GPU")
        if claim.min_cpu_cores:
            needs.append(f"a CPU with at least {claim.min_cpu_cores} cores")
        return f"a run on {' or '.join(needs) or 'the hardware the claim names'}"
    if label == NOT_MEASURABLE:
        return "a run with the trained weights (params/default.yaml downloads them)"
    if label == NO_MATCH:
        if claim.device_kind == "cuda":
            return "a run on a CUDA GPU (bench/device_check.sh prepares one)"
        return f"a run that measures it: {verdict['evidence']}"
    if claim.rule == "strict_upgrade":
        return {HOLDS: "a dataset where it is significantly worse, or an overall CI reaching 0",
                CONTRADICTED: "no dataset significantly worse and an overall CI above 0",
                INCONCLUSIVE: "more queries or datasets, narrowing the overall CI to one side of 0"}[label]
    if claim.rule == "equals":
        return "a different checkpoint" if label == HOLDS else f"a checkpoint whose {claim.column} is {claim.equals}"
    if claim.rule == "costs_quality":
        return {HOLDS: "a run where the loss's CI reaches 0 (more queries, other datasets)",
                CONTRADICTED: "a run where the CI lies below 0 (a measurable loss)",
                INCONCLUSIVE: f"more queries, narrowing the CI below 0 or within +-{claim.margin:g}"}[label]
    bounds = " and ".join(b for b in (f"{claim.low:g}{claim.unit}" if claim.low is not None else "",
                                      f"{claim.high:g}{claim.unit}" if claim.high is not None else "") if b)
    if label == INCONCLUSIVE:
        return f"more queries or datasets, narrowing the CI to one side of {bounds}"
    if label == HOLDS:
        return f"a measurement (on other hardware, datasets or settings the claim covers) outside {bounds}"
    return f"a measurement inside the claimed range ({bounds})"


def verdicts(claims: ClaimsFile, tables: dict[str, pd.DataFrame], weights: dict[str, str],
             profiles: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for claim in claims.claims:
        for row in judge(claim, tables, weights, profiles):
            rows.append({**row, "would_change": what_would_change(claim, row)})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)
