"""Test collections: one loader for an ir_datasets id, a BEIR folder, or a shipped ``fixture:NAME``.

Everything downstream sees the same :class:`Collection`, so the ir_datasets path, the BEIR folder path and
the offline fixture are one code path after loading. Malformed input fails with ``file:line: problem``
before anything is written.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Iterator, NamedTuple

import numpy as np

FIXTURES_DIR = Path(__file__).parent / "fixtures"
FIXTURE_PREFIX = "fixture:"


class CollectionError(ValueError):
    """A collection that cannot be used: the message names the file (and line) at fault."""


class Document(NamedTuple):
    doc_id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """BEIR convention: ``title + " " + text``, stripped (an empty title leaves just the text)."""
        return f"{self.title} {self.text}".strip()


@dataclass
class Collection:
    spec: str
    split: str
    docs: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    source: str
    content_hash: str = field(default="")

    def __post_init__(self) -> None:
        if not self.content_hash:
            self.content_hash = corpus_hash(self.docs.values())

    @property
    def judged_query_ids(self) -> list[str]:
        """Queries with at least one judgment, sorted: the population that is sampled and evaluated."""
        return sorted(q for q in self.qrels if q in self.queries)

    def sample_queries(self, n: int | None, seed: int) -> list[str]:
        """Deterministic sample of judged queries (same n and seed give the same ids on any machine)."""
        ids = self.judged_query_ids
        if n is None or n >= len(ids):
            return ids
        picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
        return sorted(ids[i] for i in picked)


def corpus_hash(docs: Iterable[Document]) -> str:
    """Content hash of the corpus, independent of file format and order (keys the embedding cache)."""
    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: d.doc_id):
        for part in doc:
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- specs


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES_DIR.iterdir() if (p / "queries.jsonl").exists())


def check_dataset_spec(spec: str) -> str:
    """Validate a dataset spec's form; return it normalised (folders become absolute paths)."""
    if spec.startswith(FIXTURE_PREFIX):
        name = spec[len(FIXTURE_PREFIX):]
        if name not in fixture_names():
            raise ValueError(f"unknown fixture {name!r}; accepted: {', '.join('fixture:' + n for n in fixture_names())}")
        return spec
    path = Path(spec).expanduser()
    looks_like_path = spec.startswith(("/", ".", "~")) or path.exists()
    if looks_like_path:
        if not path.is_dir():
            raise ValueError(f"{spec!r} is not a folder (a BEIR folder holds corpus.jsonl[.gz], queries.jsonl, qrels/)")
        _corpus_file(path)
        return str(path.resolve())
    import ir_datasets

    if spec not in ir_datasets.registry:
        raise ValueError(
            f"{spec!r} is neither an ir_datasets id (e.g. beir/scifact/test), an existing BEIR folder, "
            f"nor one of {', '.join('fixture:' + n for n in fixture_names())}"
        )
    return spec


def dataset_kind(spec: str) -> str:
    if spec.startswith(FIXTURE_PREFIX):
        return "fixture"
    return "folder" if Path(spec).expanduser().is_dir() else "ir_datasets"


def load_collection(spec: str, split: str = "test") -> Collection:
    """Load any of the three dataset forms (see :func:`check_dataset_spec`)."""
    kind = dataset_kind(spec)
    if kind == "fixture":
        folder = FIXTURES_DIR / spec[len(FIXTURE_PREFIX):]
        collection = load_beir_folder(folder, split)
        collection.spec, collection.source = spec, f"runlocalai_bench/fixtures/{folder.name}"
        return collection
    if kind == "folder":
        return load_beir_folder(Path(spec).expanduser(), split)
    return load_ir_datasets(spec, split)


# ------------------------------------------------------------------------------------------ BEIR folder


