"""Rankings and TREC run files (what IR calls a "run": one ranked list per query).

A ranking is ``{query_id: [(doc_id, score), ...]}`` in rank order. Ordering is always
score descending, then doc id ascending, so equal scores never make two runs of the same inputs differ.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

Ranking = dict[str, list[tuple[str, float]]]


class RunFileError(ValueError):
    """A TREC run file that cannot be read: names file and line."""


def order(scored: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Deterministic rank order: score descending, ties broken by doc id ascending."""
    return sorted(((d, float(s)) for d, s in scored), key=lambda item: (-item[1], item[0]))


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


def read_trec(path: Path) -> Ranking:
    """Read a TREC run file back into rank order (by the file's rank column)."""
    rows: dict[str, list[tuple[int, str, float]]] = {}
    with Path(path).open("r", encoding="utf-8") as handle:
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
            rows.setdefault(cols[0], []).append((rank, cols[2], score))
    return {q: [(d, s) for _, d, s in sorted(items)] for q, items in rows.items()}
