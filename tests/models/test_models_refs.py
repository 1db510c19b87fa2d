"""Model references: folder hashes that tell checkpoints apart."""

import pytest

from runlocalai_bench.models.refs import ModelNotFoundError, folder_hash


def test_folder_hash_covers_models_kept_under_a_cache_directory(tmp_path):
    """Folders under ~/.cache (twins, user checkpoints) must hash their files: an empty hash would let two
    different models share embedding caches and exports. Only huggingface_hub's own <folder>/.cache is skipped."""
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


def test_twins_are_labelled_as_twins_and_folders_never_look_like_hub_revisions():
    from runlocalai_bench.models.refs import model_label

    twin = model_label("/cache/twins/BAAI--bge-reranker-v2-m3-ab12", {"content_hash": "f" * 64},
                       {"kind": "shape twin", "of": "BAAI/bge-reranker-v2-m3", "seed": 0})
    assert twin == "BAAI/bge-reranker-v2-m3 shape twin (random weights, seed 0)"
    assert "@" not in model_label("/models/my-reranker", {"content_hash": "abc123" * 10})
    assert model_label("/models/my-reranker", {"content_hash": "abc123" * 10}) == \
        "my-reranker (local folder, sha256 abc123abc1)"
    assert model_label("BAAI/bge-m3", {"revision": "5617a9f61b028005a4858fdac845db406aefb181"}) == "BAAI/bge-m3@5617a9f61b"
    assert model_label("twin:tiny-xlmr") == "twin:tiny-xlmr (tiny random test model)"
