"""TREC run files: our rank order survives a write and a read."""

from runlocalai_bench.data.rankings import order
from runlocalai_bench.data.trec import read_trec, write_trec


def test_trec_round_trip(tmp_path):
    ranking = {"q2": [("d9", 1.5), ("d1", -0.25)], "q1": [("d3", 2.0)]}
    write_trec(tmp_path / "run.trec", ranking, tag="t")
    assert {q: [d for d, _ in docs] for q, docs in read_trec(tmp_path / "run.trec").items()} == {
        q: [d for d, _ in docs] for q, docs in ranking.items()}
    assert (tmp_path / "run.trec").read_text().splitlines()[:2] == ["q1 Q0 d3 1 1 t", "q2 Q0 d9 1 2 t"]


def test_trec_eval_evaluates_the_order_we_wrote_even_with_tied_scores(tmp_path):
    """pytrec_eval (trec_eval's rules) sorts a run file by score, ties by doc id descending. Tied raw scores
    written as such would let it reverse our doc-id-ascending tie order; rank-derived scores cannot."""
    import pytrec_eval

    ranking = {"q": order([("a", 0.5), ("b", 0.5), ("c", 0.1)])}  # tie: a before b in our order
    write_trec(tmp_path / "run.trec", ranking, tag="t")
    run: dict[str, dict[str, float]] = {}
    for line in (tmp_path / "run.trec").read_text().splitlines():
        query_id, _, doc_id, _, score, _ = line.split()
        run.setdefault(query_id, {})[doc_id] = float(score)
    evaluator = pytrec_eval.RelevanceEvaluator({"q": {"a": 1}}, {"recip_rank"})
    assert evaluator.evaluate(run)["q"]["recip_rank"] == 1.0


def test_run_files_from_elsewhere_are_checked_against_the_dataset(tmp_path):
    import pytest

    from runlocalai_bench.data.specs import load_collection
    from runlocalai_bench.data.trec import RunFileError

    collection = load_collection("fixture:tiny")
    path = tmp_path / "bge-m3.trec"
    path.write_text("q01 Q0 d02 1 9.5 m3\nq01 Q0 d04 2 9.1 m3\nq01 Q0 d99 3 8.0 m3\n")
    with pytest.raises(RunFileError, match=r"bge-m3.trec:3: document 'd99' is not in the corpus"):
        read_trec(path, queries=collection.queries, docs=collection.docs, by="score")
    path.write_text("q01 Q0 d02 1 9.5 m3\nx77 Q0 d04 1 9.1 m3\n")
    with pytest.raises(RunFileError, match=r"bge-m3.trec:2: query 'x77' is not in the dataset"):
        read_trec(path, queries=collection.queries, docs=collection.docs)
    path.write_text("q01 Q0 d02 1 9.5 m3\nq01 Q0 d02 2 9.1 m3\n")
    with pytest.raises(RunFileError, match=r"bge-m3.trec:2: document 'd02' already ranked for query 'q01' \(line 1\)"):
        read_trec(path)
    path.write_text("q01 Q0 d04 1 1.0 m3\nq01 Q0 d02 2 3.0 m3\n")  # ranks disagree with scores: scores decide
    assert [d for d, _ in read_trec(path, by="score")["q01"]] == ["d02", "d04"]
