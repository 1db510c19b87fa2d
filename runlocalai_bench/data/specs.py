"""Dataset specs: the one place a ``dataset`` string from the parameters is parsed into a typed value.

A spec is one of three kinds, told apart once here and carried as :class:`DatasetSpec` from then on:

- ``fixture:NAME``: a small collection shipped in this package (``data/fixtures/NAME``);
- a BEIR folder (``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``), given as a path;
- an ir_datasets id (``beir/scifact/test``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from runlocalai_bench.data.beir import corpus_file, load_beir_folder
from runlocalai_bench.data.collection import Collection
from runlocalai_bench.data.irds import load_ir_datasets

FIXTURES_DIR = Path(__file__).parent / "fixtures"
FIXTURE_PREFIX = "fixture:"


class DatasetKind(str, Enum):
    FIXTURE = "fixture"
    FOLDER = "folder"
    IR_DATASETS = "ir_datasets"


# What a download requires beyond the network, per ir_datasets id prefix (checked against ir_datasets 0.6.3's
# download configuration and documentation). BEIR's zips and MIRACL's files need no token; MIRACL's topics come
# from a mirror that needs no login.
ACCESS_NOTES = {
    "msmarco-passage": "MS MARCO's terms of use apply (non-commercial research; https://microsoft.github.io/msmarco/); "
                       "ir_datasets prints its data usage agreement and downloads without a token: running it accepts that agreement",
    "msmarco-document": "MS MARCO's terms of use apply (non-commercial research; https://microsoft.github.io/msmarco/); "
                        "ir_datasets prints its data usage agreement and downloads without a token: running it accepts that agreement",
}


def access_note(spec: "DatasetSpec") -> str | None:
    """A one-line note when ``spec``'s download needs a token or an accepted licence, else None."""
    if spec.kind is not DatasetKind.IR_DATASETS:
        return None
    return next((note for prefix, note in ACCESS_NOTES.items() if spec.text.startswith(prefix + "/")), None)


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES_DIR.iterdir() if (p / "queries.jsonl").exists())


@dataclass(frozen=True)
class DatasetSpec:
    """A validated dataset spec. ``text`` is what the parameters store (folders made absolute)."""

    kind: DatasetKind
    text: str

    def __str__(self) -> str:
        return self.text

    @classmethod
    def parse(cls, value: "str | DatasetSpec") -> "DatasetSpec":
        """Validate a spec's form; folders become absolute paths. Raises ValueError naming what is accepted."""
        if isinstance(value, DatasetSpec):
            return value
        if not isinstance(value, str):
            raise ValueError(f"a dataset spec is a string, got {type(value).__name__}")
        spec = value
        if spec.startswith(FIXTURE_PREFIX):
            name = spec[len(FIXTURE_PREFIX):]
            if name not in fixture_names():
                raise ValueError(f"unknown fixture {name!r}; accepted: {', '.join(FIXTURE_PREFIX + n for n in fixture_names())}")
            return cls(DatasetKind.FIXTURE, spec)
        path = Path(spec).expanduser()
        if spec.startswith(("/", ".", "~")) or path.exists():
            if not path.is_dir():
                raise ValueError(f"{spec!r} is not a folder (a BEIR folder holds corpus.jsonl[.gz], queries.jsonl, qrels/)")
            corpus_file(path)
            return cls(DatasetKind.FOLDER, str(path.resolve()))
        import ir_datasets  # its registry takes a moment to import; only ids need it

        if spec not in ir_datasets.registry:
            raise ValueError(
                f"{spec!r} is neither an ir_datasets id (e.g. beir/scifact/test), an existing BEIR folder, "
                f"nor one of {', '.join(FIXTURE_PREFIX + n for n in fixture_names())}"
            )
        return cls(DatasetKind.IR_DATASETS, spec)

    @property
    def label(self) -> str:
        """Short name for tables and figures: a folder's name, the spec itself otherwise. Never a local path."""
        return Path(self.text).name if self.kind is DatasetKind.FOLDER else self.text

    @property
    def slug(self) -> str:
        """The label as a file-name-safe string (run files and parts are named per dataset)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.label).strip("-")

    def has_scoreddocs(self) -> bool:
        """Whether ir_datasets ships candidate lists for this dataset (``scoreddocs``)."""
        if self.kind is not DatasetKind.IR_DATASETS:
            return False
        import ir_datasets

        return ir_datasets.load(self.text).has_scoreddocs()

    def load(self, split: str = "test") -> Collection:
        """Read the collection (``split`` picks a BEIR folder's qrels; an ir_datasets id names its own)."""
        if self.kind is DatasetKind.FIXTURE:
            folder = FIXTURES_DIR / self.text[len(FIXTURE_PREFIX):]
            collection = load_beir_folder(folder, split)
            collection.spec, collection.source = self.text, f"runlocalai_bench/data/fixtures/{folder.name}"
            return collection
        if self.kind is DatasetKind.FOLDER:
            return load_beir_folder(Path(self.text), split)
        return load_ir_datasets(self.text, split)


def load_collection(spec: "str | DatasetSpec", split: str = "test") -> Collection:
    """Parse ``spec`` and load it: the one-call form tests and notebooks use."""
    return DatasetSpec.parse(spec).load(split)


# A dataset whose first stage ran on a reduced corpus (run/budget.py, retrieval/reduced.py) carries this in the
# `dataset` column of every quality row, so that every table, figure and report line names it and nothing
# matches it with a full-corpus reference by accident.
REDUCED_SUFFIX = " (reduced corpus)"


def reduced_label(label: str) -> str:
    return label if label.endswith(REDUCED_SUFFIX) else label + REDUCED_SUFFIX


def full_label(label: str) -> str:
    """The dataset's own label, without the reduced-corpus mark."""
    return label.removesuffix(REDUCED_SUFFIX)


def is_reduced(label: str) -> bool:
    return str(label).endswith(REDUCED_SUFFIX)
