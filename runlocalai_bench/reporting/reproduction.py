"""Reproduction targets: each measured row that has a published counterpart, checked against it.

``params/references/*.yaml`` hold published nDCG@10 values, each file one (model, dataset family) source with
its protocol and tolerance, quoted from where it was published. Every report reads them and writes
``tables/reproduction``: for each first-stage and reranked row of ``tables/summary`` that matches an entry
(dataset, first-stage model, reranker), the measured value with its CI, the published one, the difference
with its CI, a verdict, and the protocol differences between the run and the reference (query sample, max
lengths, rerank depth, identical-id rule, query instruction).

Verdicts (the tolerance is absolute nDCG@10, stated in each file):

- ``reproduces``: the run evaluated the reference's whole query set, ``|difference| <= tolerance``, and no
  protocol difference was found; ``within tolerance (protocol differs)`` when one was (it is listed);
- ``differs``: the whole query set and ``|difference| > tolerance``, or a sample whose difference CI lies
  entirely outside ``[-tolerance, +tolerance]``;
- ``consistent (sample)``: a query sample whose difference CI overlaps the tolerance band: a sample cannot
  show that the whole set reproduces, only that it does not contradict it;
- ``not comparable``: the run's first stage searched a reduced corpus (a time budget, run/budget.py): fewer
  distractors raise nDCG, so no difference to a full-corpus figure is computed; the row says so instead of
  leaving the reference out silently.

A reranker row is compared by its *lift* over its own first stage where the file says ``compare_reranked:
lift`` (when the published first stage is not one this run can reproduce, e.g. bge-reranker-v2-m3's MIRACL
table, which reranked bge-m3 before its July 2024 correction).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runlocalai_bench.data.protocol import protocol_for
from runlocalai_bench.data.specs import full_label, is_reduced
from runlocalai_bench.params import ParamsError, format_validation_error
from runlocalai_bench.paths import references_path
from runlocalai_bench.rerankers.hosted import PRICES_FILE
from runlocalai_bench.rerankers.registry import reference_variant
from runlocalai_bench.results.tables import COLUMNS

MEASURE = "nDCG@10"
REPRODUCES, DIFFERS, CONSISTENT = "reproduces", "differs", "consistent (sample)"
WITHIN = "within tolerance (protocol differs)"
NOT_COMPARABLE = "not comparable"
REDUCED_DIFFERENCE = "reduced corpus: not comparable"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSetting(_Strict):
    model: str
    aliases: list[str] = Field(default_factory=list, description="other specs of the same weights")
    max_length: int | None = None
    depth: int | None = None
    instruction: str | None = None

    @property
    def specs(self) -> list[str]:
        return [self.model, *self.aliases]


class Entry(_Strict):
    dataset: str
    aliases: list[str] = Field(default_factory=list, description="other dataset labels of the same data")
    first_stage: float | None = Field(default=None, ge=0, le=1, description="published first-stage nDCG@10")
    reranked: float | None = Field(default=None, ge=0, le=1, description="published reranked nDCG@10")
    n_queries: int | None = Field(default=None, gt=0)
    note: str | None = None


class ReferenceFile(_Strict):
    source: str
    protocol: str
    tolerance: float = Field(gt=0, le=0.1)
    first_stage: ModelSetting
    reranker: ModelSetting | None = None
    compare_first_stage: bool = True
    compare_reranked: Literal["value", "lift"] = "value"
    identical_ids_ignored: list[str] | Literal["all"] = Field(default_factory=list)
    note: str | None = None
    entries: list[Entry] = Field(min_length=1)


def load_references(setting: str | None) -> dict[str, ReferenceFile]:
    """Every reference file (by file name) under ``setting``; a malformed one is an error naming its key."""
    path = references_path(setting)
    if path is None or not path.exists():
        return {}
    # prices.yaml sits beside the reference files (the hosted rerankers' prices, rerankers/hosted.py): not one of them.
    files = sorted(f for f in path.glob("*.yaml") if f.name != PRICES_FILE) if path.is_dir() else [path]
    loaded = {}
    for file in files:
        try:
            loaded[file.name] = ReferenceFile.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
        except ValidationError as exc:
            raise ParamsError(format_validation_error(str(file), exc, ReferenceFile)) from None
    return loaded


def _first_stage_model(label: str) -> str | None:
    return label.split(":", 1)[1] if isinstance(label, str) and label.startswith("dense:") else None


def _verdict(diff: float, low: float, high: float, tolerance: float, whole_set: bool) -> str:
    if whole_set:
        return REPRODUCES if abs(diff) <= tolerance + 1e-12 else DIFFERS
    if math.isnan(low) or math.isnan(high):
        return REPRODUCES if abs(diff) <= tolerance else DIFFERS
    return DIFFERS if (low > tolerance or high < -tolerance) else CONSISTENT


def _differences(ref: ReferenceFile, entry: Entry, row: pd.Series, run: dict, reranked: bool) -> list[str]:
    found = []
    n = int(row["n_queries"])
    if entry.n_queries and n != entry.n_queries:
        found.append(f"{n:,} of the reference's {entry.n_queries:,} queries")
    first = run.get("first_stage") or {}
    if ref.first_stage.max_length and first.get("max_length") and first["max_length"] != ref.first_stage.max_length:
        found.append(f"first stage max length {first['max_length']:,} tokens (reference {ref.first_stage.max_length:,})")
    if (first.get("query_prompt") or None) != ref.first_stage.instruction:
        run_prompt = first.get("query_prompt")
        found.append(f"query instruction {run_prompt!r} (reference {ref.first_stage.instruction!r})" if run_prompt
                     else f"no query instruction (reference {ref.first_stage.instruction!r})")
    if reranked and ref.reranker:
        rr = run.get("reranker") or {}
        if ref.reranker.max_length and rr.get("max_length") and rr["max_length"] != ref.reranker.max_length:
            found.append(f"reranker max length {rr['max_length']:,} tokens (reference {ref.reranker.max_length:,})")
        depth = row.get("rerank_depth")
        if ref.reranker.depth and pd.notna(depth) and int(depth) != ref.reranker.depth:
            found.append(f"reranked top {int(depth)} (reference top {ref.reranker.depth})")
    ignored_there = ref.identical_ids_ignored == "all" or entry.dataset in ref.identical_ids_ignored
    ignored_here = protocol_for(str(row["dataset"]), str(row["dataset"]).startswith(("beir/", "miracl/"))).ignore_identical_ids
    if ignored_there != ignored_here:
        found.append("identical ids " + ("kept here, ignored by the reference" if ignored_there
                                         else "ignored here, kept by the reference"))
    return found


def _run_settings(bundle_root: Path, run_id: str) -> dict:
    """The parameters of ``run_id`` as its bundle stored them (a pooled bundle keeps each run's)."""
    for path in (bundle_root / "params" / f"{run_id}.yaml", bundle_root / "params.yaml"):
        if path.is_file():
            return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {}


def reproduction_table(summary: pd.DataFrame, references: dict[str, ReferenceFile], bundle_root: Path) -> pd.DataFrame:
    """``tables/reproduction``: every summary row with a published counterpart (module docstring)."""
    rows = []
    rows_of = summary[summary["measure"] == MEASURE] if not summary.empty else summary
    for name, ref in references.items():
        for entry in ref.entries:
            datasets = {entry.dataset, *entry.aliases}
            here = rows_of[rows_of["dataset"].map(full_label).isin(datasets)]
            here = here[here["first_stage"].map(_first_stage_model).isin(ref.first_stage.specs)]
            for _, row in here.iterrows():
                run = _run_settings(bundle_root, str(row["run_id"]))
                reranked = row["system"] == "rerank"
                if reranked:
                    if entry.reranked is None or ref.reranker is None or row["reranker"] not in ref.reranker.specs:
                        continue
                    if row["variant"] != reference_variant(str(row["device"])):
                        continue  # the reference variant of its device: the others are in tables/comparisons
                    if ref.compare_reranked == "lift":
                        if entry.first_stage is None:
                            continue
                        published = entry.reranked - entry.first_stage
                        measured, low, high = row["lift_abs"], row["lift_ci_low"], row["lift_ci_high"]
                        compared = f"{MEASURE} lift over the first stage"
                    else:
                        published, measured, low, high = entry.reranked, row["mean"], row["ci_low"], row["ci_high"]
                        compared = MEASURE
                elif row["system"] in ("oracle",) or entry.first_stage is None or not ref.compare_first_stage:
                    continue
                else:
                    published, measured, low, high = entry.first_stage, row["mean"], row["ci_low"], row["ci_high"]
                    compared = MEASURE
                measured, low, high = float(measured), float(low), float(high)
                whole = entry.n_queries is not None and int(row["n_queries"]) == entry.n_queries
                if is_reduced(str(row["dataset"])):  # never a difference to a full-corpus figure
                    diff, verdict, differences = math.nan, NOT_COMPARABLE, REDUCED_DIFFERENCE
                    published_low = published_high = math.nan
                else:
                    diff = measured - published
                    verdict = _verdict(diff, low - published, high - published, ref.tolerance, whole)
                    differences = "; ".join(_differences(ref, entry, row, run, reranked)) or "none"
                    published_low, published_high = low - published, high - published
                rows.append({
                    "run_id": row["run_id"], "dataset": row["dataset"], "system": row["system"],
                    "first_stage": row["first_stage"], "reranker": row["reranker"] if reranked else None,
                    "variant": row["variant"] if reranked else None, "device": row["device"] if reranked else None,
                    "compared": compared, "n_queries": int(row["n_queries"]), "measured": measured,
                    "measured_ci_low": low, "measured_ci_high": high, "published": published, "diff": diff,
                    "diff_ci_low": published_low, "diff_ci_high": published_high, "tolerance": ref.tolerance,
                    "verdict": verdict if verdict != REPRODUCES or differences == "none" else WITHIN,
                    "differences": differences,
                    "reference": name, "source": ref.source, "note": entry.note or ref.note or ""})
    frame = pd.DataFrame(rows, columns=COLUMNS["reproduction"] + ["note"])
    return frame.astype({"n_queries": "Int64"})


def keep_reference_files(references: dict[str, ReferenceFile], used: set[str], setting: str | None,
                         bundle_root: Path) -> None:
    """Copy the reference files a report used into ``<bundle>/references/``: the bundle says what it was
    checked against even after the repository's files change."""
    path = references_path(setting)
    if path is None or not used:
        return
    target = bundle_root / "references"
    target.mkdir(exist_ok=True)
    for name in sorted(used):
        source = path / name if path.is_dir() else path
        if source.is_file():
            shutil.copyfile(source, target / name)
