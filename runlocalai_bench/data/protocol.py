"""The evaluation protocol each dataset follows: defined once here, recorded in every bundle.

Published numbers are only comparable when they are computed the same way. The rules below are those of the
references every published BEIR, MTEB and MIRACL number follows (BEIR's ``EvaluateRetrieval``, MTEB's
retrieval evaluator, pytrec_eval underneath both); where a reference makes a dataset-specific choice, the
choice is made by dataset name here, and nowhere else:

- **Identical ids.** ArguAna's queries are corpus documents under their own ids (and FiQA's share ids with
  documents), so a dense first stage puts the query itself at rank 1. MTEB's task definitions set
  ``ignore_identical_ids`` for ArguAna and FiQA2018 and not for SciFact, NFCorpus, SCIDOCS or TREC-COVID;
  FlagEmbedding's BEIR script passes ``--ignore_identical_ids True`` for its whole run, arguana and fiqa
  included. The first stage drops a candidate whose id equals its query's id on those two, and retrieves one
  more so that each query still has ``depth`` candidates; elsewhere it counts such candidates (the bundle
  records ``identical_ids_retrieved``), so a reader sees whether a reference that filters everywhere could
  differ. The rule never applies to MIRACL: Yoruba query ids have the form of passage ids, and an identical-id
  filter removed relevant passages from bge-m3's own MIRACL table until July 2024 (Yoruba 60.7 -> 81.8
  nDCG@10 once corrected).
- **Judgments on documents missing from the corpus** are kept (pytrec_eval, BEIR and MTEB keep them): the query
  stays in the evaluation, its ideal DCG counts the missing document, and it scores what it can reach.
- **Queries judged only non-relevant** (no positive grade) are evaluated and score 0: pytrec_eval returns 0 for
  them and BEIR and MTEB average over them.
- **Duplicate document ids**: the last record wins (BEIR's loader and MTEB read the corpus into a dict); the
  duplicates are counted and named in the bundle.
- **The split** is the one the ir_datasets id names (``miracl/sw/dev`` is ``dev``); BEIR collections whose id
  names no split publish test judgments only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

# Datasets whose reference protocol (MTEB's ignore_identical_ids, FlagEmbedding's BEIR script) drops a
# candidate whose id equals the query's. Matched on the collection's name: ir_datasets ``beir/<name>[/split]``,
# a BEIR folder named ``<name>``.
IDENTICAL_IDS_IGNORED = ("arguana", "fiqa")
# The split words ir_datasets ids end in (``beir/fiqa/dev``, ``miracl/yo/test-b``).
SPLIT_WORDS = ("train", "dev", "test", "validation", "test-a", "test-b")

MISSING_DOCS_RULE = ("judgments on documents missing from the corpus are kept (pytrec_eval, BEIR, MTEB): "
                     "the query is evaluated and its ideal DCG counts them")
ZERO_POSITIVE_RULE = ("queries judged only non-relevant are evaluated and score 0 (pytrec_eval returns 0; BEIR "
                      "and MTEB average over them)")
DUPLICATES_RULE = "duplicate document ids: the last record wins (as BEIR's and MTEB's corpus dicts)"


@dataclass(frozen=True)
class Protocol:
    """How one dataset is evaluated, and whose published numbers it is comparable with."""

    name: str  # beir | beir-identical-ids | miracl | local
    reference: str  # whose protocol this is
    ignore_identical_ids: bool

    def as_dict(self) -> dict:
        return {**asdict(self), "missing_judged_documents": MISSING_DOCS_RULE,
                "queries_without_positive_judgment": ZERO_POSITIVE_RULE, "duplicate_document_ids": DUPLICATES_RULE}

    def sentence(self) -> str:
        """One sentence for a report's "What was run"."""
        ids = ("candidates whose id equals the query's are dropped (MTEB's ignore_identical_ids)"
               if self.ignore_identical_ids else "no identical-id filter")
        return f"{self.reference}: {ids}"


BEIR = Protocol("beir", "BEIR/MTEB (pytrec_eval)", False)
BEIR_IDENTICAL_IDS = Protocol("beir-identical-ids", "BEIR/MTEB with ignore_identical_ids", True)
MIRACL = Protocol("miracl", "MIRACL (pytrec_eval; never an identical-id filter)", False)
LOCAL = Protocol("local", "BEIR/MTEB rules (pytrec_eval)", False)


def collection_name(text: str) -> str:
    """The collection a dataset id or folder name names: ``beir/fiqa/test`` -> ``fiqa``,
    ``miracl/yo/dev`` -> ``yo``, ``arguana`` -> ``arguana``."""
    parts = [p for p in text.replace("\\", "/").split("/") if p]
    if len(parts) > 1 and parts[-1] in SPLIT_WORDS:
        parts = parts[:-1]
    return parts[-1].lower() if parts else ""


def protocol_for(text: str, ir_datasets_id: bool) -> Protocol:
    """The protocol of a dataset given by its ir_datasets id, or by a BEIR folder's or fixture's name."""
    if ir_datasets_id and text.startswith("miracl/"):
        return MIRACL
    name = collection_name(text)
    if name in IDENTICAL_IDS_IGNORED and not text.startswith("miracl/"):
        return BEIR_IDENTICAL_IDS
    return BEIR if ir_datasets_id and text.startswith("beir/") else LOCAL


def split_of(dataset_id: str) -> str:
    """The split an ir_datasets id names; a BEIR id that names none (``beir/arguana``) has only test judgments;
    any other id without a split word is ``all`` (the judgments the id has)."""
    parts = dataset_id.rstrip("/").split("/")[1:]
    named = [p for p in parts if p in SPLIT_WORDS]  # msmarco-passage/dev/small names "dev" before its subset
    if named:
        return named[-1]
    return "test" if dataset_id.startswith("beir/") else "all"


def drop_identical_ids(ranking: Mapping[str, Sequence[tuple[str, float]]], depth: int,
                       protocol: Protocol) -> tuple[dict[str, list[tuple[str, float]]], int]:
    """Each query's candidates cut to ``depth``, without the query's own id where the protocol says so.
    Returns the ranking and how many candidates had their query's id (removed where the protocol ignores
    them, only counted elsewhere)."""
    removed, kept = 0, {}
    for query_id, docs in ranking.items():
        filtered = [(d, s) for d, s in docs if d != query_id]
        removed += len(docs) - len(filtered)
        kept[query_id] = list((filtered if protocol.ignore_identical_ids else docs)[:depth])
    return kept, removed


def extra_depth(protocol: Protocol) -> int:
    """How many more candidates to retrieve so that ``depth`` remain after the identical-id rule."""
    return 1 if protocol.ignore_identical_ids else 0
