"""Collections through ir_datasets: its ids, downloads and caches (``IR_DATASETS_HOME``), its record types."""

from __future__ import annotations

from runlocalai_bench.data.collection import Collection, CollectionError, Document, assemble
from runlocalai_bench.data.protocol import protocol_for, split_of


def _document(record) -> Document:
    title = getattr(record, "title", "") or ""
    text = record.text if hasattr(record, "text") else record.default_text()
    return Document(str(record.doc_id), str(title), str(text or ""))


def load_ir_datasets(dataset_id: str, split: str | None = None) -> Collection:
    """Load through ir_datasets (downloads into ``IR_DATASETS_HOME`` on first use), by the dataset's protocol
    (data/protocol.py).

    The split is the one the id names (``miracl/sw/dev`` is ``dev``); ``split`` is accepted for the other
    dataset kinds' sake and ignored here.
    """
    import ir_datasets  # slow to import (its registry); only runs that use it pay

    try:
        dataset = ir_datasets.load(dataset_id)
        documents = [_document(record) for record in dataset.docs_iter()]
        queries = {
            str(q.query_id): (q.text if hasattr(q, "text") else q.default_text()) for q in dataset.queries_iter()
        }
        raw_qrels = list(dataset.qrels_iter())
    except (ConnectionError, OSError) as exc:
        raise CollectionError(
            f"ir_datasets {dataset_id!r}: could not download or read the data ({exc}). Offline? Pre-seed "
            "IR_DATASETS_HOME (see README) or point `dataset` at a BEIR folder, or run `make smoke`."
        ) from None
    if not raw_qrels:
        raise CollectionError(f"ir_datasets {dataset_id!r}: no judgments (choose an id that names a split)")
    judgments = ((str(r.query_id), str(r.doc_id), int(r.relevance),
                  lambda n=number: f"ir_datasets {dataset_id!r} qrels record {n}")
                 for number, r in enumerate(raw_qrels, start=1))
    return assemble(dataset_id, split_of(dataset_id), documents, queries, judgments,
                    source=f"ir_datasets:{dataset_id}", language=dataset.queries_lang() or "und",
                    protocol=protocol_for(dataset_id, ir_datasets_id=True))


def train_split_of(dataset_id: str) -> str | None:
    """The ir_datasets id of the same collection's train split (``beir/scifact/test`` -> ``beir/scifact/train``,
    ``miracl/sw/dev`` -> ``miracl/sw/train``), or None where ir_datasets has none (arguana, scidocs,
    trec-covid, miracl/yo) or the id is itself the train split."""
    import ir_datasets

    head, _, last = dataset_id.rstrip("/").rpartition("/")
    if not head or last == "train":
        return None
    candidate = f"{head}/train"
    if candidate not in ir_datasets.registry:
        return None
    return candidate if ir_datasets.load(candidate).has_qrels() else None


def load_queries(dataset_id: str) -> dict[str, str]:
    """The queries of an ir_datasets id (a train split's, for calibration), without its corpus."""
    import ir_datasets

    try:
        return {str(q.query_id): (q.text if hasattr(q, "text") else q.default_text())
                for q in ir_datasets.load(dataset_id).queries_iter()}
    except (ConnectionError, OSError) as exc:
        raise CollectionError(f"ir_datasets {dataset_id!r}: could not download or read its queries ({exc})") from None
