"""Collections: the fixture, BEIR folders (strict, file:line errors), the ir_datasets adapter, query sampling."""

import gzip
import json

import pytest

from runlocalai_bench.data.beir import load_beir_folder
from runlocalai_bench.data.collection import CollectionError
from runlocalai_bench.data.irds import load_ir_datasets
from runlocalai_bench.data.specs import load_collection


def test_fixture_loads_with_graded_judgments():
    collection = load_collection("fixture:tiny")
    assert len(collection.docs) == 40
    assert "q12" in collection.queries and "q12" not in collection.judged_query_ids  # unjudged stays out
    assert {2, 1, 0} <= {r for judged in collection.qrels.values() for r in judged.values()}
    assert collection.docs["d02"].contents.startswith("Caffeinated beverages and cardiovascular events In a cohort")


def test_sampling_is_deterministic_and_seeded():
    collection = load_collection("fixture:tiny")
    first = collection.sample_queries(5, seed=3)
    assert first == collection.sample_queries(5, seed=3) and len(first) == 5 and first == sorted(first)
    assert first != collection.sample_queries(5, seed=4)
    assert collection.sample_queries(None, 0) == collection.judged_query_ids
    # nested: a smaller sample is a subset of a larger one with the same seed (budgeted executions pair on it)
    sizes = range(1, len(collection.judged_query_ids) + 1)
    samples = [set(collection.sample_queries(n, seed=3)) for n in sizes]
    assert all(a < b for a, b in zip(samples, samples[1:]))
    assert collection.query_order(3)[:5] != collection.query_order(4)[:5]


def test_gzipped_corpus_and_content_hash_independent_of_format(beir_copy):
    plain = load_beir_folder(beir_copy)
    corpus = beir_copy / "corpus.jsonl"
    with gzip.open(beir_copy / "corpus.jsonl.gz", "wt") as handle:
        handle.write(corpus.read_text())
    corpus.unlink()
    zipped = load_beir_folder(beir_copy)
    assert zipped.docs == plain.docs and zipped.content_hash == plain.content_hash


@pytest.mark.parametrize("file, line, replacement, message", [
    ("corpus.jsonl", 3, "{not json", r"corpus.jsonl:3: not valid JSON"),
    ("corpus.jsonl", 5, json.dumps({"_id": "d05", "title": "x"}), r"corpus.jsonl:5: missing 'text' \(found keys: _id, title\)"),
    ("queries.jsonl", 2, json.dumps({"id": "q02", "text": "x"}), r"queries.jsonl:2: missing '_id'"),
    ("qrels/test.tsv", 4, "q99\td01\t1", r"test.tsv:4: query 'q99' is not among the queries"),
    ("qrels/test.tsv", 4, "q03\td11\thigh", r"test.tsv:4: score 'high' is not an integer"),
    ("qrels/test.tsv", 4, "q03 d11 1", r"test.tsv:4: expected 3 tab-separated columns"),
])
def test_malformed_files_name_file_and_line(beir_copy, file, line, replacement, message):
    path = beir_copy / file
    lines = path.read_text().splitlines()
    lines[line - 1] = replacement
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CollectionError, match=message):
        load_beir_folder(beir_copy)


def test_missing_split_lists_available(beir_copy):
    with pytest.raises(CollectionError, match=r"no judgments for split 'dev'; available splits: \['test'\]"):
        load_beir_folder(beir_copy, "dev")


def test_ir_datasets_adapter_on_a_locally_registered_dataset(beir_copy, tmp_path, monkeypatch):
    """The ir_datasets code path, offline: a dataset built by ir_datasets.create_dataset and registered."""
    import ir_datasets

    beir = load_beir_folder(beir_copy)
    docs_tsv, queries_tsv, qrels_trec = tmp_path / "docs.tsv", tmp_path / "queries.tsv", tmp_path / "qrels"
    docs_tsv.write_text("".join(f"{d.doc_id}\t{d.contents}\n" for d in beir.docs.values()))
    queries_tsv.write_text("".join(f"{q}\t{t}\n" for q, t in beir.queries.items()))
    qrels_trec.write_text("".join(f"{q} 0 {d} {r}\n" for q, judged in beir.qrels.items() for d, r in judged.items()))
    dataset_id = "runlocalai-test/tiny"
    monkeypatch.setitem(ir_datasets.registry._registered, dataset_id,
                        ir_datasets.create_dataset(docs_tsv=str(docs_tsv), queries_tsv=str(queries_tsv), qrels_trec=str(qrels_trec)))
    collection = load_collection(dataset_id)
    assert collection.source == f"ir_datasets:{dataset_id}"
    assert collection.qrels == beir.qrels and collection.queries == beir.queries
    # TSV docs have no title field: contents is the text alone, equal to the BEIR title + text.
    assert {d: doc.contents for d, doc in collection.docs.items()} == {d: doc.contents for d, doc in beir.docs.items()}

    qrels_trec.write_text(qrels_trec.read_text() + "q01 0 nosuchdoc 1\nq99 0 d01 1\n")
    with pytest.raises(CollectionError, match=r"qrels record \d+: query 'q99' is not among the queries"):
        load_ir_datasets(dataset_id)
    qrels_trec.write_text(qrels_trec.read_text().replace("q99 0 d01 1\n", ""))
    kept = load_ir_datasets(dataset_id)  # the same rule as a BEIR folder: the judgment is kept and listed
    assert kept.qrels["q01"]["nosuchdoc"] == 1 and kept.missing_judged == {"q01": ["nosuchdoc"]}
    assert kept.split == "all"  # an id that names no split: the judgments it has


def test_queries_judged_only_non_relevant_are_evaluated_as_pytrec_eval_counts_them(beir_copy):
    """BEIR and MTEB average over every judged query; one judged only non-relevant scores 0 and stays in."""
    qrels = beir_copy / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q12\td01\t0\nq12\td02\t0\n")
    collection = load_beir_folder(beir_copy)
    assert "q12" in collection.judged_query_ids and collection.zero_positive_query_ids == ["q12"]
    assert "q12" not in collection.unevaluated_query_ids and len(collection.judged_query_ids) == 14


def test_one_rule_for_duplicates_and_missing_documents_in_beir_folders(beir_copy):
    corpus = beir_copy / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + json.dumps({"_id": "d01", "title": "", "text": "revised"}) + "\n")
    qrels = beir_copy / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q03\td99\t1\n")
    collection = load_beir_folder(beir_copy)
    assert collection.docs["d01"].text == "revised" and collection.duplicate_doc_ids == {"d01": 2}
    assert collection.qrels["q03"]["d99"] == 1 and collection.missing_judged == {"q03": ["d99"]}
