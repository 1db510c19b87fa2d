"""Published claims as data, and verdicts that always point at the measurement behind them.

A claim names a table, a column and a range; its filters say which rows are evidence for it (the reranker,
the first stage it must follow with its max length and depth, the rerank depth, the query count, the class of
hardware, the pinned speed workload). The verdict is one of :data:`VERDICTS`; how each rule decides is written
once, in :data:`RULE_TEXT`, formatted with the claim's own terms and quoted in the report beside the verdict:

- **holds** / **contradicted**: the interval (95% CI, or the run's spread for speed) lies wholly inside / outside
  the range;
- **consistent**: the estimate lies inside the range, the interval reaches past a bound (more data could still
  contradict it); the smallest n at which "holds" is reachable at the observed spread is given beside it;
- **inconclusive**: the estimate lies outside, the interval reaches inside;
- **not tested on this hardware**: rows exist, but on hardware outside the claim's class (a 2-core VM for a
  "modern CPU", a datacenter GPU for a "consumer GPU"); the measured value is reported beside the claim;
- **not measurable with random weights**: a quality claim and only shape-twin runs;
- **not tested: no key**: a claim about hosted rerankers whose provider's key was not in the environment, so
  nothing was sent (the evidence names the variable);
- **no matching run**: some filter found no row; the evidence names that filter and what the run had instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.stats import norm

from runlocalai_bench.models.facts import is_non_commercial
from runlocalai_bench.params import ParamsError, format_validation_error
from runlocalai_bench.quality import stats
from runlocalai_bench.quality.summary import MACRO
from runlocalai_bench.rerankers.hosted import HOSTED_DEVICE, HOSTED_VARIANT, KEY_NOT_USED
from runlocalai_bench.rerankers.registry import reference_variant
from runlocalai_bench.units import duration_ms, percent, sig

HOLDS, CONSISTENT, CONTRADICTED, INCONCLUSIVE = "holds", "consistent", "contradicted", "inconclusive"
NOT_TESTED, NOT_MEASURABLE, NO_MATCH = "not tested on this hardware", "not measurable with random weights", "no matching run"
NO_KEY = "not tested: no key"  # a hosted reranker the run could not call: its provider's key was not in the environment
VERDICTS = (HOLDS, CONSISTENT, CONTRADICTED, INCONCLUSIVE, NOT_TESTED, NO_KEY, NOT_MEASURABLE, NO_MATCH)
JUDGED = (HOLDS, CONSISTENT, CONTRADICTED, INCONCLUSIVE)  # verdicts on evidence (the others say why there is none)
# A verdict row: the claim, what was measured where, the verdict and its evidence; ``anchor`` names the table
# row behind it ("summary-12": row 12 of tables/summary, an id in report.html).
VERDICT_COLUMNS = ["claim", "group", "text", "measured", "hardware", "verdict", "evidence", "note", "anchor", "where",
                   "would_change", "reason", "rule", "holds_from_n"]
OTHER_DEVICE = "measured on "  # how a not-tested reason starts when the row ran on another kind of device
# Columns whose table carries a 95% CI, and how that CI was made (named in the evidence).
CI_COLUMNS = {
    "lift_rel": ("lift_rel_ci_low", "lift_rel_ci_high", "paired bootstrap CI of the relative lift"),
    "lift_abs": ("lift_ci_low", "lift_ci_high", "paired bootstrap CI of the absolute lift"),
    "mean": ("ci_low", "ci_high", "bootstrap CI of the mean"),
    "diff": ("diff_ci_low", "diff_ci_high", "paired bootstrap CI of the difference"),
    "ndcg10": ("ndcg10_ci_low", "ndcg10_ci_high", "bootstrap CI of the mean"),
}
# Columns judged on the run's spread rather than a CI: timed rounds' quartiles (older bundles carry only the IQR:
# the median +- IQR/2 then).
SPREAD_COLUMNS = {"pairs_per_s": ("pairs_per_s_q1", "pairs_per_s_q3", "pairs_per_s_iqr")}
# Columns each run's setup adds to the summary and comparisons rows before the filters see them (the tables
# record the first stage's model and depth, not the token limits it and the reranker ran with).
SETUP_COLUMNS = ("first_stage_max_length", "reranker_max_length")

# How each rule decides, written once in the claims file's terms ({margin}, {delta}, ...): the report quotes the
# formatted text beside every verdict, so what the code does and what the reader is told cannot drift apart.
RULE_TEXT = {
    "range": "holds when the whole interval ({interval}) lies inside {band}; consistent when the estimate lies "
             "inside and the interval reaches past a bound; contradicted when the whole interval lies outside; "
             "inconclusive when the estimate lies outside and the interval reaches inside; without a recorded "
             "interval, inconclusive. 'Holds' becomes reachable, with {power} probability if the estimate and the "
             "spread stay as observed, at the number of queries given beside a consistent verdict",
    "range_exact": "holds when the value lies inside {band}, contradicted outside (an exact value, read from the "
                   "checkpoint or the file: no interval)",
    "range_point": "holds when the measured value lies inside {band}, contradicted outside (one measurement of "
                   "the run, judged as measured: the table records no interval for it)",
    "equals": "holds when the value reads {equals!r} (case and surrounding spaces ignored), else contradicted",
    "costs_quality": "holds when the paired {level} CI of the difference against torch-fp32 lies wholly below "
                     "-{margin} (a loss larger than the margin); contradicted when its lower end is at or above "
                     "-{margin} (no loss worth the name: any loss is smaller than the margin, or it is a gain); "
                     "inconclusive when the CI straddles -{margin}",
    "strict_upgrade": "holds when at least {min_datasets} datasets with at least {min_queries} queries each were "
                      "compared, on every one the paired {level} CI's lower end is above -{delta} (not worse by more "
                      "than the margin) and the macro-average's CI lies above 0 (better overall); contradicted when "
                      "a dataset's CI lies wholly below -{delta} or the macro-average's wholly below 0; inconclusive "
                      "otherwise (fewer datasets or queries than required included)",
    "remains_default": "each newer reranker minus this one on the same queries and candidates. On the "
                       "macro-average: holds when every newer reranker the claim names was compared and each one's "
                       "paired {level} CI lies below +{delta} (none better by {delta} or more), on at least "
                       "{min_datasets} datasets of {min_queries}+ queries; contradicted when one leads with its CI "
                       "wholly above +{delta} and is significantly better after Holm's adjustment over the newer "
                       "rerankers (5%); inconclusive otherwise (a named reranker missing included). Per dataset "
                       "(the claim allows a newer one to surpass it on specific benchmarks): holds when no lead's CI "
                       "reaches +{delta}, consistent when one lies wholly above it, inconclusive otherwise. Beside "
                       "it: the rerankers significantly better on a dataset (Holm-adjusted over every reranker and "
                       "dataset of the run, 5%), each one's pairs/s and memory as a ratio to this one's on the same "
                       "hardware, and a non-commercial licence where tables/model records one",
    "hosted_by_language": "each hosted reranker the claim names minus this one (its device's reference variant) on "
                          "the same queries and candidates, macro-averaged over the run's {language_group} datasets "
                          "(the queries the API scored; paired {level} bootstrap CI, resampled within each dataset). "
                          "{expected}: holds when the CI lies wholly on that side of 0, contradicted when it lies "
                          "wholly on the other side, inconclusive when it contains 0 or when the API left more than "
                          "{max_failed} of the group's queries unscored (failures need not be random); a hosted "
                          "reranker that did not run for want of its key is 'not tested: no key'",
}
MOST_TEXT = ("'most tasks' is judged on the per-dataset verdicts of each run, variant and device: every dataset "
             "of the run counts (one without evidence counts against the claim and is named); holds when it holds "
             "on more than half of them, contradicted when it is contradicted on half or more, consistent when holds "
             "and consistent together are more than half, inconclusive otherwise")


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
    rule: Literal["range", "equals", "strict_upgrade", "costs_quality", "remains_default", "hosted_by_language"] = Field(
        default="range", description="how the verdict is decided: RULE_TEXT says it in full, with this claim's terms")
    equals: str | None = None
    margin: float = Field(default=0.005, ge=0, description="costs_quality: a loss smaller than this is no loss")
    delta: float = Field(default=0.01, ge=0, description="strict_upgrade: the non-inferiority margin per dataset; "
                                                         "remains_default: the lead a newer reranker needs to "
                                                         "displace this one (nDCG@10 points as a fraction)")
    min_datasets: int = Field(default=3, ge=1, description="strict_upgrade: fewer datasets are inconclusive")
    min_queries: int = Field(default=50, ge=1, description="strict_upgrade: a dataset with fewer queries is too "
                                                           "small to show non-inferiority")
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
    language_group: Literal["english", "other"] = Field(
        default="english", description="hosted_by_language: the datasets pooled (English queries, or every other "
                                       "language: MIRACL's)")
    expect: Literal["baseline_better", "reranker_better"] = Field(
        default="baseline_better", description="hosted_by_language: which side the claim says wins on that group")
    note: str = Field(default="", description="how the claim is read, shown with its verdict")

    def rule_text(self) -> str:
        """The rule as the report states it, in this claim's terms."""
        bounds = [f"{_number(self.low)}{self.unit}" if self.low is not None else "-inf",
                  f"{_number(self.high)}{self.unit}" if self.high is not None else "+inf"]
        interval = ("the run's interquartile spread of timed rounds" if self.column in SPREAD_COLUMNS
                    else f"the {stats.LEVEL:.0%} CI" if self.column in CI_COLUMNS else None)
        rule = self.rule
        if rule == "range" and interval is None:
            rule = "range_exact" if self.table == "model" else "range_point"
        expected = ("the hosted reranker better" if self.expect == "baseline_better" else "this reranker better")
        groups = {"english": "English", "other": "non-English"}
        text = RULE_TEXT[rule].format(band=f"[{bounds[0]}, {bounds[1]}]", interval=interval, equals=self.equals,
                                      expected=expected[0].upper() + expected[1:],
                                      max_failed=f"{HOSTED_MAX_FAILED:.0%}",
                                      language_group=groups[self.language_group],
                                      level=f"{stats.LEVEL:.0%}", power=f"{POWER:.0%}",
                                           margin=f"{self.margin:g}", delta=f"{self.delta:g}",
                                           min_datasets=self.min_datasets, min_queries=self.min_queries)
        return text + (f"; {MOST_TEXT}" if self.most else "")

    @model_validator(mode="after")
    def _rule(self) -> "Claim":
        if self.rule == "range" and self.low is None and self.high is None:
            raise ValueError(f"claim {self.id!r}: give low, high or both")
        if self.rule == "equals" and self.equals is None:
            raise ValueError(f"claim {self.id!r}: rule equals needs `equals: <text>`")
        if self.rule == "costs_quality" and (self.table != "comparisons" or self.column != "diff"):
            raise ValueError(f"claim {self.id!r}: rule costs_quality reads column diff of table comparisons")
        if self.rule in ("strict_upgrade", "remains_default", "hosted_by_language") and (
                self.table != "comparisons" or not {"reranker", "baseline"} <= set(self.filters)):
            raise ValueError(f"claim {self.id!r}: rule {self.rule} reads table comparisons and needs filters "
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


def decide_range(estimate: float, low: float, high: float, band_low: float | None, band_high: float | None) -> str:
    """The range rule on an interval [low, high] around ``estimate`` (RULE_TEXT["range"])."""
    def inside(value: float) -> bool:
        return (band_low is None or value >= band_low) and (band_high is None or value <= band_high)

    if inside(low) and inside(high):
        return HOLDS
    if (band_low is not None and high < band_low) or (band_high is not None and low > band_high):
        return CONTRADICTED
    return CONSISTENT if inside(estimate) else INCONCLUSIVE


POWER = 0.8  # the probability with which holds_from_n's query count is expected to give "holds"


def holds_from_n(estimate: float, low: float, high: float, n: int, band_low: float | None,
                 band_high: float | None) -> int | None:
    """The number of queries at which a rerun would give "holds" with probability :data:`POWER`, if the true value
    were the estimate and the interval narrowed as 1/sqrt(n) (a bootstrap CI of a mean does); None when the
    estimate lies outside the band or on a bound (no n makes it hold).

    Each side separately (a percentile CI of a ratio is not symmetric): the side's half-width h at n is
    z_level x SE; the rerun's bound clears the band's with probability POWER when the distance d from the estimate
    to the band's bound is at least (z_level + z_power) x SE', so n' = n (h / d)^2 ((z_level + z_power) / z_level)^2.
    The sample-size formula of a one-sided test, applied to the nearer bound; the other side is taken as
    independent of it, which slightly overstates the power when both bounds are close."""
    distances = [d for d in ((estimate - band_low) if band_low is not None else None,
                             (band_high - estimate) if band_high is not None else None) if d is not None]
    if not distances or min(distances) <= 0:
        return None
    z_level, z_power = norm.ppf(0.5 + stats.LEVEL / 2), norm.ppf(POWER)
    needed = max(((estimate - low) / (estimate - band_low)) ** 2 if band_low is not None else 0.0,
                 ((high - estimate) / (band_high - estimate)) ** 2 if band_high is not None else 0.0)
    return math.ceil(n * needed * ((z_level + z_power) / z_level) ** 2)


def _judge_value(claim: Claim, row: pd.Series) -> tuple[str, str, str, int | None]:
    """(verdict, measured text, interval note, smallest n for "holds") for one evidence row."""
    if claim.rule == "equals":
        text = str(row[claim.column])
        return (HOLDS if text.strip().lower() == claim.equals.strip().lower() else CONTRADICTED), text, "", None
    value = float(row[claim.column]) * claim.scale
    if claim.rule == "costs_quality":
        return (*_costs_quality(claim, row), None)
    inside = (claim.low is None or value >= claim.low) and (claim.high is None or value <= claim.high)
    measured = f"{_number(value)}{claim.unit}"
    ci = CI_COLUMNS.get(claim.column)
    if ci and all(c in row and pd.notna(row[c]) for c in ci[:2]):
        low, high = float(row[ci[0]]) * claim.scale, float(row[ci[1]]) * claim.scale
        measured += f" ({stats.LEVEL:.0%} CI {sig(low)}{claim.unit} to {sig(high)}{claim.unit})"
        n = row.get("n_queries")
        note = f"{ci[2]}{f' over {int(n)} queries' if pd.notna(n) else ''}"
        reachable = holds_from_n(value, low, high, int(n), claim.low, claim.high) if pd.notna(n) else None
        return decide_range(value, low, high, claim.low, claim.high), measured, note, reachable
    spread = _spread(claim, row, value)
    if spread is not None:
        low, high, source = spread
        measured += f" (interquartile spread {sig(low)} to {sig(high)}{claim.unit} over {source})"
        return decide_range(value, low, high, claim.low, claim.high), measured, "", None
    if ci or claim.column in SPREAD_COLUMNS:  # the rule needs an interval this row does not have
        return INCONCLUSIVE, measured + " (no interval recorded)", "the row records no interval, so the rule cannot decide", None
    return (HOLDS if inside else CONTRADICTED), measured, "", None


def _spread(claim: Claim, row: pd.Series, value: float) -> tuple[float, float, str] | None:
    """(low, high, what) of the run's spread of a timed rate: its rounds' quartiles, or the median +- IQR/2 for
    bundles that kept only the IQR."""
    columns = SPREAD_COLUMNS.get(claim.column)
    if not columns:
        return None
    rounds = row.get("rounds")
    over = f"{int(rounds)} timed rounds" if rounds is not None and pd.notna(rounds) else "the timed rounds"
    q1, q3, iqr = (row.get(c) for c in columns)
    if q1 is not None and q3 is not None and pd.notna(q1) and pd.notna(q3):
        return float(q1) * claim.scale, float(q3) * claim.scale, over
    if iqr is not None and pd.notna(iqr):
        half = float(iqr) * claim.scale / 2
        return value - half, value + half, f"{over}, the median +- half the IQR"
    return None


def _number(value: float) -> str:
    """A measured value as a reader quotes it: whole numbers exactly (8,192 tokens, 24 layers), others to three
    significant digits."""
    return f"{int(value):,}" if float(value).is_integer() else sig(value)


def _costs_quality(claim: Claim, row: pd.Series) -> tuple[str, str, str]:
    """"X trades quality for size", decided by RULE_TEXT["costs_quality"]: a paired difference against
    torch-fp32 whose CI lies below -margin is a loss; one whose CI's lower end is at or above -margin is no loss
    worth the name, however significant (with thousands of queries a drift of -0.002 is significant and
    negligible)."""
    diff, low, high = (float(row[c]) for c in ("diff", "diff_ci_low", "diff_ci_high"))
    margin = claim.margin
    if not all(math.isfinite(v) for v in (diff, low, high)):
        return INCONCLUSIVE, f"{diff:+.4f} nDCG@10 against torch-fp32 (no CI recorded)", "the row records no CI"
    verdict = HOLDS if high < -margin else CONTRADICTED if low >= -margin else INCONCLUSIVE
    measured = f"{diff:+.4f} nDCG@10 ({stats.LEVEL:.0%} CI {low:+.4f} to {high:+.4f}) against torch-fp32"
    if verdict == CONTRADICTED:
        measured += f": no loss worth the name (any loss below the {margin:g} margin)" if low < 0 else ": no loss"
    note = (f"paired bootstrap CI over {int(row['n_queries'])} queries; a loss smaller than {margin:g} is no loss"
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
    (:func:`environment.device_profile`: label, GPU class, cores). Tables carry the runs' setup columns
    (:func:`with_setups`) when the claim filters on them.
    """
    base = {"claim": claim.id, "text": claim.text, "note": claim.note, "anchor": None, "where": None,
            "group": claim.group, "rule": claim.rule_text(), "holds_from_n": None}
    table = tables.get(claim.table, pd.DataFrame())
    if claim.rule == "hosted_by_language":
        if weights and all(w == "random" for w in weights.values()):
            return [{**base, "measured": None, "hardware": None, "verdict": NOT_MEASURABLE,
                     "evidence": "every run used random weights (shape twins); a hosted model has no twin"}]
        return _hosted_by_language(claim, base, tables, profiles)
    if claim.rule in ("strict_upgrade", "remains_default"):
        random_runs = sorted(r for r, w in weights.items() if w == "random")
        if claim.needs_trained_weights and random_runs and len(random_runs) == len(weights):
            return [{**base, "measured": None, "hardware": None, "verdict": NOT_MEASURABLE,
                     "evidence": f"run(s) {', '.join(random_runs)} used random weights (shape twins): their "
                                 "scores carry no relevance"}]
        if claim.rule == "remains_default":
            return _remains_default(claim, base, table, tables.get("throughput", pd.DataFrame()), profiles,
                                    tables.get("model"))
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
        verdict, measured, ci_note, reachable = _judge_value(claim, row)
        evidence = f"tables/{claim.table}: {_where(row)}" + (f"; {ci_note}" if ci_note else "")
        reason = _hardware_reason(claim, device, profile)
        if reason:
            verdict, evidence = NOT_TESTED, f"{evidence}; {reason}"
        elif claim.needs_trained_weights and weights.get(row["run_id"]) == "random":
            verdict, evidence = NOT_MEASURABLE, f"{evidence}; random weights"
        out.append({**base, "measured": measured, "hardware": profile.get("label", device), "verdict": verdict,
                    "evidence": evidence, "reason": reason, "anchor": f"{claim.table}-{row.name}",
                    "where": describe_row(row, profile.get("label")), "_row": row,
                    "holds_from_n": reachable if verdict in JUDGED else None})
    if claim.most and "dataset" in rows.columns:
        out += _tallies(claim, base, out, table)
    return [{k: v for k, v in r.items() if k != "_row"} for r in out]


def _tallies(claim: Claim, base: dict, judged: list[dict], table: pd.DataFrame) -> list[dict]:
    """For an "on most tasks" claim: per run, variant and device, the verdict on the per-dataset verdicts
    (MOST_TEXT). The denominator is every dataset the run evaluated (its rows in the unfiltered table), so a
    dataset the filters dropped (too few queries, another setup) counts against the claim and is named."""
    groups: dict[tuple, list[dict]] = {}
    for verdict in judged:
        row = verdict["_row"]
        if row.get("dataset") != MACRO and verdict["verdict"] in JUDGED:
            groups.setdefault((row["run_id"], row.get("variant"), row.get("device")), []).append(verdict)
    out = []
    for (run_id, variant, device), verdicts_ in groups.items():
        run_rows = table[table["run_id"] == run_id] if "run_id" in table else table.iloc[0:0]
        run_datasets = sorted({str(d) for d in run_rows.get("dataset", pd.Series(dtype=str)).dropna()} - {MACRO})
        # One verdict per dataset (a dataset with two evidence rows, e.g. two first stages pooled, counts once:
        # its best-supported verdict, in the order holds > consistent > inconclusive > contradicted).
        per_dataset: dict[str, str] = {}
        for x in verdicts_:
            dataset, label = x["_row"]["dataset"], x["verdict"]
            rank = (HOLDS, CONSISTENT, INCONCLUSIVE, CONTRADICTED)
            if dataset not in per_dataset or rank.index(label) < rank.index(per_dataset[dataset]):
                per_dataset[dataset] = label
        missing = [d for d in run_datasets if d not in per_dataset]
        n = len(per_dataset) + len(missing)
        where = f"the per-dataset verdicts of {variant} on {device}, run {run_id}"
        if n < 2:
            out.append({**base, "claim": f"{claim.id} (most datasets)", "measured": "1 dataset",
                        "hardware": verdicts_[0]["hardware"], "verdict": INCONCLUSIVE,
                        "evidence": f"tables/summary: run {run_id} evaluated one dataset: 'most tasks' needs several",
                        "where": where, "anchor": verdicts_[0]["anchor"], "_row": {}})
            continue
        counts = {v: sorted(d for d, label in per_dataset.items() if label == v) for v in JUDGED}
        holds, contradicted = len(counts[HOLDS]), len(counts[CONTRADICTED])
        verdict = (HOLDS if holds > n / 2 else CONTRADICTED if contradicted >= n / 2
                   else CONSISTENT if holds + len(counts[CONSISTENT]) > n / 2 else INCONCLUSIVE)
        measured = f"holds on {holds} of {n} datasets" + (
            f" ({len(counts[CONSISTENT])} more consistent)" if counts[CONSISTENT] else "")
        evidence = (f"tables/summary: run {run_id}, variant {variant}, device {device}; per-dataset verdicts: "
                    + "; ".join(f"{v} on {', '.join(d)}" for v, d in counts.items() if d)
                    + (f"; no evidence (the claim's filters leave no row) on {', '.join(missing)}" if missing else "")
                    + f"; 'most' read as more than half ({n // 2 + 1} of {n})")
        out.append({**base, "claim": f"{claim.id} (most datasets)", "measured": measured,
                    "hardware": verdicts_[0]["hardware"], "verdict": verdict, "evidence": evidence,
                    "where": where, "anchor": verdicts_[0]["anchor"], "_row": {}})
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


HOLM_ALPHA = 0.05  # family-wise error rate of the Holm step-down over one comparison's datasets


def holm_worse(datasets: pd.DataFrame, alpha: float | None = None) -> list[str]:
    """Datasets where the difference is negative and significant after Holm's step-down adjustment over the
    datasets' two-sided p-values: with ten datasets and two equal rerankers, an unadjusted 5% test would find
    one "significantly worse" dataset by chance about four times in ten."""
    rejected = holm_significant(datasets, alpha)
    return sorted(rejected.loc[rejected["diff"] < 0, "dataset"])


def _strict_upgrade(claim: Claim, base: dict, table: pd.DataFrame, profiles: dict[str, dict[str, Any]]) -> list[dict]:
    """"A is a strict upgrade over B", decided by RULE_TEXT["strict_upgrade"]: non-inferiority on every dataset
    (paired CI's lower end above -delta) and superiority on the macro-average (CI above 0), on enough datasets
    and queries. Not finding a significant loss is not evidence of no loss: an underpowered dataset stays
    inconclusive. Holm-adjusted significant losses (:func:`holm_worse`) are reported beside it."""
    rows, swapped, why_none = _oriented(claim, table)
    if rows.empty:
        return [{**base, "measured": None, "hardware": None, "verdict": NO_MATCH, "evidence": why_none}]
    out = []
    for (run_id, device, variant), group in rows.groupby(["run_id", "device", "variant"], dropna=False):
        datasets = group[group["dataset"] != MACRO]
        overall = group[group["dataset"] == MACRO]
        overall = overall.iloc[0] if len(overall) else (datasets.iloc[0] if len(datasets) == 1 else None)
        profile = profiles.get(f"{run_id}|{device}", {"label": device})
        if overall is None:
            out.append({**base, "measured": None, "hardware": profile.get("label"), "verdict": INCONCLUSIVE,
                        "evidence": f"tables/comparisons: run {run_id} has no macro-average of {variant} on {device} "
                                    f"(the two rerankers were compared on {', '.join(sorted(datasets['dataset']))} only, "
                                    "not on every dataset of the run)"})
            continue
        low, high = float(overall["diff_ci_low"]), float(overall["diff_ci_high"])
        # NaN never passes a test below: a missing CI end or query count is not evidence either way.
        inferior = sorted(datasets.loc[datasets["diff_ci_high"] < -claim.delta, "dataset"])
        not_shown = sorted(datasets.loc[~(datasets["diff_ci_low"] > -claim.delta), "dataset"])
        small = sorted(datasets.loc[~(datasets["n_queries"] >= claim.min_queries), "dataset"])
        enough = len(datasets) >= claim.min_datasets and not small
        if inferior or high < 0:
            verdict = CONTRADICTED
        elif enough and not not_shown and low > 0:
            verdict = HOLDS
        else:
            verdict = INCONCLUSIVE
        worse = holm_worse(datasets)
        level = "the macro-average" if overall["dataset"] == MACRO else overall["dataset"]
        measured = (f"{float(overall['diff']):+.3f} nDCG@10 ({stats.LEVEL:.0%} CI {low:+.3f} to {high:+.3f}) on {level}; "
                    f"not worse by more than {claim.delta:g} (CI above -{claim.delta:g}) on "
                    f"{len(datasets) - len(not_shown)} of {len(datasets)} dataset{'s' if len(datasets) != 1 else ''}"
                    + (f"; worse by more than {claim.delta:g} on {', '.join(inferior)}" if inferior else "")
                    + f"; significantly worse (Holm-adjusted) on {len(worse)}" + (f" ({', '.join(worse)})" if worse else ""))
        shortfalls = ([f"{len(datasets)} dataset{'s' if len(datasets) != 1 else ''}, the rule needs "
                       f"{claim.min_datasets}"] if len(datasets) < claim.min_datasets else []) + (
            [f"fewer than {claim.min_queries} queries on {', '.join(small)}"] if small else [])
        evidence = (f"tables/comparisons: run {run_id}, {variant} on {device}, {claim.filters['reranker']} minus "
                    f"{claim.filters['baseline']} per query on the same candidates"
                    + ("; the run compared them the other way round: difference negated" if swapped else "")
                    + (f"; too little evidence for 'holds': {'; '.join(shortfalls)}" if shortfalls else ""))
        reason = _hardware_reason(claim, str(device), profile)
        out.append({**base, "measured": measured, "hardware": profile.get("label", device),
                    "verdict": NOT_TESTED if reason else verdict, "evidence": evidence + (f"; {reason}" if reason else ""),
                    "anchor": f"comparisons-{overall.name}",
                    "where": f"{claim.filters['reranker']} against {claim.filters['baseline']}, {variant} on "
                             f"{profile.get('label', device)}, run {run_id}"})
    return out


def holm_significant(tests: pd.DataFrame, alpha: float | None = None) -> pd.DataFrame:
    """The rows of ``tests`` (each with a two-sided ``p_value``) rejected by Holm's step-down at ``alpha``."""
    alpha = HOLM_ALPHA if alpha is None else alpha
    ordered = tests.sort_values("p_value", kind="stable")
    kept = []
    for i, (index, row) in enumerate(ordered.iterrows()):
        if pd.isna(row["p_value"]) or row["p_value"] > alpha / (len(ordered) - i):
            break
        kept.append(index)
    return tests.loc[kept]


def cost_ratios(throughput: pd.DataFrame, run_id: str, device: str, variant: str, ours: str, theirs: str) -> str:
    """"0.41x the pairs/s, 1.3x the memory": ``theirs`` against ``ours`` in one run, variant and device (the
    candidates workload's median pairs/s over the timed datasets, and the model's measured memory), or "" where
    either was not timed."""
    if throughput.empty or not {"reranker", "workload", "pairs_per_s"} <= set(throughput.columns):
        return ""
    rows = throughput[(throughput["run_id"] == run_id) & (throughput["device"] == device)
                      & (throughput["variant"] == variant) & (throughput["workload"] == "candidates")]
    speed = rows.groupby("reranker")["pairs_per_s"].median()
    memory_column = "model_memory_mb" if "model_memory_mb" in rows else "peak_rss_mb"
    memory = rows.groupby("reranker")[memory_column].median() if memory_column in rows else pd.Series(dtype=float)
    parts = []
    if ours in speed and theirs in speed and speed[ours] > 0:
        parts.append(f"{speed[theirs] / speed[ours]:.2g}x the pairs/s")
    if ours in memory and theirs in memory and pd.notna(memory[ours]) and memory[ours] > 0 and pd.notna(memory[theirs]):
        parts.append(f"{memory[theirs] / memory[ours]:.2g}x the memory")
    return ", ".join(parts)


def _remains_default(claim: Claim, base: dict, table: pd.DataFrame, throughput: pd.DataFrame,
                     profiles: dict[str, dict[str, Any]], model: pd.DataFrame | None = None) -> list[dict]:
    """"Newer rerankers may surpass it on specific benchmarks, but it remains the default for good enough",
    decided by RULE_TEXT["remains_default"]: one verdict per dataset and one on the macro-average, per run,
    variant and device. The comparison rows hold this reranker minus each newer one; they are turned round
    (newer minus this one) so that "better by delta" reads as a positive lead."""
    rows, swapped, why_none = _oriented(claim, table)
    if rows.empty:
        return [{**base, "measured": None, "hardware": None, "verdict": NO_MATCH, "evidence": why_none}]
    ours = claim.filters["reranker"]
    named = claim.filters["baseline"] if isinstance(claim.filters["baseline"], list) else [claim.filters["baseline"]]
    licences = {}
    if model is not None and not model.empty and {"reranker", "licence"} <= set(model.columns):
        licences = model.dropna(subset=["licence"]).drop_duplicates("reranker").set_index("reranker")["licence"].to_dict()
    lead = rows.assign(lead=-rows["diff"], lead_low=-rows["diff_ci_high"], lead_high=-rows["diff_ci_low"])
    out = []
    for (run_id, device, variant), group in lead.groupby(["run_id", "device", "variant"], dropna=False):
        profile = profiles.get(f"{run_id}|{device}", {"label": device})
        reason = _hardware_reason(claim, str(device), profile)
        per_dataset = group[group["dataset"] != MACRO]
        better = holm_significant(per_dataset)
        better = better[better["lead"] > 0]
        wins = "; ".join(f"{r['baseline']} on {r['dataset']} ({float(r['lead']):+.3f})" for _, r in better.iterrows())
        small = sorted(set(per_dataset.loc[~(per_dataset["n_queries"] >= claim.min_queries), "dataset"]))
        missing = sorted(set(map(str, named)) - set(group["baseline"]))
        n_datasets = per_dataset["dataset"].nunique()
        overall = MACRO if (group["dataset"] == MACRO).any() else (per_dataset["dataset"].iloc[0] if n_datasets == 1 else None)
        for dataset, at in sorted(group.groupby("dataset"), key=lambda item: (item[0] == MACRO, item[0])):
            above = at["lead_low"] > claim.delta
            if dataset == overall:
                significant = set(holm_significant(at)["baseline"])
                if (above & at["baseline"].isin(significant)).any():
                    verdict = CONTRADICTED
                elif (at["lead_high"] < claim.delta).all() and not missing and n_datasets >= claim.min_datasets \
                        and not small:
                    verdict = HOLDS
                else:
                    verdict = INCONCLUSIVE
            else:
                verdict = (CONSISTENT if above.any() else HOLDS
                           if (at["lead_high"] < claim.delta).all() and at["n_queries"].ge(claim.min_queries).all()
                           else INCONCLUSIVE)
            each = []
            for _, r in at.sort_values("lead", ascending=False).iterrows():
                extras = [cost_ratios(throughput, run_id, device, variant, ours, r["baseline"])]
                if is_non_commercial(licences.get(r["baseline"])):
                    extras.append(f"licence {licences[r['baseline']]}: non-commercial")
                extras = [e for e in extras if e]
                each.append(f"{r['baseline']} {float(r['lead']):+.3f} ({stats.LEVEL:.0%} CI {float(r['lead_low']):+.3f} "
                            f"to {float(r['lead_high']):+.3f}{'; ' + '; '.join(extras) if extras else ''})")
            level = "the macro-average" if dataset == MACRO else dataset
            measured = f"newer minus {ours}, nDCG@10 on {level}: " + "; ".join(each)
            if dataset == overall:
                measured += (f". Significantly better on a dataset (Holm-adjusted): {wins}" if wins
                             else ". No newer reranker significantly better on any dataset (Holm-adjusted)")
            shortfalls = (([f"not compared: {', '.join(missing)}"] if missing else [])
                          + ([f"{n_datasets} dataset(s), the rule needs {claim.min_datasets}"]
                             if n_datasets < claim.min_datasets else [])
                          + ([f"fewer than {claim.min_queries} queries on {', '.join(small)}"] if small else [])
                          if dataset == overall else [])
            evidence = (f"tables/comparisons: run {run_id}, {variant} on {device}, {ours} against "
                        f"{', '.join(sorted(at['baseline']))} per query on the same candidates"
                        + ("; the run compared them the other way round: difference negated" if swapped else "")
                        + (f"; too little evidence for 'holds': {'; '.join(shortfalls)}" if shortfalls else ""))
            out.append({**base, "measured": measured, "hardware": profile.get("label", device),
                        "verdict": NOT_TESTED if reason else verdict, "evidence": evidence + (f"; {reason}" if reason else ""),
                        "reason": reason, "anchor": f"comparisons-{at.index[0]}",
                        "where": f"{ours} against newer rerankers on {level}, {variant} on "
                                 f"{profile.get('label', device)}, run {run_id}"})
    return out


HOSTED_MAX_FAILED = 0.02  # a larger share of a group's queries unscored by the API leaves its verdict inconclusive
HOSTED_SAMPLES = 10_000  # bootstrap resamples of a language group's pooled comparison (fixed seed: reproducible)


def _hosted_by_language(claim: Claim, base: dict, tables: dict[str, pd.DataFrame],
                        profiles: dict[str, dict[str, Any]]) -> list[dict]:
    """"A hosted reranker wins on English" / "this one wins on multilingual", decided by RULE_TEXT's
    hosted_by_language: per run, device and named hosted reranker, the paired difference pooled over the language
    group's datasets, from the per-query rows of tables/quality (the comparisons table has no group level)."""
    quality, runs, hosted_table = (tables.get(n, pd.DataFrame()) for n in ("quality", "runs", "hosted"))
    ours = claim.filters["reranker"]
    named = claim.filters["baseline"] if isinstance(claim.filters["baseline"], list) else [claim.filters["baseline"]]
    group_name = "English" if claim.language_group == "english" else "non-English"
    out = []
    if quality.empty or "language" not in quality:
        return [{**base, "measured": None, "hardware": None, "verdict": NO_MATCH,
                 "evidence": "tables/quality has no per-query rows with their language"}]
    rows = quality[(quality["measure"] == "nDCG@10") & (quality["system"] == "rerank")]
    language = rows["language"].fillna("und").astype(str)
    in_group = (language == "en") if claim.language_group == "english" else ~language.isin(["en", "und"])
    rows = rows[in_group]
    for run_id in sorted(set(quality["run_id"])):
        run_rows = rows[rows["run_id"] == run_id]
        mine = run_rows[run_rows["reranker"] == ours]
        if mine.empty:  # the run did not rerank with the claim's reranker (or no dataset of the group)
            continue
        for spec in map(str, named):
            execution = runs[(runs["run_id"] == run_id) & (runs["reranker"] == spec)] if "reranker" in runs else runs.iloc[0:0]
            theirs = run_rows[(run_rows["reranker"] == spec) & (run_rows["variant"] == HOSTED_VARIANT)]
            if theirs.empty:
                if not execution.empty and (execution["status"] != "ok").any():
                    reason = str(execution["reason"].iloc[0])
                    no_key = KEY_NOT_USED in reason  # the stage's words for a key it could not use
                    out.append({**base, "measured": None, "hardware": HOSTED_DEVICE,
                                "verdict": NO_KEY if no_key else NO_MATCH,
                                "evidence": f"tables/runs: run {run_id}, {spec}: {execution['status'].iloc[0]}: {reason}",
                                "reason": reason, "where": f"{spec} against {ours}, run {run_id}"})
                else:
                    asked = hosted_table[(hosted_table["run_id"] == run_id) & (hosted_table["reranker"] == spec)
                                         & hosted_table["dataset"].isin(set(mine["dataset"]))] \
                        if {"run_id", "reranker", "dataset"} <= set(hosted_table.columns) else hosted_table.iloc[0:0]
                    if len(asked):  # it ran, but the API scored none of this group's queries
                        errors = sorted({str(e) for e in asked.get("error", pd.Series(dtype=str)).dropna()})[:2]
                        out.append({**base, "measured": None, "hardware": HOSTED_DEVICE, "verdict": INCONCLUSIVE,
                                    "evidence": f"tables/hosted: run {run_id}, {spec}: all {len(asked)} queries of "
                                                f"the {group_name} datasets failed ({'; '.join(errors) or 'no error recorded'})",
                                    "where": f"{spec} against {ours} on {group_name} datasets, run {run_id}"})
                    else:
                        out.append({**base, "measured": None, "hardware": None, "verdict": NO_MATCH,
                                    "evidence": f"run {run_id}: no {group_name} rows of {spec} (not among "
                                                "reranker.baselines, or no dataset of that language group)"})
                continue
            served = hosted_table[(hosted_table["run_id"] == run_id) & (hosted_table["reranker"] == spec)] \
                if not hosted_table.empty else hosted_table
            dates = sorted({str(d)[:10] for d in served.get("served_utc", pd.Series(dtype=str)).dropna()})
            truncation = (str(served["truncation"].dropna().iloc[0]) if "truncation" in served
                          and served["truncation"].notna().any() else "not recorded")
            as_served = f"as served on {dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''}" if dates else "served date not recorded"
            for device in sorted(set(mine["device"])):
                reference = reference_variant(str(device))
                mine_here = mine[(mine["device"] == device) & (mine["variant"] == reference)]
                a = theirs.set_index(["dataset", "query_id"])["value"]
                b = mine_here.set_index(["dataset", "query_id"])["value"]
                common = a.index.intersection(b.index).sort_values()
                if common.empty:
                    continue
                c = stats.paired_comparison(a.loc[common].to_numpy(), b.loc[common].to_numpy(), HOSTED_SAMPLES, 0,
                                            strata=common.get_level_values("dataset").to_numpy())
                low, high, diff = c.lift_abs.low, c.lift_abs.high, c.lift_abs.estimate
                claimed_positive = claim.expect == "baseline_better"
                datasets = sorted(set(common.get_level_values("dataset")))
                group_rows = served[served["dataset"].isin(set(mine_here["dataset"]))] if "dataset" in served else served
                failed = int((group_rows["status"] != "ok").sum()) if "status" in group_rows else 0
                failed_share = failed / len(group_rows) if len(group_rows) else 0.0
                if failed_share > HOSTED_MAX_FAILED:
                    verdict = INCONCLUSIVE
                elif (low > 0 and claimed_positive) or (high < 0 and not claimed_positive):
                    verdict = HOLDS
                elif (high < 0 and claimed_positive) or (low > 0 and not claimed_positive):
                    verdict = CONTRADICTED
                else:
                    verdict = INCONCLUSIVE
                profile = profiles.get(f"{run_id}|{device}", {"label": device})
                out.append({**base, "measured": (f"{spec} minus {ours} ({reference}), nDCG@10 over {group_name} "
                                                 f"datasets ({', '.join(datasets)}; {c.n} queries): {diff:+.3f} "
                                                 f"({stats.LEVEL:.0%} CI {low:+.3f} to {high:+.3f}); {spec} {as_served}"),
                            "hardware": f"{HOSTED_DEVICE} (hosted) against {profile.get('label', device)}",
                            "verdict": verdict,
                            "evidence": (f"tables/quality: run {run_id}, per-query nDCG@10 of {spec} ({HOSTED_VARIANT}) "
                                         f"and {ours} ({reference} on {device}) on the same candidates; {spec} read "
                                         f"each document up to its provider's own limit ({truncation}), {ours} up to "
                                         "the run's reranker.max_length tokens"
                                         + (f"; {failed} of the group's {len(group_rows)} queries the API did not "
                                            f"score are left out (tables/hosted)" if failed else "")
                                         + (f", more than {HOSTED_MAX_FAILED:.0%}: too many for a verdict"
                                            if failed_share > HOSTED_MAX_FAILED else "")),
                            # the report's hosted table: the same sign (hosted minus this reranker), per run
                            "anchor": "hosted-table",
                            "where": f"{spec} against {ours} on {group_name} datasets, run {run_id}"})
    return out or [{**base, "measured": None, "hardware": None, "verdict": NO_MATCH,
                    "evidence": f"no run compared {', '.join(map(str, named))} with {ours}"}]


def what_would_change(claim: Claim, verdict: dict) -> str:
    """What measurement would change a verdict: the run it needs, or what the evidence would have to show."""
    label = verdict["verdict"]
    if label == NO_KEY:
        return ("the provider's key in the environment (COHERE_API_KEY, VOYAGE_API_KEY or JINA_API_KEY, never in a "
                "parameter file), then that execution alone: python -m runlocalai_bench.run.execute rerank BUNDLE "
                "hosted network <api:...> and runlocalai-bench finalize BUNDLE (an interrupted run: --resume runs it)")
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
    if claim.rule == "hosted_by_language" and label in JUDGED:
        side = "below" if claim.expect == "baseline_better" else "above"
        return {HOLDS: f"a run (another date: a hosted model can change under its name) whose CI lies {side} 0",
                CONTRADICTED: "a run whose CI lies on the claimed side of 0",
                INCONCLUSIVE: "more queries of the group's datasets, narrowing the CI to one side of 0, and the "
                              "API's failed queries asked again (tables/hosted)"}[label]
    if claim.rule == "remains_default":
        return {HOLDS: f"a newer reranker whose lead's CI lies above +{claim.delta:g} (overall: and significant)",
                CONSISTENT: f"a run where no newer reranker's lead CI on this dataset lies above +{claim.delta:g}",
                CONTRADICTED: f"a run where no newer reranker's lead CI lies above +{claim.delta:g}",
                INCONCLUSIVE: f"every named reranker compared (trust_remote_code pinned where one needs it), and more "
                              f"queries or datasets ({claim.min_datasets}+ of {claim.min_queries}+ queries), "
                              f"narrowing every lead's CI to one side of +{claim.delta:g}"}[label]
    if claim.rule == "strict_upgrade":
        return {HOLDS: f"a dataset where it is worse by more than {claim.delta:g}, or an overall CI reaching 0",
                CONTRADICTED: f"no dataset worse by more than {claim.delta:g} and an overall CI above 0",
                INCONCLUSIVE: f"at least {claim.min_datasets} datasets of {claim.min_queries}+ queries each, every "
                              f"CI's lower end above -{claim.delta:g} and the overall CI above 0"}[label]
    if claim.rule == "equals":
        return "a different checkpoint" if label == HOLDS else f"a checkpoint whose {claim.column} is {claim.equals}"
    if claim.rule == "costs_quality":
        return {HOLDS: f"a run where the loss's CI reaches -{claim.margin:g} (more queries, other datasets)",
                CONTRADICTED: f"a run where the CI lies below -{claim.margin:g} (a loss larger than the margin)",
                INCONCLUSIVE: f"more queries, narrowing the CI to one side of -{claim.margin:g}"}[label]
    bounds = " and ".join(b for b in (f"{claim.low:g}{claim.unit}" if claim.low is not None else "",
                                      f"{claim.high:g}{claim.unit}" if claim.high is not None else "") if b)
    if label in (INCONCLUSIVE, CONSISTENT):
        if claim.column in SPREAD_COLUMNS:
            return f"a steadier run (more timed rounds on a quiet machine), its spread on one side of {bounds}"
        needed = verdict.get("holds_from_n")
        if needed is not None and not pd.isna(needed):
            return (f"about {int(needed):,} queries ('holds' with {POWER:.0%} probability if the estimate stays), "
                    f"or a run whose interval falls on one side of {bounds}")
        return f"a run whose estimate moves inside {bounds} (at this estimate no number of queries makes it hold)" \
            if label == INCONCLUSIVE else f"more queries or datasets, narrowing the interval to one side of {bounds}"
    if label == HOLDS:
        return f"a measurement (on other hardware, datasets or settings the claim covers) outside {bounds}"
    return f"a measurement inside the claimed range ({bounds})"


def with_setups(tables: dict[str, pd.DataFrame], setups: dict[str, dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """The quality tables with each run's setup columns (:data:`SETUP_COLUMNS`) joined on run_id, so a claim can
    ask for the setup it is about (a 512-token first stage, not cpu.yaml's 256)."""
    out = dict(tables)
    for name in ("summary", "comparisons", "depth"):
        frame = tables.get(name)
        if frame is None or frame.empty or "run_id" not in frame:
            continue
        frame = frame.copy()
        for column in SETUP_COLUMNS:
            frame[column] = frame["run_id"].map(lambda run: setups.get(run, {}).get(column))
        out[name] = frame
    return out


def verdicts(claims: ClaimsFile, tables: dict[str, pd.DataFrame], weights: dict[str, str],
             profiles: dict[str, dict[str, Any]], setups: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Every claim judged; ``setups`` maps run_id to its setup (:data:`SETUP_COLUMNS`)."""
    tables = with_setups(tables, setups or {})
    rows = []
    for claim in claims.claims:
        for row in judge(claim, tables, weights, profiles):
            rows.append({**row, "would_change": what_would_change(claim, row)})
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)
