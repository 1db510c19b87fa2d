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
    ("corpus.jsonl", 6, json.dumps({"_id": "d01", "text": "dup"}), r"corpus.jsonl:6: duplicate document id 'd01'"),
    ("queries.jsonl", 2, json.dumps({"id": "q02", "text": "x"}), r"queries.jsonl:2: missing '_id'"),
    ("qrels/test.tsv", 4, "q03\td99\t1", r"test.tsv:4: document 'd99' is not in the corpus"),
    ("qrels/test.tsv", 4, "q99\td01\t1", r"test.tsv:4: query 'q99' is not in queries.jsonl"),
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

    qrels_trec.write_text(qrels_trec.read_text() + "q01 0 nosuchdoc 1\n")
    with pytest.raises(CollectionError, match=r"qrels record \d+: unknown document 'nosuchdoc'"):
        load_ir_datasets(dataset_id)


def test_queries_judged_only_non_relevant_are_not_evaluated(beir_copy):
    """A query whose only judgments are grade 0 has nothing to find: it would add a tie to every comparison."""
    qrels = beir_copy / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q12\td01\t0\nq12\td02\t0\n")
    collection = load_beir_folder(beir_copy)
    assert "q12" in collection.qrels and "q12" not in collection.judged_query_ids
    assert "q12" in collection.unevaluated_query_ids and len(collection.judged_query_ids) == 13
