"""Published claims as data, and verdicts that always point at the measurement behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runlocalai_bench.params import ParamsError, format_validation_error

HOLDS, CONTRADICTED, NOT_TESTED, NOT_MEASURABLE = (
    "holds", "contradicted", "not tested on this hardware", "not measurable with random weights")


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
    filters: dict[str, str | list[str]] = Field(default_factory=dict, description="column -> value(s) a row must have")
    device_kind: Literal["cpu", "cuda", "mps", "any"] = "any"
    needs_trained_weights: bool = False
    min_cpu_cores: int | None = Field(default=None, description="CPU rows from machines with fewer usable cores do not test it")


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


def _matching(claim: Claim, table: pd.DataFrame) -> pd.DataFrame:
    rows = table
    for column, wanted in claim.filters.items():
        if column not in rows.columns:
            return rows.iloc[0:0]
        rows = rows[rows[column].isin(wanted if isinstance(wanted, list) else [wanted])]
    if claim.device_kind != "any" and "device" in rows.columns:
        rows = rows[rows["device"].fillna("").str.split(":").str[0] == claim.device_kind]
    return rows[rows[claim.column].notna()] if claim.column in rows.columns else rows.iloc[0:0]


def judge(claim: Claim, tables: dict[str, pd.DataFrame], weights: dict[str, str], hardware: dict[str, str],
          cores: dict[str, int] | None = None) -> list[dict]:
    """Verdict rows for one claim: one per matching measurement, or one saying why there is none.

    ``weights`` maps run_id to "trained"/"random"; ``hardware`` maps "run_id|device" to a hardware name;
    ``cores`` maps run_id to the CPU cores the run could use (for claims about a class of CPU).
    """
    base = {"claim": claim.id, "text": claim.text}
    table = tables.get(claim.table, pd.DataFrame())
    rows = _matching(claim, table) if not table.empty else table
    if claim.needs_trained_weights:
        random_runs = [r for r, w in weights.items() if w == "random"]
        if rows.empty and random_runs:
            return [{**base, "measured": None, "hardware": None, "verdict": NOT_MEASURABLE,
                     "evidence": f"run(s) {', '.join(random_runs)} used random weights"}]
    if rows.empty:
        return [{**base, "measured": None, "hardware": None, "verdict": NOT_TESTED, "evidence": "no matching measurement"}]
    out = []
    for _, row in rows.iterrows():
        value = float(row[claim.column]) * claim.scale
        ok = (claim.low is None or value >= claim.low) and (claim.high is None or value <= claim.high)
        measured = f"{value:.3g}{claim.unit}"
        ci_cols = {"lift_rel": ("lift_rel_ci_low", "lift_rel_ci_high"), "lift_abs": ("lift_ci_low", "lift_ci_high"),
                   "mean": ("ci_low", "ci_high"), "pairs_per_s": None}.get(claim.column)
        if ci_cols and all(c in row and pd.notna(row[c]) for c in ci_cols):
            measured += f" (95% CI {row[ci_cols[0]] * claim.scale:.3g} to {row[ci_cols[1]] * claim.scale:.3g})"
        elif claim.column == "pairs_per_s" and pd.notna(row.get("pairs_per_s_iqr")):
            measured += f" (IQR {row['pairs_per_s_iqr'] * claim.scale:.3g})"
        device = row.get("device") if isinstance(row.get("device"), str) else "?"
        evidence = f"tables/{claim.table}: run {row['run_id']}, {row.get('variant') or row.get('system')} on {device}"
        verdict = HOLDS if ok else CONTRADICTED
        n_cores = (cores or {}).get(row["run_id"])
        if claim.min_cpu_cores and device == "cpu" and n_cores is not None and n_cores < claim.min_cpu_cores:
            verdict = NOT_TESTED
            evidence += f"; {n_cores} cores, the claim is about CPUs with at least {claim.min_cpu_cores}"
        out.append({**base, "measured": measured, "hardware": hardware.get(f"{row['run_id']}|{device}", device),
                    "verdict": verdict, "evidence": evidence})
    return out


def verdicts(claims: ClaimsFile, tables: dict[str, pd.DataFrame], weights: dict[str, str],
             hardware: dict[str, str], cores: dict[str, int] | None = None) -> pd.DataFrame:
    rows = [row for claim in claims.claims for row in judge(claim, tables, weights, hardware, cores)]
    return pd.DataFrame(rows, columns=["claim", "text", "measured", "hardware", "verdict", "evidence"])
