"""The report's Methods section, generated from the constants and parameters the code used, never a copy of them.

A reader who must defend a number needs to know how its interval was made (percentile bootstrap, how many
resamples, which seed, what was resampled), which test gave its p-value and what was corrected for what, how
nDCG@10 treats grades and ties, which queries were left out and why, and how speed was timed. Each sentence
below reads the module constant or run parameter it states (``stats.LEVEL``, ``timing.TAIL_SAMPLES``,
``claims.HOLM_ALPHA``, ``params.bootstrap_samples``, ...) at the time the report is built, so changing a constant
changes the text.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from runlocalai_bench.params import Params
from runlocalai_bench.perf import timing
from runlocalai_bench.quality import metrics, stats
from runlocalai_bench.reporting import claims
from runlocalai_bench.reporting.page import Block, Heading, Items, Text
from runlocalai_bench.reporting.provenance import RunDescription


def _per_run(values: dict[str, str]) -> str:
    """"X" when every run used the same, else "X (run a), Y (run b)"."""
    distinct = sorted(set(values.values()))
    if len(distinct) == 1:
        return distinct[0]
    return ", ".join(f"{value} ({', '.join(sorted(r for r, v in values.items() if v == value))})" for value in distinct)


def _threads(throughput: pd.DataFrame, choice: str) -> str:
    """What the throughput rows recorded. Runs from before 2026-12 recorded nothing: their backends each used
    their own default, which is said rather than assumed to be the current parameter's."""
    unrecorded = "not recorded: each backend used its own default count (bundles from before 2026-12)"
    if throughput.empty or "threads" not in throughput:
        return unrecorded
    recorded = throughput.dropna(subset=["threads"])
    if recorded.empty:
        return unrecorded
    counts = recorded.groupby("run_id")["threads"].agg(lambda t: ", ".join(str(int(x)) for x in sorted(set(t))))
    missing = sorted(set(throughput["run_id"]) - set(counts.index))
    text = (f"every backend computed with the same count (parameter reranker.threads: {choice}): "
            + "; ".join(f"run {run}: {value}" for run, value in counts.items()))
    return text + (f"; runs {', '.join(missing)}: {unrecorded}" if missing else "")


def budget_text(run_id: str, budget: dict, first_stage: dict | None) -> str:
    """What a time budget did to run ``run_id``: each execution's sample per dataset, what a sample does to an
    interval, how comparisons pair, and each reduced corpus with what it kept (the first stage's record)."""
    samples = []
    available = budget.get("first_stage_queries", {})
    for execution, counts in sorted(budget.get("queries", {}).items()):
        samples.append(f"{execution} " + ", ".join(f"{d} {n:,}" for d, n in counts.items()))
    skipped = [f"{e} ({why})" for e, why in sorted(budget.get("skipped", {}).items())]
    corpora = {d["label"]: d.get("corpus", {}) for d in (first_stage or {}).get("datasets", [])}
    reduced = []
    for label, choice in budget.get("corpora", {}).items():
        if choice.get("kind") == "reduced":
            kept = corpora.get(label, {})
            reduced.append(f"{label}: {kept.get('docs', choice.get('docs')):,} of {kept.get('full_docs', '?'):,} documents "
                           f"({kept.get('judged', '?')} judged documents of the sampled queries, {kept.get('pooled', '?')} "
                           f"from the BM25 pool, {kept.get('sampled', '?')} sampled at random; {choice.get('reason', '')})"
                           if kept else f"{label}: at most {choice.get('docs'):,} documents")
        elif choice.get("kind") == "skipped":
            reduced.append(f"{label}: skipped ({choice.get('reason', '')})")
    text = (f"**Time budget (run {run_id}).** The run had a budget of {budget['budget_s'] / 3600:.3g} h; a "
            f"funded execution evaluated at least {budget['min_queries']} queries (queries.min_n; all of them where "
            "a dataset has fewer) of each dataset it was funded for, datasets in the order the parameters list "
            "them. Each execution evaluated a prefix of one seeded order of each dataset's judged queries, as many "
            "as its share of the budget paid for (queries per dataset: " + "; ".join(samples) + "). The first "
            "stage evaluated the largest sample (" + ", ".join(f"{d} {n:,}" for d, n in available.items())
            + "). An interval over n sampled queries is about sqrt(N/n) times as wide as one over all N would be "
            "(the standard error of a mean of n queries). It is an interval for the population of queries the "
            "dataset's queries stand for; as an interval for the mean of this dataset's N queries it is "
            "conservative, since the bootstrap omits the finite-population factor sqrt((N-n)/(N-1)). Paired "
            "comparisons between two executions use the queries both evaluated: the smaller sample, a subset of the "
            "larger; agreement and drift against torch-fp32 likewise.")
    if skipped:
        text += " Executions the budget could not pay the minimum for: " + "; ".join(skipped) + "."
    if reduced:
        text += (" First stages that did not fit their share (at most half of the budget left after the "
                 "stages' kernel starts) "
                 "ran on a reduced corpus, NanoBEIR-style: " + "; ".join(reduced) + ". Their rows carry "
                 "'(reduced corpus)' in every table and figure; fewer distractors raise nDCG, so they are never "
                 "compared with a full-corpus reference, while lifts between systems on the same candidates stay "
                 "paired comparisons.")
    return text


