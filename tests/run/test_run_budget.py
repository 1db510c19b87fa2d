"""The budget's allocation (run/budget.py) on constructed costs: every rule at its edges."""

import pytest

from runlocalai_bench.run.budget import FIRST_STAGE_SHARE, BudgetError, DatasetCost, ExecutionCost, allocate

HOUR = 3600.0


def dataset(label, queries=300, docs=5_000, first_stage_s=0.0, judged=1.0, pool=100):
    return DatasetCost(label, queries, docs, first_stage_s, judged, pool)


def execution(name, per_query, fixed=60.0, emulated=None):
    return ExecutionCost(name, fixed, per_query, emulated, start_s=10.0)


def test_everything_fits_when_the_budget_covers_the_full_run():
    data = [dataset("a"), dataset("b", queries=100)]
    runs = [execution("fp32", {"a": 1.0, "b": 1.0}), execution("int8", {"a": 0.5, "b": 0.5})]
    allocation = allocate(10 * HOUR, data, runs, min_queries=50)
    assert allocation.queries == {"fp32": {"a": 300, "b": 100}, "int8": {"a": 300, "b": 100}}
    assert not allocation.skipped and allocation.predicted_s == pytest.approx(120 + 400 + 200)
    assert all(c.kind == "full" for c in allocation.corpora.values())


def test_equal_shares_and_what_a_cheap_execution_leaves_goes_to_the_others():
    data = [dataset("a", queries=1000)]
    runs = [execution("cheap", {"a": 0.1}, fixed=0), execution("slow", {"a": 10.0}, fixed=0),
            execution("slower", {"a": 20.0}, fixed=0)]
    allocation = allocate(3000.0, data, runs, min_queries=50)
    # minimums first (50 queries: 5 + 500 + 1000 s), then the 1,495 s left shared equally (498 s each): the
    # cheap one takes all its queries for 95 s and leaves the rest, 700 s each, to the other two
    assert allocation.queries["cheap"] == {"a": 1000}
    assert allocation.queries["slow"] == {"a": 120} and allocation.queries["slower"] == {"a": 85}
    assert allocation.predicted_s <= 3000.0


def test_within_an_execution_every_dataset_gets_the_same_n_capped_at_what_it_has():
    data = [dataset("small", queries=60), dataset("large", queries=5000)]
    allocation = allocate(1000.0, data, [execution("e", {"small": 1.0, "large": 1.0}, fixed=0)], min_queries=50)
    # n small + n large <= 1000 with small capped at 60: n = 940
    assert allocation.queries["e"] == {"small": 60, "large": 940}


def test_below_the_minimum_an_execution_is_a_recorded_skip_and_pays_only_its_start():
    data = [dataset("a", queries=1000)]
    runs = [execution("fast", {"a": 1.0}, fixed=100), execution("slow", {"a": 100.0}, fixed=100)]
    allocation = allocate(2200.0, data, runs, min_queries=50)
    assert "slow" not in allocation.queries and "does not pay its minimum (~85 min" in allocation.skipped["slow"]
    # the skipped execution pays its start (10 s), never its loading or timing
    assert allocation.lanes[""] - allocation.seconds["fast"] == pytest.approx(110)
    assert allocation.queries["fast"] == {"a": 1000} and allocation.predicted_s <= 2200


def test_emulated_and_unrated_executions_get_the_minimum_with_a_line_saying_why():
    data = [dataset("a", queries=1000), dataset("tiny", queries=20)]
    runs = [execution("torch-fp32", {"a": 1.0, "tiny": 1.0}),
            execution("torch-fp16", {"a": 4.0, "tiny": 4.0}, emulated="fp16 widened to fp32 on this CPU"),
            execution("mystery", None)]
    allocation = allocate(100 * HOUR, data, runs, min_queries=50)
    assert allocation.queries["torch-fp16"] == {"a": 50, "tiny": 20} == allocation.queries["mystery"]
    assert allocation.queries["torch-fp32"] == {"a": 1000, "tiny": 20}
    assert any("torch-fp16" in n and "widened" in n for n in allocation.notes)
    assert any("mystery" in n and "no predicted rate" in n for n in allocation.notes)


def test_a_budget_below_the_fixed_costs_is_refused_with_the_smallest_that_would_do():
    with pytest.raises(BudgetError, match=r"funds no reranking.*e alone needs ~4 min .* 50 queries of a"):
        allocate(100.0, [dataset("a")], [execution("e", {"a": 1.0}, fixed=180)], min_queries=50)
    # a cheap comparison reranker funded is no run without the reference every variant is compared with
    reference = ExecutionCost("torch-fp32", 180.0, {"a": 1.0}, priority=0)
    with pytest.raises(BudgetError, match="torch-fp32 alone needs"):
        allocate(100.0, [dataset("a")], [reference, execution("minilm", {"a": 0.01}, fixed=0)], min_queries=50)
    with pytest.raises(BudgetError, match="does not cover starting the run's stages"):
        allocate(100.0, [dataset("a")], [execution("e", {"a": 1.0})], min_queries=50, overhead_s=120)


