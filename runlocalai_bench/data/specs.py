"""Dataset specs: the one place a ``dataset`` string from the parameters is parsed into a typed value.

A spec is one of three kinds, told apart once here and carried as :class:`DatasetSpec` from then on:

- ``fixture:NAME``: a small collection shipped in this package (``data/fixtures/NAME``);
- a BEIR folder (``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``), given as a path;
- an ir_datasets id (``beir/scifact/test``).
"""

from __future__ import annotations

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
