import numpy as np
import pytest

from runlocalai_bench.data import load_collection
from runlocalai_bench.first_stage import bm25_retrieve, dense_retrieve, top_k_exact, top_k_faiss
from runlocalai_bench.params import FirstStageParams

from conftest import MINILM


def brute_force(queries, docs, k):
    scores = queries @ docs.T
    idx = np.array([sorted(range(docs.shape[0]), key=lambda j: (-scores[i, j], j))[:k] for i in range(len(queries))])
    return idx, np.take_along_axis(scores, idx, axis=1)


@pytest.mark.parametrize("block", [1, 3, 7, 1000])
def test_blocked_exact_search_matches_brute_force_including_ties(block):
    rng = np.random.default_rng(0)
    docs = rng.integers(-2, 3, size=(50, 4)).astype(np.float32)  # small integers: many exact ties
    queries = rng.integers(-2, 3, size=(6, 4)).astype(np.float32)
    idx, scores = top_k_exact(queries, docs, k=10, block=block)
    expected_idx, expected_scores = brute_force(queries, docs, 10)
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(scores, expected_scores)


def test_faiss_search_agrees_with_exact():
    rng = np.random.default_rng(1)
    docs = rng.normal(size=(300, 16)).astype(np.float32)
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    np.testing.assert_array_equal(top_k_faiss(queries, docs, 20)[0], top_k_exact(queries, docs, 20)[0])


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


def test_folder_hash_covers_models_kept_under_a_cache_directory(tmp_path):
    """Folders under ~/.cache (twins, user checkpoints) must hash their files: an empty hash would let two
    different models share embedding caches and exports. Only huggingface_hub's own <folder>/.cache is skipped."""
    from runlocalai_bench.models import ModelNotFoundError, folder_hash

    hashes = []
    for name, weights in (("a", b"weights-a"), ("b", b"weights-b")):
        folder = tmp_path / ".cache" / "models" / name
        (folder / ".cache" / "huggingface").mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(weights)
        (folder / ".cache" / "huggingface" / "download.lock").write_text(name)
        hashes.append(folder_hash(folder, tmp_path / "memo"))
    empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert hashes[0] != hashes[1] and empty_sha256 not in hashes
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="holds no files"):
        folder_hash(tmp_path / "empty", tmp_path / "memo")