def test_a_first_stage_that_does_not_fit_its_share_runs_on_a_reduced_corpus():
    data = [dataset("cheap", docs=5_000, first_stage_s=100.0),
            dataset("huge", queries=2000, docs=500_000, first_stage_s=100 * HOUR, judged=2.0, pool=100)]
    budget = 8 * HOUR
    allocation = allocate(budget, data, [execution("e", {"cheap": 0.1, "huge": 0.1}, fixed=0)], min_queries=50)
    cheap, huge = allocation.corpora["cheap"], allocation.corpora["huge"]
    assert cheap.kind == "full" and cheap.seconds == 100.0
    assert huge.kind == "reduced"
    # water-filling: the cheap dataset leaves the rest of the first stage's share to the huge one
    share = budget * FIRST_STAGE_SHARE - 100.0
    assert huge.seconds <= share and huge.docs == int(share / (100 * HOUR / 500_000))
    # as many queries as the reduced corpus holds (102 documents a query: 100 pooled, 2 judged)
    assert allocation.queries["e"]["huge"] == min(2000, int(huge.docs / 102))
    assert allocation.predicted_s <= budget
    assert any("huge: reduced corpus" in n for n in allocation.notes)


def test_a_share_that_cannot_hold_the_minimum_skips_the_dataset():
    data = [dataset("huge", docs=1_000_000, first_stage_s=1000 * HOUR, judged=1.0, pool=100), dataset("small")]
    allocation = allocate(HOUR, data, [execution("e", {"huge": 1.0, "small": 1.0}, fixed=0)], min_queries=50)
    assert allocation.corpora["huge"].kind == "skipped"
    assert "does not embed the 5,050 documents" in allocation.corpora["huge"].reason
    assert allocation.queries["e"] == {"small": 300}
    with pytest.raises(BudgetError, match="no dataset.s first stage fits its share: huge: the first stage.s share left"):
        allocate(HOUR, data[:1], [execution("e", {"huge": 1.0}, fixed=0)], min_queries=50)


def test_the_reference_is_funded_first_and_datasets_in_the_order_listed():
    data = [dataset("first", queries=100), dataset("second", queries=100), dataset("third", queries=100)]
    reference = ExecutionCost("torch-fp32", 0.0, {"first": 10.0, "second": 10.0, "third": 10.0}, priority=0)
    cheap = ExecutionCost("int8", 0.0, {"first": 1.0, "second": 1.0, "third": 1.0})
    # 1,050 s: the reference's minimum on two datasets (2 x 500 s) and the cheap one's on the rest (50 s)
    allocation = allocate(1050.0, data, [cheap, reference], min_queries=50)
    # (the 50 s int8 could not use go to the reference: 2 more queries on each of its datasets)
    assert allocation.queries["torch-fp32"] == {"first": 52, "second": 52}
    # every other execution covers the reference's datasets or none: int8's minimum on both (100 s) does not fit
    assert "int8" not in allocation.queries and "50 queries of first, second" in allocation.skipped["int8"]
    assert allocation.corpora["third"].kind == "skipped" and "no execution reaches it" in allocation.corpora["third"].reason
    assert allocation.first_stage_queries() == {"first": 52, "second": 52}


def test_a_dataset_no_execution_reaches_gives_its_first_stage_time_back():
    data = [dataset("cheap", queries=100, docs=1000, first_stage_s=100.0),
            dataset("dear", queries=100, docs=1000, first_stage_s=100.0)]
    reference = ExecutionCost("torch-fp32", 0.0, {"cheap": 1.0, "dear": 100.0}, priority=0)
    allocation = allocate(400.0, data, [reference], min_queries=50)
    # first stage 200 s (both full); the reference pays 50 s for cheap's minimum, not 5,000 s for dear's
    assert allocation.corpora["dear"].kind == "skipped" and allocation.first_stage_s == 100.0
    assert allocation.queries["torch-fp32"] == {"cheap": 100}  # dear's 100 s went to more queries of cheap


def test_a_dropped_dataset_s_first_stage_time_funds_the_other_executions():
    data = [dataset("a", queries=1000), dataset("b", queries=1000, docs=100, first_stage_s=500.0)]
    reference = ExecutionCost("ref", 0.0, {"a": 20.0, "b": 20.0}, priority=0)
    other = ExecutionCost("other", 0.0, {"a": 15.0, "b": 15.0})
    allocation = allocate(2000.0, data, [reference, other], min_queries=50)
    assert allocation.corpora["b"].kind == "skipped" and allocation.first_stage_s == 0.0
    assert set(allocation.queries["ref"]) == set(allocation.queries["other"]) == {"a"}


