"""The load generator: closed- and open-loop points against a real llama-server on 127.0.0.1 (the tiny twin),
what a point reports, and a server that is gone (every request a counted error, no hang). Figures are only
checked for consistency, never for speed: timing belongs to benchmarks."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from runlocalai_bench.perf.memory import peak_rss_mb, reset_peak_rss
from runlocalai_bench.rerankers.registry import get_variant, load_reranker
from runlocalai_bench.serving.load import Outcome, RerankRequest, Sweep, Target, run_sweep, summarize
from runlocalai_bench.serving.process import free_port
from support import SERVED_MAX_LENGTH as MAX_LENGTH, llama_server_missing

needs_server = pytest.mark.skipif(llama_server_missing() is not None, reason=llama_server_missing() or "")


def test_a_points_figures_come_from_its_answered_requests():
    outcomes = [Outcome(0.0, 0.5, 10, None), Outcome(0.0, 1.5, 10, None), Outcome(1.0, 2.0, 4, None),
                Outcome(1.0, 1.2, 10, "HTTP 500: input is too large")]
    row = summarize(outcomes, seconds=2.0, latency_target_s=1.0)
    assert row["requests"] == 4 and row["errors"] == 1 and row["error_rate"] == 0.25
    assert row["requests_per_s"] == 1.5 and row["pairs_per_s"] == 12.0  # 24 pairs answered in 2 s
    assert row["p50_s"] == pytest.approx(1.0) and row["p99_s"] == pytest.approx(1.49)
    assert row["goodput_per_s"] == 1.0  # two of the three answers within 1 s
    assert row["first_error"] == "HTTP 500: input is too large"


SWEEP = Sweep(concurrencies=(1, 2), rate_fractions=(0.5, 1.5), warmup_requests=1, min_requests=4, min_seconds=0.2,
              open_requests=6, open_seconds=0.5, latency_target_s=10.0)


def test_a_server_that_is_not_there_gives_errors_not_a_hang():
    """Run from inside a running event loop, as in the notebook kernel the rerank stage runs in."""
    target = Target(f"http://127.0.0.1:{free_port()}", timeout_s=5.0)

    async def in_a_kernel() -> list[dict]:
        return run_sweep(target, [RerankRequest("q", ("a", "b"))], SWEEP)

    rows = asyncio.run(in_a_kernel())
    assert [r["mode"] for r in rows] == ["closed", "closed"]  # no capacity measured: no open-loop points
    assert all(r["error_rate"] == 1.0 and r["requests_per_s"] == 0 and "ConnectError" in r["first_error"]
               for r in rows)


@needs_server
def test_a_sweep_against_llama_server(tiny_xlmr, session_cache, fixture_pairs):
    reranker = load_reranker(get_variant("server-llama-q4_k_m"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache,
                             MAX_LENGTH, server_slots=2)
    try:
        queries = [fixture_pairs[i:i + 4] for i in range(0, 16, 4)]
        requests = reranker.load_requests(queries, MAX_LENGTH)
        assert [len(r.documents) for r in requests] == [4, 4, 4, 4]
        pid = reranker.memory_pid()
        rows = run_sweep(reranker.load_target(), requests, SWEEP, before_point=lambda: reset_peak_rss(pid),
                         after_point=lambda row: {**row, "peak_rss_mb": peak_rss_mb(pid)})
    finally:
        reranker.close()
    assert [(r["mode"], r["concurrency"], r.get("rate_fraction")) for r in rows] == [
        ("closed", 1, None), ("closed", 2, None), ("open", None, 0.5), ("open", None, 1.5)]
    for row in rows:
        assert row["errors"] == 0 and row["requests"] >= 4
        assert row["p50_s"] <= row["p90_s"] <= row["p99_s"]
        assert 0 < row["goodput_per_s"] <= row["requests_per_s"] + 1e-9
        assert row["pairs_per_s"] == pytest.approx(4 * row["requests_per_s"])
        assert row["peak_rss_mb"] > 0 and row["client_cpu"] > 0
    capacity = max(r["requests_per_s"] for r in rows[:2])
    assert np.isclose(rows[2]["offered_rate"], 0.5 * capacity) and np.isclose(rows[3]["offered_rate"], 1.5 * capacity)
    assert rows[3]["requests"] == max(6, int(np.ceil(1.5 * capacity * 0.5)))
