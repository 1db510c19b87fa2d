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

HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"
NOT_TESTED, NOT_MEASURABLE, NO_MATCH = "not tested on this hardware", "not measurable with random weights", "no matching run"
VERDICTS = (HOLDS, CONTRADICTED, INCONCLUSIVE, NOT_TESTED, NOT_MEASURABLE, NO_MATCH)
# Columns whose table carries a 95% CI, and how that CI was made (named in the evidence).
CI_COLUMNS = {
    "lift_rel": ("lift_rel_ci_low", "lift_rel_ci_high", "paired bootstrap CI of the relative lift"),
    "lift_abs": ("lift_ci_low", "lift_ci_high", "paired bootstrap CI of the absolute lift"),
    "mean": ("ci_low", "ci_high", "bootstrap CI of the mean"),
}


class Range(BaseModel):
    """A numeric filter: the row's value must lie in [min, max] (either side open)."""

    model_config = ConfigDict(extra="forbid")
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        return " and ".join(part for part in (f">= {self.min:g}" if self.min is not None else "",
                                              f"<= {self.max:g}" if self.max is not None else "") if part)


FilterValue = str | int | float | list[str | int | float] | Range


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    text: str
    table: Literal["summary", "throughput"]
    column: str  # e.g. lift_rel, pairs_per_s, model_bytes, peak_vram_mb
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
    def _range(self) -> "Claim":
        if self.low is None and self.high is None:
            raise ValueError(f"claim {self.id!r}: give low, high or both")
        return self


class ClaimsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    source: str
    retrieved: str
    claims: list[Claim]


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
        return f"measured on {device}, the claim is about {claim.device_kind}"
    if claim.gpu_class != "any" and kind in ("cuda", "mps") and profile.get("gpu_class") != claim.gpu_class:
        return (f"{profile.get('label', device)} is a {profile.get('gpu_class') or 'unclassified'} GPU, "
                f"the claim is about {claim.gpu_class} GPUs")
    cores = profile.get("cores")
    if claim.min_cpu_cores and kind == "cpu" and cores is not None and cores < claim.min_cpu_cores:
        return f"{cores} cores, the claim is about CPUs with at least {claim.min_cpu_cores}"
    return None


def _judge_value(claim: Claim, row: pd.Series) -> tuple[str, str, str]:
    """(verdict, measured text, CI note) for one evidence row."""
    value = float(row[claim.column]) * claim.scale
    inside = (claim.low is None or value >= claim.low) and (claim.high is None or value <= claim.high)
    measured = f"{value:.3g}{claim.unit}"
    ci = CI_COLUMNS.get(claim.column)
    if ci and all(c in row and pd.notna(row[c]) for c in ci[:2]):
        low, high = float(row[ci[0]]) * claim.scale, float(row[ci[1]]) * claim.scale
        measured += f" (95% CI {low:.3g} to {high:.3g})"
        n = row.get("n_queries")
        note = f"{ci[2]}{f' over {int(n)} queries' if pd.notna(n) else ''}"
        below = claim.low is not None and high < claim.low
        above = claim.high is not None and low > claim.high
        within = (claim.low is None or low >= claim.low) and (claim.high is None or high <= claim.high)
        verdict = CONTRADICTED if below or above else HOLDS if within else INCONCLUSIVE
        return verdict, measured, note
    if claim.column == "pairs_per_s" and pd.notna(row.get("pairs_per_s_iqr")):
        measured += f" (IQR {float(row['pairs_per_s_iqr']) * claim.scale:.3g})"
    return (HOLDS if inside else CONTRADICTED), measured, ""


def _where(row: pd.Series) -> str:
    parts = [f"run {row['run_id']}"]
    if row.get("dataset") == MACRO and isinstance(row.get("datasets"), str):
        parts.append(f"macro-average over {row['datasets']}")
    for column in ("dataset", "reranker", "variant", "device", "workload", "batch_size", "first_stage", "rerank_depth"):
        value = row.get(column)
        if value is not None and not (isinstance(value, float) and pd.isna(value)) and value is not pd.NA:
            parts.append(f"{column} {value}")
    return ", ".join(parts)


def judge(claim: Claim, tables: dict[str, pd.DataFrame], weights: dict[str, str],
          profiles: dict[str, dict[str, Any]]) -> list[dict]:
    """Verdict rows for one claim: one per evidence row, or one saying why there is none.

    ``weights`` maps run_id to "trained"/"random"; ``profiles`` maps "run_id|device" to the device's profile
    (:func:`environment.device_profile`: label, GPU class, cores).
    """
    base = {"claim": claim.id, "text": claim.text, "note": claim.note}
    table = tables.get(claim.table, pd.DataFrame())
    rows, why_none = matching_rows(claim, table)
    if rows.empty:
        random_runs = sorted(r for r, w in weights.items() if w == "random")
        if claim.needs_trained_weights and random_runs and len(random_runs) == len(weights):
            return [{**base, "measured": None, "hardware": None, "verdict": NOT_MEASURABLE,
                     "evidence": f"run(s) {', '.join(random_runs)} used random weights (shape twin): "
                                 "their scores carry no relevance"}]
        return [{**base, "measured": None, "hardware": None, "verdict": NO_MATCH, "evidence": why_none}]
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
                    "evidence": evidence, "_row": row})
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
                    "hardware": verdicts_[0]["hardware"], "verdict": verdict, "evidence": evidence, "_row": {}})
    return out


def verdicts(claims: ClaimsFile, tables: dict[str, pd.DataFrame], weights: dict[str, str],
             profiles: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = [row for claim in claims.claims for row in judge(claim, tables, weights, profiles)]
    return pd.DataFrame(rows, columns=["claim", "text", "measured", "hardware", "verdict", "evidence", "note"])