def test_when_every_first_stage_leaves_the_reference_unfunded_the_run_keeps_the_first_datasets():
    data = [dataset(label, docs=1000, first_stage_s=600.0) for label in ("a", "b", "c")]
    reference = ExecutionCost("torch-fp32", 2000.0, {"a": 1.0, "b": 1.0, "c": 1.0}, priority=0)
    # 3,600 s: all three first stages fit their half (1,800 s) but leave 1,800 s, less than the reference's
    # minimum (2,000 s + 50 queries); on a and b alone 2,400 s are left: its minimum and 300 s more
    allocation = allocate(3600.0, data, [reference], min_queries=50)
    assert [c.kind for c in allocation.corpora.values()] == ["full", "full", "skipped"]
    assert "fit a, b only" in allocation.corpora["c"].reason  # c's first stage given back to fund the reference
    assert allocation.queries["torch-fp32"] == {"a": 200, "b": 200} and allocation.predicted_s <= 3600


def test_nodes_side_by_side_each_get_the_budget_after_the_first_stage_and_the_slowest_decides():
    """Two lanes (this machine and a Ray node class) run at the same time: each has the whole budget after the
    first stage, not half of it; the common datasets are still chosen once; the wall time is the slower lane's."""
    data = [dataset("a", queries=1000, docs=1_000, first_stage_s=100.0), dataset("b", queries=1000)]
    here = ExecutionCost("here", 100.0, {"a": 2.0, "b": 2.0}, start_s=10.0, priority=0)
    node = ExecutionCost("node", 100.0, {"a": 1.0, "b": 1.0}, start_s=10.0, priority=0, lane="gpu")
    alone = allocate(2100.0, data, [here], min_queries=50)
    both = allocate(2100.0, data, [here, node], min_queries=50)
    assert both.queries["here"] == alone.queries["here"]  # the other node takes nothing from this machine's time
    assert both.queries["node"]["a"] > both.queries["here"]["a"] and set(both.queries["node"]) == {"a", "b"}
    assert both.lanes["gpu"] <= 2000.0 and both.lanes[""] <= 2000.0
    assert both.predicted_s == pytest.approx(both.first_stage_s + max(both.lanes.values()))
    assert both.predicted_s <= 2100.0
    serial = allocate(2100.0, data, [here, ExecutionCost("node", 100.0, {"a": 1.0, "b": 1.0}, start_s=10.0)],
                      min_queries=50)
    assert serial.queries["here"]["a"] < both.queries["here"]["a"]  # one machine: the two share its time
    starved = ExecutionCost("slow", 100.0, {"a": 100.0, "b": 100.0}, start_s=10.0, lane="laptop")
    with_slow = allocate(2100.0, data, [here, node, starved], min_queries=50)
    assert "on the laptop node" in with_slow.skipped["slow"] and with_slow.lanes["laptop"] == 10.0


def test_a_faster_node_never_takes_datasets_or_its_reference_from_this_machine():
    """The common datasets are those every device's reference variant can pay for in its own lane: a fast node
    cannot widen them past what this machine's reference affords, which would leave this machine's other variants
    without their reference (drift and agreement are measured per device)."""
    data = [dataset("a", queries=1000), dataset("b", queries=1000)]
    here_fp32 = ExecutionCost("fp32 here", 0.0, {"a": 10.0, "b": 10.0}, priority=0, device="cpu")
    here_int8 = ExecutionCost("int8 here", 0.0, {"a": 5.0, "b": 5.0}, device="cpu")
    node_fp32 = ExecutionCost("fp32 node", 0.0, {"a": 1.0, "b": 1.0}, priority=0, lane="gpu", device="cuda@gpu")
    alone = allocate(800.0, data, [here_fp32, here_int8], min_queries=50)
    both = allocate(800.0, data, [here_fp32, here_int8, node_fp32], min_queries=50)
    assert set(alone.queries["fp32 here"]) == {"a"}
    assert set(both.queries["fp32 here"]) == set(both.queries["fp32 node"]) == {"a"}
    assert both.corpora["b"].kind == "skipped"
    assert both.queries["fp32 here"]["a"] == alone.queries["fp32 here"]["a"]


def test_a_device_whose_reference_cannot_be_paid_is_skipped_whole_and_the_other_lanes_go_on():
    data = [dataset("a", queries=1000)]
    here = ExecutionCost("fp32 here", 0.0, {"a": 1.0}, priority=0, device="cpu")
    slow_ref = ExecutionCost("fp32 laptop", 0.0, {"a": 100.0}, start_s=10.0, priority=0, lane="laptop",
                             device="cpu@laptop")
    slow_int8 = ExecutionCost("int8 laptop", 0.0, {"a": 1.0}, start_s=10.0, lane="laptop", device="cpu@laptop")
    allocation = allocate(1000.0, data, [here, slow_ref, slow_int8], min_queries=50)
    assert allocation.queries["fp32 here"] == {"a": 1000}
    assert "does not pay its minimum" in allocation.skipped["fp32 laptop"]
    assert "reference variant of cpu@laptop (fp32 laptop) is not funded" in allocation.skipped["int8 laptop"]
    assert allocation.lanes["laptop"] == 20.0  # two kernel starts, nothing else


