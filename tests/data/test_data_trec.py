"""TREC run files: our rank order survives a write and a read."""

from runlocalai_bench.data.trec import order, read_trec, write_trec


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
