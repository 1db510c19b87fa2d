"""The Methods section is generated from the constants and parameters the code ran with, never a copy."""

import pandas as pd

from runlocalai_bench.params import Params
from runlocalai_bench.perf import timing
from runlocalai_bench.quality import stats
from runlocalai_bench.reporting import claims
from runlocalai_bench.reporting.methods import methods_blocks
from runlocalai_bench.reporting.provenance import RunDescription


def methods_text(params: list[Params], throughput: pd.DataFrame | None = None) -> str:
    description = RunDescription(run_id="r", datasets=["beir/scifact/test"], split="test", n_queries=300,
                                 first_stage="bm25 top 100", reranker="m", weights="trained", rerank_depth=100,
                                 queries={"beir/scifact/test": 300},
                                 protocol_notes=["beir/scifact/test (test split): BEIR/MTEB (pytrec_eval)."])
    tables = {"throughput": throughput if throughput is not None else pd.DataFrame()}
    return "\n".join(block.markdown() for block in methods_blocks(params, [description], tables))


def test_the_methods_state_the_constants_the_code_used(monkeypatch):
    params = [Params(run_id="r", bootstrap_samples=10_000, seed=7)]
    text = methods_text(params, pd.DataFrame({"run_id": ["r", "r"], "threads": [2, 2]}))
    assert "95% percentile bootstrap intervals with 10,000 resamples" in text and "seed (7)" in text
    assert "resampling unit is the query" in text and "treats the datasets as fixed" in text
    assert "two-sided paired sign-flip" in text and "Holm's step-down at a family-wise 0.05" in text
    assert "uncorrected across variants, datasets and measures" in text
    assert "linear gain" in text and "beir/scifact/test 300 queries" in text and "BEIR/MTEB (pytrec_eval)" in text
    assert "at least 50 and 500 samples" in text and "run r: 2" in text and "reranker.threads: physical" in text

    monkeypatch.setattr(stats, "LEVEL", 0.9)
    monkeypatch.setattr(timing, "TAIL_SAMPLES", 10)
    monkeypatch.setattr(claims, "HOLM_ALPHA", 0.1)
    changed = methods_text([Params(run_id="r", bootstrap_samples=2_000, seed=7)])
    assert "90% percentile bootstrap intervals with 2,000 resamples" in changed
    assert "at least 100 and 1000 samples" in changed and "family-wise 0.1" in changed
    assert "not recorded" in changed  # no thread counts in the tables: said, not invented
