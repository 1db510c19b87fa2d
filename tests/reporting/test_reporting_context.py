"""Published context (params/references/context/): other setups' comparisons shown beside the run's own, never
compared with a measured row, and a malformed file named in the error."""

import pytest

from runlocalai_bench.params import ParamsError
from runlocalai_bench.reporting.context import context_rows, load_context
from runlocalai_bench.reporting.report import context_blocks

from support import REPO


def test_shipped_context_names_its_setups_and_shows_only_tables_with_the_runs_rerankers():
    files = load_context(REPO / "params" / "references")
    assert "newer-rerankers.yaml" in files
    rows = context_rows(files, {"BAAI/bge-reranker-v2-m3"})
    assert {"Qwen/Qwen3-Reranker-0.6B", "mixedbread-ai/mxbai-rerank-base-v2"} <= set(rows["reranker"])
    assert rows["setup"].str.len().min() > 20 and rows["note"].str.contains("not re-read").all()
    assert context_rows(files, {"twin:tiny-xlmr"}).empty  # a run without these rerankers shows none
    text = "\n".join(b.markdown() for b in context_blocks(rows))
    assert "not reproduction targets" in text and "57.03" in text and "not re-read" in text


def test_a_malformed_context_file_is_named(tmp_path):
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "bad.yaml").write_text("tables:\n  - source: x\n    rows: []\n")
    with pytest.raises(ParamsError, match="bad.yaml"):
        load_context(tmp_path)
