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
