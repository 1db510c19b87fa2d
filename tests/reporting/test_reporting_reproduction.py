"""Reproduction targets (params/references/): published numbers matched to a run's rows and judged."""

from __future__ import annotations

import pandas as pd
import pytest

from runlocalai_bench.params import ParamsError
from runlocalai_bench.reporting.reproduction import (
    CONSISTENT, DIFFERS, NOT_COMPARABLE, REPRODUCES, WITHIN, load_references, reproduction_table,
)
from runlocalai_bench.data.specs import reduced_label
from runlocalai_bench.results.tables import COLUMNS
from support import REPO

PUBLISHED_DENSE = REPO / "results" / "published" / "scifact-minilm_bge-reranker-v2-m3-twin-cpu"


def test_every_shipped_reference_file_loads_and_quotes_its_source():
    references = load_references("params/references")
    assert {"bge-m3-mteb-beir.yaml", "bge-m3-miracl-dev.yaml", "bge-reranker-v2-m3-miracl-dev.yaml",
            "bge-reranker-v2-m3-beir-bge-large.yaml", "all-minilm-l6-v2-mteb.yaml"} <= set(references)
    for name, ref in references.items():
        assert ref.source and ref.protocol and ref.tolerance > 0, name


def test_the_published_minilm_bundle_reproduces_mteb():
    summary = pd.read_parquet(PUBLISHED_DENSE / "tables" / "summary.parquet")
    table = reproduction_table(summary, load_references("params/references"), PUBLISHED_DENSE)
    row = table[table["run_id"] == "scifact-minilm-dense"]
    assert len(row) == 1
    row = row.iloc[0]
    assert row["published"] == 0.64508 and row["measured"] == pytest.approx(0.64508, abs=5e-5)
    assert row["verdict"] == REPRODUCES and row["differences"] == "none"
    assert row["reference"] == "all-minilm-l6-v2-mteb.yaml" and "MTEB results repository" in row["source"]
    assert list(table.columns[: len(COLUMNS["reproduction"])]) == COLUMNS["reproduction"]


def summary_row(**values) -> dict:
    row = {c: None for c in COLUMNS["summary"]}
    row.update(run_id="r", measure="nDCG@10", first_stage_depth=100, **values)
    return row


def test_samples_full_sets_and_lifts_are_judged_by_their_own_rule(tmp_path):
    references = load_references("params/references")
    rows = [
        # the whole query set, 0.02 off: differs
        summary_row(dataset="beir/scifact/test", system="dense", first_stage="dense:BAAI/bge-m3", n_queries=300,
                    mean=0.62366, ci_low=0.58, ci_high=0.67),
        # 50 of 323 queries, CI overlaps the band: consistent on a sample
        summary_row(dataset="beir/nfcorpus/test", system="dense", first_stage="dense:BAAI/bge-m3", n_queries=50,
                    mean=0.35, ci_low=0.28, ci_high=0.42),
        # 50 of 1,000 queries, CI entirely above the band: differs
        summary_row(dataset="beir/scidocs", system="dense", first_stage="dense:BAAI/bge-m3", n_queries=50,
                    mean=0.40, ci_low=0.35, ci_high=0.45),
        # MIRACL reranked rows are compared by their lift (the published first stage predates the correction)
        summary_row(dataset="miracl/yo/dev", system="rerank", first_stage="dense:BAAI/bge-m3", n_queries=119,
                    reranker="BAAI/bge-reranker-v2-m3", variant="torch-fp32", device="cpu", rerank_depth=100,
                    mean=0.85, ci_low=0.8, ci_high=0.9, lift_abs=0.0363, lift_ci_low=0.01, lift_ci_high=0.06),
        # a variant other than its device's reference is not a reproduction row
        summary_row(dataset="miracl/yo/dev", system="rerank", first_stage="dense:BAAI/bge-m3", n_queries=119,
                    reranker="BAAI/bge-reranker-v2-m3", variant="torch-bf16", device="cpu", rerank_depth=100,
                    mean=0.85, ci_low=0.8, ci_high=0.9, lift_abs=0.2, lift_ci_low=0.1, lift_ci_high=0.3),
    ]
    (tmp_path / "params.yaml").write_text("first_stage: {max_length: 512}\nreranker: {max_length: 512}\n")
    table = reproduction_table(pd.DataFrame(rows), references, tmp_path).set_index("dataset")
    assert table.loc["beir/scifact/test", "verdict"] == DIFFERS
    assert table.loc["beir/nfcorpus/test", "verdict"] == CONSISTENT
    assert "50 of the reference's 323 queries" in table.loc["beir/nfcorpus/test", "differences"]
    assert "first stage max length 512 tokens (reference 8,192)" in table.loc["beir/nfcorpus/test", "differences"]
    assert table.loc["beir/scidocs", "verdict"] == DIFFERS
    yoruba = table.loc[["miracl/yo/dev"]]
    lift = yoruba[yoruba["system"] == "rerank"].iloc[0]
    assert len(yoruba[yoruba["system"] == "rerank"]) == 1 and lift["variant"] == "torch-fp32"
    assert lift["published"] == pytest.approx(0.6403 - 0.607) and lift["verdict"] == WITHIN  # lengths differ
    assert "reranker max length 512 tokens (reference 1,024)" in lift["differences"]


def test_a_reduced_corpus_row_is_shown_as_not_comparable_never_as_a_difference(tmp_path):
    rows = [summary_row(dataset=reduced_label("beir/scifact/test"), system="dense", first_stage="dense:BAAI/bge-m3",
                        n_queries=300, mean=0.9, ci_low=0.88, ci_high=0.92)]
    (tmp_path / "params.yaml").write_text("first_stage: {max_length: 512}\n")
    table = reproduction_table(pd.DataFrame(rows), load_references("params/references"), tmp_path)
    assert len(table) == 1
    row = table.iloc[0]
    assert row["verdict"] == NOT_COMPARABLE and row["differences"] == "reduced corpus: not comparable"
    assert row["measured"] == 0.9 and pd.isna(row["diff"]) and pd.isna(row["diff_ci_low"])


def test_a_malformed_reference_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: x\nprotocol: y\ntolerance: 0.01\nfirst_stage: {model: m}\nentries:\n  - {dataset: d, ndcg: 1}\n")
    with pytest.raises(ParamsError, match=r"bad.yaml: unknown key 'entries\[0\].ndcg'"):
        load_references(str(bad))
