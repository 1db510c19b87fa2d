"""The report's "Served under load" section, read from the published served bundle (real measurements)."""

from pathlib import Path

import pytest

from runlocalai_bench.reporting.load import load_display, load_rows
from runlocalai_bench.results.tables import read_table

SERVED = Path(__file__).resolve().parents[2] / "results" / "published" / "scifact_bge-reranker-v2-m3-twin-cpu-served"


def test_served_over_in_process_compares_the_same_queries_not_the_sweeps_point():
    load, throughput = read_table(SERVED, "load"), read_table(SERVED, "throughput")
    rows = load_rows(load, throughput).set_index("variant")
    query = throughput[throughput["workload"] == "query"].set_index("variant")["pairs_per_s"]
    for served, in_process in (("server-infinity-torch", "torch-fp32"), ("server-llama-q4_k_m", "gguf-q4_k_m")):
        row = rows.loc[served]
        assert row["in_process"] == in_process
        assert row["served_query_pairs_per_s"] == query[served] and row["in_process_pairs_per_s"] == query[in_process]
        closed_one = load[(load["variant"] == served) & (load["mode"] == "closed") & (load["concurrency"] == 1)]
        assert row["c1_pairs_per_s"] == pytest.approx(closed_one["pairs_per_s"].iloc[0])
    shown = load_display(rows.reset_index(), with_run=False).set_index("variant")
    assert shown.loc["server-infinity-torch", "served / in process"] == \
        f"{query['server-infinity-torch'] / query['torch-fp32']:.2f}x"
