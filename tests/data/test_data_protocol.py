"""The evaluation protocol per dataset (data/protocol.py), and default.yaml's ten datasets through ir_datasets'
own loaders on look-alikes carrying each dataset's quirks (tests/lookalikes.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lookalikes import write_lookalikes
from runlocalai_bench.data.protocol import (
    BEIR, BEIR_IDENTICAL_IDS, LOCAL, MIRACL, drop_identical_ids, extra_depth, protocol_for, split_of,
)
from runlocalai_bench.params import load_params
from support import REPO


@pytest.mark.parametrize("text, ir_datasets_id, expected", [
    ("beir/arguana", True, BEIR_IDENTICAL_IDS), ("beir/fiqa/test", True, BEIR_IDENTICAL_IDS),
    ("beir/fiqa/dev", True, BEIR_IDENTICAL_IDS), ("beir/scifact/test", True, BEIR),
    ("beir/trec-covid", True, BEIR), ("beir/scidocs", True, BEIR), ("miracl/yo/dev", True, MIRACL),
    ("miracl/sw/dev", True, MIRACL), ("arguana", False, BEIR_IDENTICAL_IDS), ("tiny", False, LOCAL),
])
def test_protocol_by_dataset(text, ir_datasets_id, expected):
    assert protocol_for(text, ir_datasets_id) == expected


def test_miracl_never_ignores_identical_ids_whatever_its_name():
    for lang in ("yo", "sw", "fiqa", "arguana"):  # even a (hypothetical) language code that names a BEIR set
        assert not protocol_for(f"miracl/{lang}/dev", True).ignore_identical_ids


@pytest.mark.parametrize("dataset_id, split", [
    ("miracl/sw/dev", "dev"), ("miracl/yo/test-b", "test-b"), ("beir/scifact/test", "test"),
    ("beir/fiqa/train", "train"), ("beir/arguana", "test"), ("msmarco-passage/trec-dl-2019/judged", "all"),
])
def test_split_comes_from_the_id(dataset_id, split):
    assert split_of(dataset_id) == split


def test_identical_ids_are_dropped_and_depth_kept_only_where_the_protocol_says():
    ranking = {"q1": [("q1", 0.9), ("d1", 0.8), ("d2", 0.7)], "q2": [("d1", 0.5), ("d2", 0.4), ("d3", 0.3)]}
    kept, dropped = drop_identical_ids(ranking, 2, BEIR_IDENTICAL_IDS)
    assert kept == {"q1": [("d1", 0.8), ("d2", 0.7)], "q2": [("d1", 0.5), ("d2", 0.4)]} and dropped == 1
    assert extra_depth(BEIR_IDENTICAL_IDS) == 1 and extra_depth(MIRACL) == 0
    kept, seen = drop_identical_ids(ranking, 2, MIRACL)
    assert kept["q1"] == [("q1", 0.9), ("d1", 0.8)] and seen == 1  # counted, never removed


# ir_datasets binds its download folders to IR_DATASETS_HOME when it is first imported: the loaders run in a
# fresh interpreter with the look-alikes' home set, as a real run's kernels do.
LOAD_ALL = """
import json, sys
from runlocalai_bench.data.specs import load_collection
from runlocalai_bench.retrieval.calibration import train_source
from runlocalai_bench.data.specs import DatasetSpec
facts = {}
for dataset_id in sys.argv[1:]:
    c = load_collection(dataset_id)
    train = train_source(DatasetSpec.parse(dataset_id), 16, 0)
    facts[dataset_id] = {
        "split": c.split, "protocol": c.protocol.name, "n_docs": len(c.docs), "docs": sorted(c.docs),
        "missing": c.missing_judged, "duplicates": c.duplicate_doc_ids, "judged": c.judged_query_ids,
        "zero_positive": c.zero_positive_query_ids, "qrels": c.qrels, "language": c.language,
        "train": train.source if train else None, "train_queries": sorted(train.queries) if train else [],
        "texts": {d: c.docs[d].contents for d in list(c.docs)[:3]}}
