"""The timing harness's logic: warm-up rounds are not timed, minimums are respected. Never speed itself."""
import math

from runlocalai_bench.perf.timing import run_rounds, summarize_rounds, timed_sample


def test_rounds_respect_minimums_and_do_not_count_warmup():
    calls = []

    def step():
        calls.append(1)
        return 4, [0.001, 0.002]

    rounds = run_rounds(step, warmup_rounds=3, min_seconds=0.0, min_rounds=5)
    assert len(calls) == 8 and len(rounds.pairs_per_s) == 5 and rounds.pairs_total == 20
    stats = summarize_rounds(rounds)
    assert stats["latency_p50_ms"] > 0 and stats["latency_samples"] == 10
    assert math.isnan(stats["latency_p99_ms"])  # 10 batch latencies are too few for a tail (see below)
    assert stats["pairs_per_s_iqr"] >= 0 and stats["rounds"] == 5


def test_the_timed_context_covers_the_timed_rounds_only():
    """Energy per 1,000 pairs divides by the timed pairs, so the meter must not see the warm-up."""
    log = []

    class Meter:
        def __enter__(self):
            log.append("start")

        def __exit__(self, *exc):
            log.append("stop")

    def step():
        log.append("step")
        return 1, [0.001]

    run_rounds(step, warmup_rounds=2, min_seconds=0.0, min_rounds=3, timed=Meter())
    assert log == ["step", "step", "start", "step", "step", "step", "stop"]


def test_the_timed_sample_spans_queries():
    pairs = [(f"query {q}", f"doc {d}") for q in range(10) for d in range(20)]
    sample = timed_sample(pairs, 16, seed=0)
    assert len(sample) == 16 and len({q for q, _ in sample}) > 5  # not one query's documents
    assert sample == timed_sample(pairs, 16, seed=0) and timed_sample(pairs, None, 0) == pairs


def test_gpu_memory_is_not_sampled_off_the_gpu():
    from runlocalai_bench.perf.nvml import VramPeak

    with VramPeak("cpu") as vram:
        pass
    assert vram.peak_mb is None and vram.source is None and vram._thread is None


def test_tail_percentiles_need_enough_samples():
    """A "p99" of 24 requests is their maximum: tails are reported only from min_samples(p) samples on."""
    from runlocalai_bench.perf.timing import Rounds, min_samples

    assert (min_samples(90), min_samples(99)) == (50, 500)
    few = summarize_rounds(Rounds([10.0, 11.0, 12.0], [0.1] * 24, 30))
    assert few["latency_p50_ms"] == 100.0 and few["latency_samples"] == 24
    assert math.isnan(few["latency_p90_ms"]) and math.isnan(few["latency_p99_ms"])
    assert (few["pairs_per_s_q1"], few["pairs_per_s_q3"]) == (10.5, 11.5)
    many = summarize_rounds(Rounds([10.0, 11.0, 12.0], [0.1] * 499 + [1.0], 30))
    assert many["latency_p90_ms"] == 100.0 and not math.isnan(many["latency_p99_ms"])


def test_stored_tails_are_shown_only_where_enough_samples_were_recorded():
    import pandas as pd

    from runlocalai_bench.perf.timing import shown_tail

    rows = pd.DataFrame({"latency_p99_ms": [40.0, 55.0], "latency_samples": [24, 600]})
    assert shown_tail(rows, 99).isna().tolist() == [True, False]
    old = pd.DataFrame({"latency_p99_ms": [40.0]})  # a bundle from before the sample count was recorded
    assert shown_tail(old, 99).isna().all()