def test_a_merged_bundle_s_runs_are_never_blended_into_one_rate(monkeypatch):
    """The committed twin bundle pools a Xeon run and an EPYC run: the plan takes the run of this machine's CPU (or
    the one named after '#'), never the median of both, and refuses when no run or several match."""
    from runlocalai_bench.params import ParamsError
    from runlocalai_bench.run import plan as plan_module
    from support import REPO

    twin = REPO / "results" / "published" / "scifact-minilm_bge-reranker-v2-m3-twin-cpu"
    xeon = plan_module.bundle_rates(f"{twin}#twin-cpu")[("torch-fp32", "cpu")]
    epyc = plan_module.bundle_rates(f"{twin}#twin-cpu-epyc")[("torch-fp32", "cpu")]
    assert xeon.pairs_per_s > 2 * epyc.pairs_per_s and xeon.source.endswith("#twin-cpu")
    monkeypatch.setattr(plan_module, "cpu_info", lambda: {"model": "AMD EPYC", "flags": ["avx", "avx2", "fma"]})
    assert plan_module.bundle_rates(twin)[("torch-fp32", "cpu")].pairs_per_s == epyc.pairs_per_s
    # The same generic Xeon name without AMX is another CPU: the AMX run's rates are not taken for it.
    no_amx = {"model": "Intel(R) Xeon(R) Processor", "flags": ["avx", "avx2", "avx512f", "fma"]}
    monkeypatch.setattr(plan_module, "cpu_info", lambda: no_amx)
    with pytest.raises(ParamsError, match="none ran on this CPU"):
        plan_module.bundle_rates(twin)
    monkeypatch.setattr(plan_module, "cpu_info", lambda: {"model": "Apple M4", "flags": []})
    with pytest.raises(ParamsError, match=r"pools runs of several machines \(twin-cpu, twin-cpu-epyc\).*#RUN_ID"):
        plan_module.bundle_rates(twin)
    with pytest.raises(ParamsError, match="no run 'laptop'"):
        plan_module.bundle_rates(f"{twin}#laptop")


def test_what_every_execution_pays_anyway_is_set_aside_so_a_plan_that_fits_does():
    """Skipped executions still start a kernel, unrated ones pay their fixed seconds: both come off the lane before
    anything is funded, so the predicted time never passes the budget however many are skipped."""
    data = [dataset("a", queries=1000)]
    reference = ExecutionCost("ref", 10.0, {"a": 10.0}, start_s=10.0, priority=0)
    skipped = [ExecutionCost(f"slow{i}", 10.0, {"a": 100.0}, start_s=10.0) for i in range(6)]
    unrated = ExecutionCost("unrated", 200.0, None, start_s=10.0)
    allocation = allocate(1000.0, data, [reference, *skipped, unrated], min_queries=50)
    assert all(f"slow{i}" in allocation.skipped for i in range(6)) and allocation.queries["ref"]["a"] > 50
    assert allocation.predicted_s <= 1000.0
    # A reference whose minimum fills the lane leaves nothing for the others' starts (or an unrated execution's
    # fixed seconds): the plan says so instead of predicting 1,050 s (or 1,110 s) and calling it a fit.
    greedy = ExecutionCost("ref", 10.0, {"a": 19.6}, start_s=10.0, priority=0)
    assert allocate(1000.0, data, [greedy], min_queries=50).predicted_s <= 1000.0
    with pytest.raises(BudgetError, match="funds no reranking"):
        allocate(1000.0, data, [greedy, *skipped], min_queries=50)
    with pytest.raises(BudgetError, match="funds no reranking"):
        allocate(1000.0, data, [reference, ExecutionCost("unrated", 600.0, None, start_s=10.0)], min_queries=50)


def test_a_prefix_counts_the_first_stage_time_it_gives_back():
    """Datasets past a prefix return their first stage's seconds: a longer prefix is judged with what the shorter
    one would give back, not against time still held by datasets it leaves out."""
    data = [dataset("a"), dataset("b"), dataset("c", docs=100, first_stage_s=400.0)]
    reference = ExecutionCost("ref", 0.0, {"a": 7.0, "b": 7.0, "c": 7.0}, priority=0)
    allocation = allocate(1000.0, data, [reference], min_queries=50)
    assert set(allocation.queries["ref"]) == {"a", "b"} and allocation.corpora["c"].kind == "skipped"


def test_a_retry_with_fewer_datasets_shows_the_reference_s_cost_not_a_first_stage_message():
    data = [dataset("big", docs=10_000_000, first_stage_s=1e9), dataset("small")]
    slow = ExecutionCost("ref", 0.0, {"big": 1e6, "small": 1e6}, priority=0)
    with pytest.raises(BudgetError, match="funds no reranking with the reference variant"):
        allocate(HOUR, data, [slow], min_queries=50)


