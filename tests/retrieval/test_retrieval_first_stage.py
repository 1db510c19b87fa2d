"""First stages on the fixture: BM25 finds lexical matches, dense reuses its embedding cache."""

import pytest

from runlocalai_bench.data.specs import load_collection
from runlocalai_bench.params import FirstStageParams
from runlocalai_bench.retrieval.bm25 import bm25_retrieve
from runlocalai_bench.retrieval.dense import dense_retrieve

from support import MINILM


def test_bm25_finds_lexical_matches():
    collection = load_collection("fixture:tiny")
    result = bm25_retrieve(collection, ["q05", "q10"], FirstStageParams(kind="bm25", depth=5))
    assert result.ranking["q05"][0][0] == "d19" and result.ranking["q10"][0][0] == "d35"
    assert all(len(docs) <= 5 for docs in result.ranking.values())


@pytest.mark.slow
def test_dense_embedding_cache_is_reused(session_cache, capsys):
    collection = load_collection("fixture:tiny")
    params = FirstStageParams(model=MINILM, depth=5, max_length=64, device="cpu")
    query_ids = collection.judged_query_ids
    first = dense_retrieve(collection, query_ids, params, session_cache)
    second = dense_retrieve(collection, query_ids, params, session_cache)
    assert not first.cache_hit and second.cache_hit
    assert "Reusing cached document embeddings" in capsys.readouterr().out
    assert first.ranking == second.ranking
    # A different max length is a different cache entry.
    third = dense_retrieve(collection, query_ids, params.model_copy(update={"max_length": 32}), session_cache)
    assert not third.cache_hit


@pytest.mark.slow
def test_fixture_has_queries_a_dense_model_misses(session_cache):
    """The fixture promises dense mistakes a reranker can fix: q13 and q14 rank a distractor first."""

    collection = load_collection("fixture:tiny")
    result = dense_retrieve(collection, ["q13", "q14"], FirstStageParams(model=MINILM, depth=10, device="cpu"), session_cache)
    for query_id in ("q13", "q14"):
        top_doc = result.ranking[query_id][0][0]
        assert collection.qrels[query_id].get(top_doc, 0) < max(collection.qrels[query_id].values())