def methods_blocks(params: Sequence[Params], descriptions: Sequence[RunDescription],
                   tables: dict[str, pd.DataFrame], budgets: dict[str, str] | None = None) -> list[Block]:
    """The Methods section for the runs of a bundle; ``budgets``: run_id -> :func:`budget_text` of each run
    that had a time budget."""
    level = f"{stats.LEVEL:.0%}"
    samples = _per_run({p.run_id or "": f"{p.bootstrap_samples:,}" for p in params})
    seeds = _per_run({p.run_id or "": str(p.seed) for p in params})
    rounds = _per_run({p.run_id or "": f"at least {p.throughput.min_rounds} rounds and {p.throughput.min_seconds:g} s "
                                       f"after {p.throughput.warmup_rounds} untimed" for p in params})
    threads_choice = _per_run({p.run_id or "": str(p.reranker.threads) for p in params})
    items = [
        f"**Intervals.** {level} percentile bootstrap intervals with {samples} resamples, seeded with the run's "
        f"seed ({seeds}): the same inputs give the same interval on any machine. The resampling unit is the "
        "query: a mean's interval resamples the evaluated queries with replacement; a paired lift or difference "
        "resamples the same queries for both systems, and its absolute and relative forms come from the same "
        "resamples.",
        "**Macro-averages over datasets** are the mean of the per-dataset means (each dataset weighs the same); "
        "their interval resamples queries within each dataset, so it treats the datasets as fixed: it says how "
        "sure the run is about these datasets, not about datasets in general.",
        "**Tests.** p-values are two-sided paired sign-flip randomization tests of the (macro-)mean per-query "
        f"difference: every sign pattern when 2^n is at most the {samples} resamples, else that many seeded "
        "random flips with the observed pattern counted once ((extreme + 1) / (flips + 1)).",
        "**Multiple comparisons.** No verdict rests on a p-value: verdicts read intervals against the claims "
        "file's bands and margins. Every p-value printed in a table row (summary, comparisons) is uncorrected "
        "across variants, datasets and measures: among k such rows about "
        f"{claims.HOLM_ALPHA:g} x k are 'significant' at {claims.HOLM_ALPHA:g} by chance. The strict-upgrade "
        f"verdicts also count the datasets significantly worse after Holm's step-down at a family-wise "
        f"{claims.HOLM_ALPHA:g} over one comparison's datasets, for information.",
        f"**nDCG@10** by ir-measures (pytrec_eval): {metrics.NDCG_CONVENTION}. Ties in score are broken by "
        "document id ascending before evaluation (the evaluator receives rank-derived scores, so its own tie rule "
        "cannot reorder them); a query that retrieved nothing relevant scores 0 and is kept; a reranker's "
        "non-finite score fails its execution rather than being ranked.",
        "**Queries evaluated and left out.** " + "; ".join(
            f"run {d.run_id}: " + ", ".join(f"{name} {n:,} queries" for name, n in d.queries.items())
            for d in descriptions if d.queries) + ". Per dataset, the split's judged queries are evaluated (a "
        "seeded sample of them where `queries.n` is set); queries without a judgment in the split are not part "
        "of it; calibration queries of static int8 variants are never evaluated ones. Exclusions by each "
        "collection's protocol, with counts:" + "".join(f" {note}" for d in descriptions for note in d.protocol_notes),
        f"**Speed.** pairs/s is the median over timed rounds ({rounds}); its spread is the interquartile range "
        "of the rounds, and speed claims are judged on that spread at the one workload each claim pins. Latency "
        f"percentiles: p50 always; p90 and p99 only from at least {timing.min_samples(90)} and "
        f"{timing.min_samples(99)} samples ({timing.TAIL_SAMPLES} at or beyond the percentile), else 'n too "
        f"small'. Threads per execution: {_threads(tables.get('throughput', pd.DataFrame()), threads_choice)}.",
        "**Verdict rules** are quoted beside each verdict in the Claims section, in the claims file's terms.",
        *(budgets or {}).values(),
    ]
    return [Heading("Methods", anchor="methods"),
            Text("How every interval, p-value and verdict of this report was computed; generated from the "
                 "constants and parameters the code ran with.", "small"),
            Items([(text, None, None) for text in items])]