def test_cached_or_free_first_stages_keep_the_full_corpus():
    data = [dataset("cached", docs=10_000_000, first_stage_s=0.0), dataset("unknown", first_stage_s=None)]
    allocation = allocate(HOUR, data, [execution("e", {"cached": 1.0, "unknown": 1.0}, fixed=0)], min_queries=50)
    assert allocation.corpora["cached"].kind == "full" and allocation.corpora["unknown"].kind == "full"
    assert "time unknown" in allocation.corpora["unknown"].reason


def test_the_first_stage_evaluates_the_largest_sample_any_execution_takes():
    data = [dataset("a", queries=1000)]
    runs = [execution("fast", {"a": 0.1}, fixed=0), execution("slow", {"a": 10.0}, fixed=0)]
    allocation = allocate(1100.0, data, runs, min_queries=50)
    assert allocation.first_stage_queries() == {"a": 1000}
    assert allocation.queries["slow"]["a"] < 1000
    only_slow = allocate(600.0, data, [runs[1]], min_queries=50)
    assert only_slow.first_stage_queries() == {"a": 60}
    assert allocate(600.0, data, [], min_queries=50).first_stage_queries() == {"a": 1000}  # nothing reranks


# ----------------------------------------------------------------------------- the stages under an allocation


def test_the_stages_evaluate_what_the_allocation_says_on_nested_samples_and_a_reduced_corpus(tmp_path, session_cache):
    """An allocation written as the runner writes it (budget.json), then the real stages on the fixtures: the
    reduced corpus keeps every judged document of the sampled queries, its rows are labelled, and each
    execution evaluates a prefix of the same seeded order."""
    import json

    import pandas as pd

    from runlocalai_bench.data.specs import DatasetSpec, reduced_label
    from runlocalai_bench.environment import fingerprint
    from runlocalai_bench.params import dump_params, load_params
    from runlocalai_bench.results.bundle import Bundle, write_json
    from runlocalai_bench.run import stages
    from support import REPO

    params = load_params(REPO / "params" / "smoke.yaml", [
        "reranker.variants=[torch-fp32, torch-int8]", "reranker.baselines=[]", "first_stage.depth=5",
        "reranker.depth=5", "throughput.enabled=false", "stages=[first_stage, rerank]", "run_id=budget",
        "budget=500s", "queries.min_n=3"])
    tiny, multilingual = "fixture:tiny", "fixture:multilingual"
    data = [DatasetCost(tiny, 13, 40, 400.0, 1.7, 5), DatasetCost(multilingual, 12, 36, 0.0, 3.0, 5)]
    runs = [ExecutionCost("rerank--torch-fp32--cpu", 0.0, {tiny: 1.0, multilingual: 1.0}),
            ExecutionCost("rerank--torch-int8--cpu", 0.0, {tiny: 30.0, multilingual: 30.0})]
    allocation = allocate(500.0, data, runs, min_queries=3)
    # the first stage's share (250 s at 10 s a document) holds 25 of tiny's 40 documents: 3 queries' worth
    assert allocation.corpora[tiny].kind == "reduced" and allocation.corpora[tiny].docs == 25
    assert allocation.queries == {"rerank--torch-fp32--cpu": {tiny: 3, multilingual: 12},
                                  "rerank--torch-int8--cpu": {tiny: 3, multilingual: 4}}
    bundle = Bundle(tmp_path / "bundle")
    bundle.root.mkdir()
    bundle.params_path.write_text(dump_params(params), encoding="utf-8")
    write_json(bundle.budget_path, allocation.record())
    write_json(bundle.environment_path, fingerprint())

    stages.first_stage(bundle.root)
    meta = json.loads((bundle.stages_dir / "first_stage.json").read_text())
    record = {d["label"]: d for d in meta["datasets"]}
    corpus = record[tiny]["corpus"]
    collection = DatasetSpec.parse(tiny).load("test")
    sampled = sorted(collection.query_order(0)[:3])
    judged = {d for q in sampled for d in collection.qrels[q] if d in collection.docs}
    assert corpus["kind"] == "reduced" and corpus["docs"] <= 25 and corpus["judged"] == len(judged)
    assert corpus["full_docs"] == 40 and corpus["judged"] + corpus["pooled"] + corpus["sampled"] == corpus["docs"]
    assert record[tiny]["n_docs"] == corpus["docs"] and record[multilingual]["corpus"]["kind"] == "full"
    candidates = {d for q, docs in stages.read_trec(bundle.first_stage_run(DatasetSpec.parse(tiny).slug)).items()
                  for d, _ in docs}
    assert sorted(stages.read_trec(bundle.first_stage_run(DatasetSpec.parse(tiny).slug))) == sampled
    assert candidates <= set(collection.docs)

    for variant in ("torch-fp32", "torch-int8"):
        stages.rerank(bundle.root, variant, "cpu")
    quality = pd.concat(pd.read_parquet(p) for p in (bundle.root / "tables" / "parts").glob("quality--*.parquet"))
    assert set(quality["dataset"]) == {reduced_label(tiny), multilingual}  # every row of the reduced one marked
    ndcg = quality[quality["measure"] == "nDCG@10"]
    queries = {(s, v, d): set(g["query_id"]) for (s, v, d), g in
               ndcg.fillna({"variant": "-"}).groupby(["system", "variant", "dataset"])}
    assert queries[("rerank", "torch-int8", multilingual)] < queries[("rerank", "torch-fp32", multilingual)]
    assert queries[("rerank", "torch-int8", multilingual)] == set(DatasetSpec.parse(multilingual).load("test")
                                                                     .query_order(0)[:4])
    assert queries[("rerank", "torch-fp32", reduced_label(tiny))] == set(sampled)

    from runlocalai_bench.run.finalize import finalize

    finalize(bundle.root)
    drift = pd.read_parquet(bundle.root / "tables" / "drift.parquet")
    assert set(drift["dataset"]) == {reduced_label(tiny), multilingual}
    assert set(drift.loc[drift["dataset"] == multilingual, "n_queries"]) == {4}  # the queries both scored
    report = (bundle.root / "report.md").read_text()
    assert "Sampled under a time budget" in report and "**Time budget (run budget).**" in report
    assert "rerank--torch-int8--cpu fixture:tiny 3, fixture:multilingual 4" in report
    assert f"{reduced_label(tiny)}" in report and "NanoBEIR-style" in report


