"""Paths inside a results bundle ``results/<run_id>/``, in one place so notebooks and runner agree."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runlocalai_bench.data.specs import reduced_label
from runlocalai_bench.devices import with_class
from runlocalai_bench.params import Params, read_params
from runlocalai_bench.paths import scrub


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON, with local absolute paths rewritten (see :func:`paths.scrub`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(scrub(json.dumps(data, indent=2, sort_keys=False, default=str)) + "\n", encoding="utf-8")
    staging.replace(path)  # atomic: a killed execution leaves the old record or the new one, never half of one


def model_slug(spec: str) -> str:
    """A model spec as a file-name part: 'cross-encoder/ms-marco-MiniLM-L-12-v2' -> 'cross-encoder--ms-marco-MiniLM-L-12-v2'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", spec.replace("/", "--")).strip("-")


def meta_device(meta: dict) -> str:
    """The device a stage record's rows carry: the device it ran on, with its Ray node class (``cpu@epyc``)."""
    return with_class(meta["device"], meta.get("node_class"))


def rerank_execution(variant: str, device: str, baseline: str | None = None) -> str:
    """The name one execution's files carry: ``rerank--<variant>--<device>`` for the reranker under test,
    ``baseline--<model>--<variant>--<device>`` for a comparison reranker."""
    if baseline:
        return f"baseline--{model_slug(baseline)}--{variant}--{device.replace(':', '')}"
    return f"rerank--{variant}--{device.replace(':', '')}"


@dataclass(frozen=True)
class Bundle:
    root: Path

    @property
    def params_path(self) -> Path:
        return self.root / "params.yaml"

    @property
    def environment_path(self) -> Path:
        return self.root / "environment.json"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def stages_dir(self) -> Path:
        """Per-execution metadata (model fingerprints, timings, skips) as JSON."""
        return self.root / "stages"

    @property
    def budget_path(self) -> Path:
        """The run's budget allocation (run/budget.py): written once before the first execution, read by every
        stage, kept on --resume so the samples do not change midway."""
        return self.root / "budget.json"

    def budget(self) -> dict[str, Any] | None:
        """The budget allocation, or None for a run without a budget."""
        path = self.budget_path
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def quality_label(self, label: str) -> str:
        """The ``dataset`` value this dataset's rows carry in every table: its label, marked when a budget ran its
        first stage on a reduced corpus (data/specs.py)."""
        kind = ((self.budget() or {}).get("corpora", {}).get(label) or {}).get("kind", "full")
        return reduced_label(label) if kind == "reduced" else label

    def params(self) -> Params:
        return read_params(self.params_path)

    def environment(self) -> dict[str, Any]:
        return json.loads(self.environment_path.read_text(encoding="utf-8"))

    def dataset_runs(self, dataset_slug: str) -> Path:
        """Run files of one dataset: ``runs/<dataset>/``."""
        return self.runs_dir / dataset_slug

    def first_stage_run(self, dataset_slug: str) -> Path:
        return self.dataset_runs(dataset_slug) / "first_stage.trec"

    def calibration_run(self, dataset_slug: str) -> Path:
        """Candidates of queries the run does not evaluate: what static quantization calibrates on."""
        return self.dataset_runs(dataset_slug) / "calibration.trec"

    def calibration_queries(self, dataset_slug: str) -> Path:
        """The calibration queries' texts and where they came from (a train split's queries are not in the
        evaluated collection): ``{kind, source, n_queries, queries: {id: text}}``."""
        return self.dataset_runs(dataset_slug) / "calibration.queries.json"

    def rerank_run(self, dataset_slug: str, execution: str) -> Path:
        return self.dataset_runs(dataset_slug) / f"{execution}.trec"

    def rerank_scores(self, dataset_slug: str, execution: str) -> Path:
        """Raw reranker scores of every scored pair (``query_id, doc_id, score``)."""
        return self.dataset_runs(dataset_slug) / f"{execution}.scores.parquet"

    def stage_meta(self, name: str) -> dict[str, Any]:
        path = self.stages_dir / f"{name}.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def all_stage_meta(self) -> dict[str, dict[str, Any]]:
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.stages_dir.glob("*.json"))}