def _corpus_file(folder: Path) -> Path:
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise CollectionError(f"{folder}: no corpus.jsonl or corpus.jsonl.gz (expected a BEIR folder)")


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _jsonl(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CollectionError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise CollectionError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
                missing = [k for k in required if k not in record]
                if missing:
                    raise CollectionError(
                        f"{path}:{number}: missing {', '.join(map(repr, missing))} (found keys: {', '.join(record)})"
                    )
                yield number, record
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise CollectionError(f"{path}: cannot read ({exc})") from None


def load_beir_folder(folder: Path, split: str = "test") -> Collection:
    folder = Path(folder)
    corpus_path = _corpus_file(folder)
    docs: dict[str, Document] = {}
    for number, record in _jsonl(corpus_path, ("_id", "text")):
        doc_id = str(record["_id"])
        if doc_id in docs:
            raise CollectionError(f"{corpus_path}:{number}: duplicate document id {doc_id!r}")
        docs[doc_id] = Document(doc_id, str(record.get("title") or ""), str(record["text"] or ""))

    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise CollectionError(f"{folder}: no queries.jsonl")
    queries: dict[str, str] = {}
    for number, record in _jsonl(queries_path, ("_id", "text")):
        query_id = str(record["_id"])
        if query_id in queries:
            raise CollectionError(f"{queries_path}:{number}: duplicate query id {query_id!r}")
        queries[query_id] = str(record["text"])

    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise CollectionError(f"{qrels_path}: no judgments for split {split!r}; available splits: {available}")
    qrels = _read_qrels_tsv(qrels_path, docs, queries)
    return Collection(str(folder.resolve()), split, docs, queries, qrels, source=str(folder.resolve()))


def _read_qrels_tsv(path: Path, docs: dict[str, Document], queries: dict[str, str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 3:
                raise CollectionError(f"{path}:{number}: expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}")
            query_id, doc_id, score = cols
            if number == 1 and not _is_int(score):
                continue  # header row
            if not _is_int(score):
                raise CollectionError(f"{path}:{number}: score {score!r} is not an integer")
            if query_id not in queries:
                raise CollectionError(f"{path}:{number}: query {query_id!r} is not in queries.jsonl")
            if doc_id not in docs:
                raise CollectionError(f"{path}:{number}: document {doc_id!r} is not in the corpus")
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    if not qrels:
        raise CollectionError(f"{path}: no judgments")
    return qrels


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------------- ir_datasets


def load_ir_datasets(dataset_id: str, split: str = "test") -> Collection:
    """Load through ir_datasets (downloads into ``IR_DATASETS_HOME`` on first use).

    ``split`` is informational here: the ir_datasets id already names its split (``beir/scifact/test``).
    """
    import ir_datasets

    try:
        dataset = ir_datasets.load(dataset_id)
        docs: dict[str, Document] = {}
        for record in dataset.docs_iter():
            title = getattr(record, "title", "") or ""
            text = record.text if hasattr(record, "text") else record.default_text()
            docs[str(record.doc_id)] = Document(str(record.doc_id), str(title), str(text or ""))
        queries = {
            str(q.query_id): (q.text if hasattr(q, "text") else q.default_text()) for q in dataset.queries_iter()
        }
        raw_qrels = list(dataset.qrels_iter())
    except (ConnectionError, OSError) as exc:
        raise CollectionError(
            f"ir_datasets {dataset_id!r}: could not download or read the data ({exc}). Offline? Pre-seed "
            "IR_DATASETS_HOME (see README) or point `dataset` at a BEIR folder, or run `make smoke`."
        ) from None
    qrels: dict[str, dict[str, int]] = {}
    for number, qrel in enumerate(raw_qrels, start=1):
        if qrel.query_id not in queries:
            raise CollectionError(f"ir_datasets {dataset_id!r} qrels record {number}: unknown query {qrel.query_id!r}")
        if qrel.doc_id not in docs:
            raise CollectionError(f"ir_datasets {dataset_id!r} qrels record {number}: unknown document {qrel.doc_id!r}")
        qrels.setdefault(str(qrel.query_id), {})[str(qrel.doc_id)] = int(qrel.relevance)
    if not qrels:
        raise CollectionError(f"ir_datasets {dataset_id!r}: no judgments (choose an id that names a split)")
    return Collection(dataset_id, split, docs, queries, qrels, source=f"ir_datasets:{dataset_id}")
