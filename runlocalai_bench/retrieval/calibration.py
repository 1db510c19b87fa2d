"""Where static quantization's calibration queries come from: never the queries a run evaluates.

Static int8 (openvino-int8) is one model for every dataset of a run, calibrated on a seeded sample of pairs. The
pairs come from the first source that exists, in this order, and each dataset's record says which it used:

1. **train split**: the dataset's own train split where ir_datasets has one (``beir/scifact/train``,
   ``beir/nfcorpus/train``, ``beir/fiqa/train``, ``miracl/sw/train``, ...), same corpus, disjoint queries;
2. **another dataset of the run**: a dataset without a train split (arguana, scidocs, trec-covid, miracl/yo)
   contributes nothing itself, and the variant calibrates on the train splits of the run's other datasets;
3. **unevaluated queries**: only when no dataset of the run has a train split, queries of the evaluated split
   that the run does not evaluate (no judgment, or left out of ``queries.n``'s sample).

Only when none of these exists does the variant become a recorded skip, and its reason says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.irds import load_queries, train_split_of
from runlocalai_bench.data.specs import DatasetKind, DatasetSpec

TRAIN_SPLIT = "train split"
OTHER_DATASETS = "other datasets of the run"
UNEVALUATED = "unevaluated queries"
NONE = "none"


@dataclass
class CalibrationSource:
    """One dataset's calibration queries and where they came from."""

    kind: str  # TRAIN_SPLIT | OTHER_DATASETS | UNEVALUATED | NONE
    source: str  # what a reader can look up: "ir_datasets:beir/scifact/train", "beir/arguana: ..." 
    queries: dict[str, str]  # query id -> text (empty for OTHER_DATASETS and NONE)
    excluded: int = 0  # queries left out because they are evaluated ones (same id and text, or same text)

    def record(self) -> dict:
        record = {"kind": self.kind, "source": self.source, "n_queries": len(self.queries) - self.excluded}
        return {**record, "excluded_as_evaluated": self.excluded} if self.excluded else record


def seeded_subset(ids: list[str], n: int, seed: int) -> list[str]:
    """Up to ``n`` of ``ids`` (sorted), the same on any machine for the same seed."""
    ids = sorted(ids)
    if len(ids) <= n:
        return ids
    picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    return sorted(ids[i] for i in picked)


def train_source(spec: DatasetSpec, n: int, seed: int) -> CalibrationSource | None:
    """Up to ``n`` queries of the dataset's train split, or None when ir_datasets has none for it."""
    if spec.kind is not DatasetKind.IR_DATASETS:
        return None
    train = train_split_of(spec.text)
    if train is None:
        return None
    queries = load_queries(train)
    picked = seeded_subset(list(queries), n, seed)
    return CalibrationSource(TRAIN_SPLIT, f"ir_datasets:{train}", {q: queries[q] for q in picked}) if picked else None


def unevaluated_source(spec: DatasetSpec, collection: Collection, evaluated: list[str], n: int,
                       seed: int) -> CalibrationSource | None:
    """Up to ``n`` queries of the evaluated split that the run does not evaluate, or None when there are none."""
    picked = seeded_subset(sorted(set(collection.queries) - set(evaluated)), n, seed)
    if not picked:
        return None
    return CalibrationSource(UNEVALUATED, f"{spec.label}: queries without a judgment or outside the sample",
                             {q: collection.queries[q] for q in picked})


def choose_sources(train: dict[str, CalibrationSource | None],
                   unevaluated: dict[str, CalibrationSource | None]) -> dict[str, CalibrationSource]:
    """Each dataset's calibration source by the order in the module docstring (keys: dataset labels)."""
    tier = train if any(train.values()) else unevaluated if any(unevaluated.values()) else {}
    used = sorted(label for label, source in tier.items() if source)
    chosen: dict[str, CalibrationSource] = {}
    for label in train:
        own = tier.get(label)
        if own:
            chosen[label] = own
        elif used:
            kind = "train splits" if tier is train else "unevaluated queries"
            chosen[label] = CalibrationSource(OTHER_DATASETS, f"{kind} of {', '.join(used)}", {})
        else:
            chosen[label] = CalibrationSource(
                NONE, "no train split in ir_datasets and every query of the split is evaluated", {})
    return chosen


def describe(records: dict[str, dict]) -> str:
    """One sentence for a calibrated variant's record: which datasets' queries it calibrated on."""
    own = [f"{label} ({r['source']}, {r['n_queries']} queries)" for label, r in records.items()
           if r["kind"] in (TRAIN_SPLIT, UNEVALUATED)]
    if not own:
        return "no calibration source in this run"
    return "calibrated on candidates of " + "; ".join(own)
