"""Collections through ir_datasets: its ids, downloads and caches (``IR_DATASETS_HOME``), its record types."""

from __future__ import annotations

from runlocalai_bench.data.collection import Collection, CollectionError, Document


def load_ir_datasets(dataset_id: str, split: str = "test") -> Collection:
    """Load through ir_datasets (downloads into ``IR_DATASETS_HOME`` on first use).

    ``split`` is informational here: the ir_datasets id already names its split (``beir/scifact/test``).
    """
    import ir_datasets  # slow to import (its registry); only runs that use it pay

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
    return Collection(dataset_id, split, docs, queries, qrels, source=f"ir_datasets:{dataset_id}",
                      language=dataset.queries_lang() or "und")