# ------------------------------------------------------------------------------------------- the commands


def smoke_settings(cache) -> list[str]:
    from support import REPO

    settings = ["reranker.variants=[torch-fp32]", "reranker.baselines=[]", "throughput.enabled=false",
                "stages=[first_stage, rerank]", f"cache_dir={cache}"]
    return [str(REPO / "params" / "smoke.yaml"), *[a for s in settings for a in ("--set", s)]]


def test_a_budget_too_small_for_the_fixed_costs_stops_before_anything_is_written(tmp_path, session_cache, capsys):
    from runlocalai_bench.cli import EXIT_ERROR, main

    out = tmp_path / "bundle"
    assert main(["run", *smoke_settings(session_cache), "--budget", "1s", "--out", str(out)]) == EXIT_ERROR
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("runlocalai-bench:")]
    assert len(errors) == 1 and "budget 1 s does not cover starting the run's stages" in errors[0] and "raise --budget above" in errors[0]
    assert not list(tmp_path.iterdir())  # no bundle, no partial folder


def test_a_run_under_a_budget_plans_records_and_reports_its_samples(tmp_path, session_cache, capsys):
    import json

    from runlocalai_bench.cli import main

    out = tmp_path / "bundle"
    assert main(["run", *smoke_settings(session_cache), "--budget", "10h", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "budget       rerank--torch-fp32--cpu: fixture:tiny 13, fixture:multilingual 12 queries" in printed
    assert "for a budget of 10.0 h: fits" in printed
    record = json.loads((out / "budget.json").read_text())
    assert record["budget_s"] == 36_000 and record["queries"]["rerank--torch-fp32--cpu"] == {
        "fixture:tiny": 13, "fixture:multilingual": 12}
    assert "budget: 10h" in (out / "params.yaml").read_text()


def test_the_plan_finds_the_cached_embeddings_of_an_ir_datasets_corpus_without_reading_it(tmp_path):
    """An ir_datasets corpus is hashed only when read, which the plan does not do: the cache's record of what it
    embedded stands in, so a budget never reduces a corpus whose full embeddings are already on disk. An entry
    for another length, or whose matrix is gone, is not taken for one."""
    import numpy as np

    from runlocalai_bench.params import load_params
    from runlocalai_bench.retrieval.dense import EMBEDDING_DTYPE
    from runlocalai_bench.retrieval.embedding_cache import EmbeddingCache
    from runlocalai_bench.data.specs import DatasetSpec
    from runlocalai_bench.run.plan import (_cached_corpus_hash, _embedding_key, _embeddings_cached, _encoder_ref,
                                           dataset_size)
    from support import REPO

    params = load_params(REPO / "params" / "smoke.yaml", [f"cache_dir={tmp_path}", "datasets=[beir/arguana]"])
    ref = _encoder_ref(params)
    cache = EmbeddingCache(params.cache_path)
    assert _cached_corpus_hash(params, "beir/arguana") == ""
    meta = {"corpus": "c0ffee", "dataset": "beir/arguana", "dtype": EMBEDDING_DTYPE, "n_docs": 2}
    cache.put("stale-length", np.zeros((2, 4), np.float32), {**meta, "max_length": 999})
    cache.put(_embedding_key(params, ref, "c0ffee"), np.zeros((2, 4), np.float32),
              {**meta, "max_length": params.first_stage.max_length})
    cache.put("other-dataset", np.zeros((2, 4), np.float32),
              {**meta, "corpus": "beef", "dataset": "beir/fiqa/test", "max_length": params.first_stage.max_length})
    # A budgeted run's reduced corpus of the same dataset, cached later: never taken for the full corpus's.
    cache.put(_embedding_key(params, ref, "5ma11"), np.zeros((2, 4), np.float32),
              {**meta, "corpus": "5ma11", "reduced_from": "c0ffee", "max_length": params.first_stage.max_length})
    assert _cached_corpus_hash(params, "beir/arguana") == "c0ffee"
    size = dataset_size(DatasetSpec.parse("beir/arguana"), params, tokenizer=None)  # ir_datasets' metadata only
    assert size.content_hash == "c0ffee" and size.n_docs > 8_000
    assert _embeddings_cached(params, size)
    (cache.root / f"{_embedding_key(params, ref, 'c0ffee')}.npy").unlink()
    assert _cached_corpus_hash(params, "beir/arguana") == ""


def test_a_reduced_corpus_records_the_corpus_it_came_from():
    from runlocalai_bench.data.specs import DatasetSpec
    from runlocalai_bench.retrieval.reduced import reduce_corpus

    collection = DatasetSpec.parse("fixture:tiny").load("test")
    reduced, _ = reduce_corpus(collection, collection.judged_query_ids[:2], 5, 2, seed=0)
    assert reduced.reduced_from == collection.content_hash != reduced.content_hash and not collection.reduced_from


def test_rates_of_another_model_are_refused_and_a_node_s_cpu_decides_emulation():
    """An earlier bundle prices only its own model (a shape twin of the same id has its architecture); whether a
    half precision runs emulated on a node class is read from that node's CPU flags, never this machine's."""
    from runlocalai_bench.params import ParamsError
    from runlocalai_bench.rerankers.registry import get_variant
    from runlocalai_bench.run.plan import bundle_rates, emulated_reason
    from support import REPO

    twin = REPO / "results" / "published" / "scifact-minilm_bge-reranker-v2-m3-twin-cpu"
    assert ("torch-fp32", "cpu") in bundle_rates(f"{twin}#twin-cpu", "BAAI/bge-reranker-v2-m3")
    with pytest.raises(ParamsError, match="measured BAAI/bge-reranker-v2-m3, not twin:tiny-xlmr"):
        bundle_rates(twin, "twin:tiny-xlmr")
    fp16, fp32 = get_variant("torch-fp16"), get_variant("torch-fp32")
    assert "the laptop node's CPU runs emulated" in emulated_reason(fp16, "cpu@laptop", {"avx2", "fma"})
    assert emulated_reason(fp16, "cpu@spr", {"avx2", "fma", "avx512f", "amx_fp16", "amx_tile"}) is None
    assert emulated_reason(fp16, "cpu@unknown", None) is None  # no record of that node: not assumed either way
    assert emulated_reason(fp32, "cpu@laptop", {"avx2"}) is None and emulated_reason(fp16, "cuda@gpu", {"avx2"}) is None


def test_the_default_plan_under_8h_from_a_twin_bundle_fits_8h_first_stage_included(session_cache, monkeypatch):
    """`plan params/default.yaml --budget 8h --from <twin bundle>`, offline: the committed twin bundle's rates
    (bge-reranker-v2-m3's shape, random weights) price every execution; the first stage's embedding of the corpora
    it keeps is inside the 8 h, each funded execution evaluates at least the minimum on the common datasets, a
    dataset left out is neither downloaded nor embedded, and the plan's total is the allocation's."""
    from runlocalai_bench.params import load_params
    from runlocalai_bench.run import plan as plan_module
    from runlocalai_bench.run.plan import budget_lines, make_plan
    from support import REPO

    monkeypatch.setattr(plan_module, "kernel_overhead_s", lambda: 15.0)  # measured live otherwise: one figure here
    variants = "[torch-fp32, torch-bf16, torch-int8, onnx-int8, openvino-int8, openvino-bf16]"
    params = load_params(REPO / "params" / "default.yaml", [f"cache_dir={session_cache}", "budget=8h",
                                                            "reranker.devices=[cpu]", f"reranker.variants={variants}"])
    twin = REPO / "results" / "published" / "scifact-minilm_bge-reranker-v2-m3-twin-cpu"
    plan = make_plan(params, f"{twin}#twin-cpu", isolate=False)  # the Xeon run of the two it pools
    allocation = plan.allocation
    first = plan.rows[plan.rows["stage"] == "first_stage"].set_index("dataset")
    kept = [label for label, choice in allocation.corpora.items() if choice.kind != "skipped"]
    assert kept and allocation.first_stage_s == pytest.approx(first.loc[kept, "predicted_s"].sum())
    assert allocation.first_stage_s > HOUR  # bge-m3 embedding SciFact on a CPU: hours, inside the budget
    assert plan.total_s == pytest.approx(allocation.predicted_s) and allocation.predicted_s <= 8 * HOUR
    funded = allocation.queries
    assert "rerank--torch-fp32--cpu" in funded and len(funded) >= 3
    assert all(set(n) == set(kept) and min(n.values()) >= params.queries.min_n for n in funded.values())
    rerank = plan.rows[plan.rows["stage"] == "rerank"]
    assert rerank["source"].str.contains(f"bundle {twin.name}").any()
    assert not any(f"dataset {label}" == what for what, _, _ in plan.downloads
                   for label, choice in allocation.corpora.items() if choice.kind == "skipped")
    lines = budget_lines(allocation)
    assert lines[-1].endswith(": fits") and any("rerank--torch-fp32--cpu: beir/scifact/test" in line for line in lines)


def test_the_rerankers_plan_prices_every_family_offline_and_names_what_remote_code_needs(session_cache, monkeypatch):
    """`plan params/rerankers.yaml`, offline, priced from the committed twin bundle: every comparison reranker
    (cross-encoders, and the LLM rerankers on their own shapes) gets a predicted time and a download size; the
    two that need their repository's code are recorded skips naming the setting, until a commit is pinned."""
    from runlocalai_bench.params import load_params
    from runlocalai_bench.run import plan as plan_module
    from runlocalai_bench.run.plan import describe, make_plan
    from support import REPO

    monkeypatch.setattr(plan_module, "kernel_overhead_s", lambda: 15.0)
    twin = REPO / "results" / "published" / "scifact-minilm_bge-reranker-v2-m3-twin-cpu"
    settings = [f"cache_dir={session_cache}", "reranker.devices=[cpu]", "reranker.variants=[torch-fp32]"]
    params = load_params(REPO / "params" / "rerankers.yaml", settings)
    plan = make_plan(params, f"{twin}#twin-cpu", isolate=False)
    rates = plan.rows[plan.rows["reranker"].notna() & (plan.rows["stage"] == "rerank")].groupby("reranker")["rate_pairs_per_s"].median()
    llm = ["Qwen/Qwen3-Reranker-0.6B", "mixedbread-ai/mxbai-rerank-base-v2", "BAAI/bge-reranker-v2-gemma"]
    assert set(llm) | {"BAAI/bge-reranker-large", "cross-encoder/ms-marco-MiniLM-L-12-v2"} == set(rates.index)
    # FLOPs per pair order the rates: MiniLM (33M) fastest, the 2.5B Gemma slowest, Qwen3-0.6B below v2-m3's size
    assert rates["cross-encoder/ms-marco-MiniLM-L-12-v2"] > rates["BAAI/bge-reranker-large"]
    assert rates["BAAI/bge-reranker-v2-gemma"] < rates["Qwen/Qwen3-Reranker-0.6B"] < rates["BAAI/bge-reranker-large"]
    skipped = plan.rows[plan.rows["stage"] == "skipped"]["source"].tolist()
    assert len(skipped) == 2 and all("reranker.trust_remote_code" in s for s in skipped)
    downloads = {what: size for what, size, _ in plan.downloads}
    assert downloads["model Qwen/Qwen3-Reranker-0.6B"] == pytest.approx(2.4e9, rel=0.05)  # 596M fp32 parameters
    assert any("baseline" in line and "Qwen3-Reranker-0.6B" in line for line in describe(plan, params))
    # The hosted rerankers: priced offline from prices.yaml, held to api.max_cost_usd, not downloaded.
    hosted = plan.rows[plan.rows["stage"] == "hosted"]
    assert set(hosted["reranker"]) == {"api:cohere/rerank-v3.5", "api:voyage/rerank-2.5"}
    assert set(hosted["dataset"]) == {s.label for s in params.datasets}
    cohere = hosted[hosted["reranker"] == "api:cohere/rerank-v3.5"]
    assert (cohere["units"] == cohere["queries"]).all()  # one search unit per query of 100 candidates
    assert cohere["cost_usd"].sum() == pytest.approx(0.002 * cohere["queries"].sum())
    assert (hosted["cost_usd"] > 0).all() and not any(w.startswith("model api:") for w in downloads)
    lines = describe(plan, params)
    total = next(line for line in lines if line.startswith("hosted") and "in all" in line)
    assert f"~{hosted['cost_usd'].sum():.2f} USD" in total and "cap api.max_cost_usd 25 USD" in total
    assert not any(line.startswith("refused") for line in lines)
    from runlocalai_bench.run.hosted import cost_refusal
    capped = params.model_copy(update={"api": params.api.model_copy(update={"max_cost_usd": 1.0})})
    assert "--set api.max_cost_usd=" in cost_refusal(plan.rows, capped)
    pinned = settings + ["reranker.trust_remote_code={jinaai/jina-reranker-v2-base-multilingual: " + "ab" * 20 + "}"]
    plan = make_plan(load_params(REPO / "params" / "rerankers.yaml", pinned), f"{twin}#twin-cpu", isolate=False)
    assert len(plan.rows[plan.rows["stage"] == "skipped"]) == 1
