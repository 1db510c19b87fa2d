"""TREC run files: our rank order survives a write and a read."""

from runlocalai_bench.data.trec import read_trec, write_trec


def test_trec_round_trip(tmp_path):
    ranking = {"q2": [("d9", 1.5), ("d1", -0.25)], "q1": [("d3", 2.0)]}
    write_trec(tmp_path / "run.trec", ranking, tag="t")
    assert read_trec(tmp_path / "run.trec") == ranking
    assert (tmp_path / "run.trec").read_text().splitlines()[0] == "q1 Q0 d3 1 2 t"
