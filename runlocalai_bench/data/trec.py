"""TREC run files (what IR calls a "run": one ranked list per query), written and read in the suite's order."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Container, Mapping

import pandas as pd

from runlocalai_bench.data.rankings import Ranking, order

class RunFileError(ValueError):
    """A TREC run file that cannot be read: names file and line."""


def write_trec(path: Path, ranking: Mapping[str, list[tuple[str, float]]], tag: str) -> None:
    """Write ``qid Q0 docid rank score tag`` lines in our rank order.

    The score column is rank-derived (``n - rank + 1``: distinct, descending), not the model's score: trec_eval
    and pytrec_eval sort by score and break ties by doc id *descending*, so raw scores with ties (or rounded
    in print) could make them evaluate a different order than the suite did. Raw scores go beside the run
    file (:func:`write_scores`).
    """
    lines = []
    for query_id in sorted(ranking):
        docs = ranking[query_id]
        for rank, (doc_id, _) in enumerate(docs, start=1):
            lines.append(f"{query_id} Q0 {doc_id} {rank} {len(docs) - rank + 1} {tag}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")


def write_scores(path: Path, ranking: Mapping[str, list[tuple[str, float]]]) -> None:
    """The ranking with its raw float32 scores (``query_id, doc_id, rank, score``) as parquet."""
    rows = [(q, d, rank, s) for q in sorted(ranking) for rank, (d, s) in enumerate(ranking[q], start=1)]
    frame = pd.DataFrame(rows, columns=["query_id", "doc_id", "rank", "score"]).astype({"score": "float32"})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)


def read_trec(path: Path, queries: Container[str] | None = None, docs: Container[str] | None = None,
              by: str = "rank") -> Ranking:
    """Read a TREC run file into rank order.

    ``by="rank"`` follows the rank column (the suite's own files); ``by="score"`` orders each query by score
    descending, ties by doc id ascending, as any run file made elsewhere must be read (ranks in such files are
    often unreliable). With ``queries``/``docs``, an id the collection does not have fails with file and line:
    a run file made for another dataset must not be evaluated as if it matched.
    """
    if by not in ("rank", "score"):
        raise ValueError(f"by must be 'rank' or 'score', got {by!r}")
    rows: dict[str, list[tuple[int, str, float]]] = {}
    seen: dict[tuple[str, str], int] = {}
    try:
        handle = Path(path).open("r", encoding="utf-8")
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read run file ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            cols = line.split()
            if len(cols) != 6:
                raise RunFileError(f"{path}:{number}: expected 6 columns (qid Q0 docid rank score tag), got {len(cols)}")
            try:
                rank, score = int(cols[3]), float(cols[4])
            except ValueError:
                raise RunFileError(f"{path}:{number}: rank {cols[3]!r} or score {cols[4]!r} is not a number") from None
            if math.isnan(score):
                raise RunFileError(f"{path}:{number}: score is NaN")
            query_id, doc_id = cols[0], cols[2]
            if queries is not None and query_id not in queries:
                raise RunFileError(f"{path}:{number}: query {query_id!r} is not in the dataset (a run file of another "
                                   "dataset?)")
            if docs is not None and doc_id not in docs:
                raise RunFileError(f"{path}:{number}: document {doc_id!r} is not in the corpus")
            if (query_id, doc_id) in seen:
                raise RunFileError(f"{path}:{number}: document {doc_id!r} already ranked for query {query_id!r} "
                                   f"(line {seen[(query_id, doc_id)]})")
            seen[(query_id, doc_id)] = number
            rows.setdefault(query_id, []).append((rank, doc_id, score))
    if by == "score":
        return {q: order((d, s) for _, d, s in items) for q, items in rows.items()}
    return {q: [(d, s) for _, d, s in sorted(items)] for q, items in rows.items()}