print(json.dumps(facts))
"""


@pytest.fixture(scope="module")
def lookalikes(tmp_path_factory):
    home = tmp_path_factory.mktemp("ir_datasets")
    made = write_lookalikes(home)
    env = {**os.environ, "IR_DATASETS_HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", LOAD_ALL, *made], env=env, capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return made, json.loads(done.stdout.strip().splitlines()[-1])


def test_default_yaml_datasets_are_the_lookalikes(lookalikes):
    made, _ = lookalikes
    assert sorted(str(d) for d in load_params(REPO / "params" / "default.yaml").datasets) == sorted(made)


def test_each_quirk_follows_the_protocol_through_ir_datasets_loaders(lookalikes):
    made, facts = lookalikes
    arguana = facts["beir/arguana"]
    assert arguana["protocol"] == "beir-identical-ids" and arguana["split"] == "test"
    # judgments on documents the corpus lacks: kept, listed, and the query still evaluated
    assert sorted((q, d) for q, ds in arguana["missing"].items() for d in ds) == sorted(made["beir/arguana"].missing)
    for query_id, doc_id in made["beir/arguana"].missing:
        assert arguana["qrels"][query_id][doc_id] == 1 and query_id in arguana["judged"]
    assert facts["beir/fiqa/test"]["protocol"] == "beir-identical-ids"
    scidocs = facts["beir/scidocs"]  # one rule for duplicates: the last record wins, counted
    assert scidocs["duplicates"] == {d: 2 for d in made["beir/scidocs"].duplicates}
    duplicate = made["beir/scidocs"].duplicates[0]
    assert facts["beir/scidocs"]["n_docs"] == len(made["beir/scidocs"].docs)
    scifact = facts["beir/scifact/test"]  # judged only non-relevant: evaluated (scores 0), counted
    assert scifact["zero_positive"] == made["beir/scifact/test"].zero_positive
    assert set(made["beir/scifact/test"].zero_positive) <= set(scifact["judged"])
    assert -1 in {g for ds in facts["beir/trec-covid"]["qrels"].values() for g in ds.values()}
    for lang in ("sw", "yo", "bn", "te"):
        miracl = facts[f"miracl/{lang}/dev"]
        assert miracl["split"] == "dev" and miracl["protocol"] == "miracl" and miracl["language"] == lang
        assert miracl["n_docs"] == len(made[f"miracl/{lang}/dev"].docs)  # every corpus file read (te has two)
    yoruba = made["miracl/yo/dev"].relevant_self_id
    assert facts["miracl/yo/dev"]["qrels"][yoruba][yoruba] == 1 and yoruba in facts["miracl/yo/dev"]["docs"]
    assert duplicate in scidocs["docs"]


def test_calibration_comes_from_the_train_split_where_ir_datasets_has_one(lookalikes):
    made, facts = lookalikes
    expected = {"beir/scifact/test": "beir/scifact/train", "beir/nfcorpus/test": "beir/nfcorpus/train",
                "beir/fiqa/test": "beir/fiqa/train", "miracl/sw/dev": "miracl/sw/train",
                "miracl/bn/dev": "miracl/bn/train", "miracl/te/dev": "miracl/te/train"}
    for dataset_id, fact in facts.items():
        train = expected.get(dataset_id)
        assert fact["train"] == (f"ir_datasets:{train}" if train else None), dataset_id
        if train:  # the train split's own queries (the first stage leaves out any that is evaluated)
            assert fact["train_queries"] == sorted(made[dataset_id].queries["train"])


def test_missing_documents_zero_positive_queries_and_negative_grades_score_as_pytrec_eval_does():
    """The same run and judgments through the suite's evaluation and through pytrec_eval itself."""
    import pytrec_eval

    from runlocalai_bench.data.collection import Document, assemble
    from runlocalai_bench.quality.metrics import evaluate
    from runlocalai_bench.quality.reachable import best_reachable

    docs = [Document(f"d{i}", "", f"text {i}") for i in range(6)]
    judgments = [("q1", "d0", 1, str), ("q1", "gone", 2, str), ("q2", "d1", 0, str), ("q2", "d2", 0, str),
                 ("q3", "d3", 2, str), ("q3", "d4", -1, str), ("q3", "d5", 1, str)]
    collection = assemble("x", "test", docs, {"q1": "a", "q2": "b", "q3": "c"}, judgments, source="x")
    assert collection.missing_judged == {"q1": ["gone"]} and collection.zero_positive_query_ids == ["q2"]
    run = {"q1": [("d0", 3.0), ("d1", 2.0)], "q2": [("d1", 3.0), ("d2", 2.0)],
           "q3": [("d4", 3.0), ("d5", 2.0), ("d3", 1.0)]}
    ours = evaluate(run, collection.qrels, collection.judged_query_ids, ["nDCG@10"])["nDCG@10"]
    evaluator = pytrec_eval.RelevanceEvaluator(collection.qrels, {"ndcg_cut.10"})
    theirs = {q: v["ndcg_cut_10"] for q, v in evaluator.evaluate(
        {q: {d: s for d, s in docs_} for q, docs_ in run.items()}).items()}
    assert ours == pytest.approx(theirs) and set(ours) == {"q1", "q2", "q3"}
    assert ours["q2"] == 0.0 and 0 < ours["q1"] < 1  # q1's ideal DCG counts the missing grade-2 document
    assert best_reachable(collection, ["q1"])["q1"] == pytest.approx(theirs["q1"])  # d0 first is all q1 can do


def test_calibration_never_takes_an_evaluated_query_and_renames_a_clashing_id():
    from runlocalai_bench.run.stages import calibration_queries

    evaluated = {"q1": "what is x", "q2": "what is y"}
    known = {**evaluated, "u1": "unjudged"}
    kept = calibration_queries({"q1": "what is x", "t9": "what is y", "q2": "another question", "t1": "fresh",
                                "u1": "unjudged"}, evaluated, known)
    assert kept == {"calibration:q2": "another question", "t1": "fresh", "u1": "unjudged"}
