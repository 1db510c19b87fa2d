"""The reduced corpus a time budget builds (retrieval/reduced.py)."""

from runlocalai_bench.data.collection import Collection, Document
from runlocalai_bench.retrieval.reduced import reduce_corpus


def telugu_collection() -> Collection:
    docs = {f"d{i:02d}": Document(f"d{i:02d}", "", f"తెలుగు భాష పత్రం {i}" if i < 5 else f"ఇతర విషయం {i}")
            for i in range(40)}
    return Collection("test", "dev", docs, {"q1": "తెలుగు భాష", "q2": "ఇతర"}, {"q1": {"d01": 1}, "q2": {"d30": 1}},
                      source="constructed")


def test_judged_documents_the_bm25_pool_and_a_seeded_sample_up_to_the_size():
    collection = telugu_collection()
    reduced, record = reduce_corpus(collection, ["q1"], max_docs=12, pool_depth=3, seed=0)
    assert "d01" in reduced.docs and len(reduced.docs) == 12 == record["docs"]
    # Telugu words are whole tokens (bm25s's default pattern finds none in them): the pool is not empty
    assert record["judged"] == 1 and record["pooled"] >= 2  # the top 3 of BM25, less the judged one if among them
    assert record["judged"] + record["pooled"] + record["sampled"] == 12
    assert set(reduced.docs) <= set(collection.docs) and reduced.qrels == collection.qrels
    assert reduced.content_hash != collection.content_hash == record["full_corpus_sha256"]
    again, _ = reduce_corpus(collection, ["q1"], max_docs=12, pool_depth=3, seed=0)
    assert list(again.docs) == list(reduced.docs)  # seeded


def test_the_pool_and_judgments_are_kept_even_beyond_the_size():
    reduced, record = reduce_corpus(telugu_collection(), ["q1", "q2"], max_docs=2, pool_depth=5, seed=0)
    assert {"d01", "d30"} <= set(reduced.docs) and record["sampled"] == 0 and record["docs"] > 2
