"""The timing harness's logic: warm-up rounds are not timed, minimums are respected. Never speed itself."""

from runlocalai_bench.perf.timing import run_rounds, summarize_rounds


def test_rounds_respect_minimums_and_do_not_count_warmup():
    calls = []

    def step():
        calls.append(1)
        return 4, [0.001, 0.002]

    rounds = run_rounds(step, warmup_rounds=3, min_seconds=0.0, min_rounds=5)
    assert len(calls) == 8 and len(rounds.pairs_per_s) == 5 and rounds.pairs_total == 20
    stats = summarize_rounds(rounds)
    assert stats["latency_p50_ms"] <= stats["latency_p90_ms"] <= stats["latency_p99_ms"]
    assert stats["pairs_per_s_iqr"] >= 0 and stats["rounds"] == 5
