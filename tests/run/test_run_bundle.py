"""What a finished smoke bundle promises: run files that trec_eval evaluates exactly as the tables say, no
absolute path of this machine anywhere, calibration queries apart from the evaluated ones."""

import os
import sys
import tempfile

import pandas as pd
import pytest
import pytrec_eval

from runlocalai_bench.data.specs import load_collection
from runlocalai_bench.data.trec import read_trec

from support import REPO

TREC_MEASURES = {"ndcg_cut_10": "nDCG@10", "recip_rank": "RR@10"}


@pytest.mark.slow
def test_pytrec_eval_on_the_run_files_reproduces_the_tables(smoke_bundle):
    """Every run file, evaluated by pytrec_eval (trec_eval's tie rules), gives the per-query values of
    tables/quality: the files hold the order the suite evaluated."""
    collection = load_collection("fixture:tiny")
    quality = pd.read_parquet(smoke_bundle / "tables" / "quality.parquet")
    runs = sorted((smoke_bundle / "runs").glob("*.trec"))
    checked = 0
    for path in runs:
        if path.stem == "calibration":
            continue
        run: dict[str, dict[str, float]] = {}
        for line in path.read_text().splitlines():
            query_id, _, doc_id, _, score, _ = line.split()
            run.setdefault(query_id, {})[doc_id] = float(score)
        qrels = {q: collection.qrels[q] for q in run}
        values = pytrec_eval.RelevanceEvaluator(qrels, set(TREC_MEASURES)).evaluate(run)
        if path.stem == "first_stage":
            rows = quality[quality["system"] != "rerank"]
        else:
            variant, device = path.stem.split("--")[1:]
            rows = quality[(quality["variant"] == variant) & (quality["device"] == device)]
        for trec_name, measure in TREC_MEASURES.items():
            table = rows[rows["measure"] == measure].set_index("query_id")["value"]
            for query_id, measured in values.items():
                if measure == "RR@10" and measured[trec_name] < 0.1:
                    continue  # trec_eval's recip_rank has no cutoff; RR@10 is 0 past rank 10
                assert table[query_id] == pytest.approx(measured[trec_name], abs=1e-6), (path.name, measure, query_id)
                checked += 1
    assert checked > 40


def forbidden_prefixes(cache) -> list[str]:
    home = os.path.expanduser("~")
    return [str(REPO), sys.prefix, tempfile.gettempdir() + "/", str(cache), home + "/"]


@pytest.mark.slow
def test_a_bundle_holds_no_absolute_path_of_its_machine(smoke_bundle, session_cache):
    leaks = []
    for path in sorted(p for p in smoke_bundle.rglob("*") if p.is_file() and p.suffix != ".png"):
        data = path.read_bytes()
        for prefix in forbidden_prefixes(session_cache):
            if prefix.encode() in data:
                leaks.append(f"{path.relative_to(smoke_bundle)}: {prefix}")
    assert leaks == []


@pytest.mark.slow
def test_calibration_queries_are_apart_from_the_evaluated_ones(smoke_bundle):
    evaluated = set(read_trec(smoke_bundle / "runs" / "first_stage.trec"))
    calibration = set(read_trec(smoke_bundle / "runs" / "calibration.trec"))
    assert calibration and not calibration & evaluated
