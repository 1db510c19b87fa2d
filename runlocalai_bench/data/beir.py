"""BEIR folders (``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``), read strictly.

A query may carry its language in ``metadata.language`` (ISO 639-1); otherwise a folder named like a BEIR
collection is English (all of BEIR is) and any other folder's language is ``und`` (undetermined).

Malformed input fails with ``file:line: problem`` before anything is written: a typo in a 5,000-line corpus
must not surface an hour later as a missing document. What the reference protocols accept (a duplicate
document id, a judgment on a document the corpus lacks: BEIR's own ArguAna has five) follows the rules of
data/protocol.py, the same as for ir_datasets ids.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO, Callable, Iterator

from runlocalai_bench.data.collection import Collection, CollectionError, Document, assemble
from runlocalai_bench.data.protocol import protocol_for


# Every BEIR collection is English: a folder with one of their names needs no language field in its queries.
BEIR_ENGLISH = {name: "en" for name in (
    "msmarco", "trec-covid", "nfcorpus", "nq", "hotpotqa", "fiqa", "arguana", "webis-touche2020", "cqadupstack",
    "quora", "dbpedia-entity", "scidocs", "fever", "climate-fever", "scifact", "bioasq", "signal1m", "trec-news",
    "robust04")}


def corpus_file(folder: Path) -> Path:
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
    corpus_path = corpus_file(folder)
    documents = [Document(str(record["_id"]), str(record.get("title") or ""), str(record["text"] or ""))
                 for _, record in _jsonl(corpus_path, ("_id", "text"))]

    queries_path = folder / "queries.jsonl"
    if not queries_path.is_file():
        raise CollectionError(f"{folder}: no queries.jsonl")
    queries: dict[str, str] = {}
    languages: dict[str, str] = {}
    for number, record in _jsonl(queries_path, ("_id", "text")):
        query_id = str(record["_id"])
        if query_id in queries:
            raise CollectionError(f"{queries_path}:{number}: duplicate query id {query_id!r}")
        queries[query_id] = str(record["text"])
        metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        if metadata.get("language"):
            languages[query_id] = str(metadata["language"])

    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise CollectionError(f"{qrels_path}: no judgments for split {split!r}; available splits: {available}")
    judgments = list(_read_qrels_tsv(qrels_path))
    if not judgments:
        raise CollectionError(f"{qrels_path}: no judgments")
    default = BEIR_ENGLISH.get(folder.name.lower(), "und")
    distinct = set(languages.values())
    # One language for the collection when its queries share one; "mul" (ISO 639-2: multiple) otherwise.
    language = default if not distinct else distinct.pop() if len(distinct) == 1 else "mul"
    return assemble(str(folder.resolve()), split, documents, queries, judgments, source=str(folder.resolve()),
                    language=language, query_languages={q: l for q, l in languages.items() if l != language},
                    protocol=protocol_for(folder.name, ir_datasets_id=False))


def _read_qrels_tsv(path: Path) -> Iterator[tuple[str, str, int, Callable[[], str]]]:
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
            yield query_id, doc_id, int(score), lambda n=number: f"{path}:{n}"


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
