"""What a finished smoke bundle promises: run files that trec_eval evaluates exactly as the tables say, no
absolute path of this machine anywhere, calibration queries apart from the evaluated ones."""

import json
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
    quality = pd.read_parquet(smoke_bundle / "tables" / "quality.parquet")
    checked = 0
    for label in ("fixture:tiny", "fixture:multilingual"):
        collection = load_collection(label)
        for path in sorted((smoke_bundle / "runs" / label.replace(":", "-")).glob("*.trec")):
            if path.stem == "calibration":
                continue
            run: dict[str, dict[str, float]] = {}
            for line in path.read_text().splitlines():
                query_id, _, doc_id, _, score, _ = line.split()
                run.setdefault(query_id, {})[doc_id] = float(score)
            values = pytrec_eval.RelevanceEvaluator({q: collection.qrels[q] for q in run}, set(TREC_MEASURES)).evaluate(run)
            rows = quality[quality["dataset"] == label]
            if path.stem == "first_stage":
                rows = rows[~rows["system"].isin(["rerank", "oracle"])]
            else:  # rerank--<variant>--<device> or baseline--<model>--<variant>--<device>
                variant, device = path.stem.split("--")[-2:]
                # baseline--twin-tiny-bert--... names its comparison reranker's slug (twin:tiny-bert, twin:tiny-qwen3)
                model = ("twin:" + path.stem.split("--")[1].removeprefix("twin-") if path.stem.startswith("baseline--")
                         else "twin:tiny-xlmr")
                rows = rows[(rows["variant"] == variant) & (rows["device"] == device) & (rows["reranker"] == model)]
            for trec_name, measure in TREC_MEASURES.items():
                table = rows[rows["measure"] == measure].set_index("query_id")["value"]
                for query_id, measured in values.items():
                    if measure == "RR@10" and measured[trec_name] < 0.1:
                        continue  # trec_eval's recip_rank has no cutoff; RR@10 is 0 past rank 10
                    assert table[query_id] == pytest.approx(measured[trec_name], abs=1e-6), (path.name, measure, query_id)
                    checked += 1
    assert checked > 80


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
def test_calibration_queries_only_where_a_variant_calibrates(smoke_bundle):
    """The shared smoke bundle runs no calibrated variant (openvino-int8 is not among its four): no calibration
    query is retrieved, and the record says why (the sources themselves: test_data_protocol, the rehearsal)."""
    for slug in ("fixture-tiny", "fixture-multilingual"):
        record = json.loads((smoke_bundle / "runs" / slug / "calibration.queries.json").read_text())
        assert record["kind"] == "none" and record["source"] == "no variant of this run calibrates"
        assert not record["queries"] and not read_trec(smoke_bundle / "runs" / slug / "calibration.trec")


@pytest.mark.slow
def test_the_depth_curve_grows_in_cost_and_ends_at_the_full_rerank(smoke_bundle):
    depth = pd.read_parquet(smoke_bundle / "tables" / "depth.parquet")
    summary = pd.read_parquet(smoke_bundle / "tables" / "summary.parquet")
    assert set(depth["depth"]) == {2, 5, 10} and {"fixture:tiny", "fixture:multilingual", "macro-average"} <= set(depth["dataset"])
    assert set(depth["reranker"]) == {"twin:tiny-xlmr", "twin:tiny-bert", "twin:tiny-qwen3"}  # comparison rerankers too
    for (dataset, reranker, variant, device), curve in depth.groupby(["dataset", "reranker", "variant", "device"]):
        curve = curve.sort_values("depth")
        assert curve["pairs_per_query"].is_monotonic_increasing and curve["ms_per_query"].is_monotonic_increasing
        full = summary[(summary["dataset"] == dataset) & (summary["reranker"] == reranker) & (summary["variant"] == variant)
                       & (summary["device"] == device) & (summary["measure"] == "nDCG@10")].iloc[0]
        at_depth = curve[curve["depth"] == 10].iloc[0]
        assert at_depth["mean"] == pytest.approx(full["mean"]) and at_depth["lift_abs"] == pytest.approx(full["lift_abs"])
