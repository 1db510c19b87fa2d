"""Fitting a run into a time budget: how many queries each execution evaluates, and which datasets' first stage
runs on a reduced corpus.

The inputs are the plan's predictions (run/plan.py): per dataset the judged queries and the seconds of a
full-corpus first stage, per execution the seconds it pays whatever it evaluates (kernel start, loading,
building an export, the timing rounds) and the seconds per query of scoring each dataset's candidates. Nothing
here measures; the allocation is as good as those rates, and the plan says where each came from.

The rules, in order:

1. **Overheads first.** The first stage's and the report's kernel starts come off the top. An execution's fixed
   seconds (start, loading, building an export, the timing rounds) are paid only by an execution that is funded.
2. **The first stage gets at most** :data:`FIRST_STAGE_SHARE` **of the rest.** Each dataset's minimum (its full
   corpus, or a reduced corpus that holds the judged documents and pooled candidates of
   :attr:`Allocation.min_queries` queries; the reduction itself is retrieval/reduced.py) is funded in the order the
   parameters list the datasets while it fits; a dataset whose minimum does not fit is skipped, with the reason.
   What is left is shared equally between the funded datasets (water-filling: a dataset that needs less than its
   share leaves the remainder to the others), each growing toward its full corpus; one that does not reach it
   runs on a reduced corpus of as many documents as its share embeds. A dataset whose first stage costs nothing
   (embeddings cached, BM25, a run file) always keeps its full corpus.
3. **Executions are funded in priority order, then share what is left.** Each device's reference variant
   (torch-fp32: the drift, agreement and comparisons of that device are measured against it) comes first, then
   the others by the cost of their minimum, cheapest first, so that as many executions as possible reach it. The
   common datasets are the longest prefix of the run's datasets (in the order the parameters list them: that order
   is the run's priority) on which every reference can pay its fixed seconds plus :attr:`Allocation.min_queries`
   queries; a reference that cannot pay even the first dataset's is skipped, and so is every execution of its
   device (nothing to measure them against). Every other execution is funded on exactly the common datasets or is
   a recorded skip, so that all executions cover the same datasets and the report's averages and comparisons stay
   like for like. A dataset outside the prefix is skipped and its first stage's time goes back to the executions.
   What is left is shared equally between the funded executions (water-filling: one that takes all its queries for
   less than its share leaves the rest to the others); within an execution every dataset gets the same n (capped
   at what the dataset has), which keeps the per-dataset intervals comparable within an execution. An execution
   that would run emulated on its device (fp16 on a CPU without a native fp16 path runs 3-4x slower than fp32
   there) keeps the minimum and a line saying why, never a day of the budget; one without a predicted rate gets
   the minimum too, its scoring outside the total.
4. **Nodes side by side.** Executions that run on different nodes (``--engine ray`` with node classes,
   ``devices: [cpu, cuda@rtx4090]``) run at the same time, one at a time on each node, so each node (a *lane*:
   this machine's, or the node chosen for a class; classes on one node share it) gets the whole budget after the
   first stage, and the run's time is its slowest lane's. The rules above apply within each lane, except the
   common datasets, which every lane's references must afford.
5. Every sample is a prefix of one seeded order of the dataset's queries (``Collection.query_order``), so a
   smaller sample is a subset of a larger one and every paired comparison has common queries: the first stage
   evaluates the largest n any execution of the dataset takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal


# Why a half: the first stage is what every quality number of a dataset stands on, yet on a small machine the
# full-corpus embeddings of a few large corpora would take the whole budget and leave no reranking to compare.
FIRST_STAGE_SHARE = 0.5


class BudgetError(ValueError):
    """The budget cannot pay for what the run must do whatever it samples."""


class NoReranking(BudgetError):
    """The budget funds the first stage but not the reference variant's minimum after it."""


@dataclass(frozen=True)
class DatasetCost:
    label: str
    queries: int  # judged queries the run may evaluate (after queries.n)
    docs: int
    first_stage_s: float | None  # full-corpus first stage; 0 when it costs nothing, None when unknown
    judged_per_query: float  # judged documents per query: what a reduced corpus must keep per sampled query
    pool_depth: int  # candidates of the pooling retriever kept per sampled query in a reduced corpus

    @property
    def doc_s(self) -> float:
        return (self.first_stage_s or 0.0) / max(self.docs, 1)

    def docs_needed(self, n_queries: int) -> int:
        """Documents a reduced corpus needs to hold ``n_queries`` queries' judged documents and pooled candidates
        (an upper bound: the pools of different queries overlap)."""
        return min(self.docs, math.ceil(n_queries * (self.pool_depth + self.judged_per_query)))


@dataclass(frozen=True)
class ExecutionCost:
    name: str
    fixed_s: float  # paid whatever it evaluates: start, load (and export), timing rounds
    per_query_s: dict[str, float] | None  # dataset label -> seconds per query; None: no rate predicted
    emulated: str | None = None  # why this execution gets the minimum sample whatever the budget
    start_s: float = 0.0  # the part of fixed_s a skipped execution still pays (its kernel's start)
    priority: int = 1  # 0: funded first (the reference variant every drift is measured against)
    lane: str = ""  # the node that runs it: "" this machine, else a Ray node's; lanes run side by side
    device: str = ""  # its device label: the executions of a device are measured against its reference variant


@dataclass(frozen=True)
class CorpusChoice:
    label: str
    kind: Literal["full", "reduced", "skipped"]
    docs: int  # documents embedded (the reduced corpus's size cap; the full count otherwise)
    seconds: float
    reason: str = ""


@dataclass
class Allocation:
    budget_s: float
    min_queries: int
    corpora: dict[str, CorpusChoice]
    queries: dict[str, dict[str, int]]  # execution -> dataset -> queries evaluated (absent: skipped)
    seconds: dict[str, float]  # execution -> predicted seconds under the allocation
    skipped: dict[str, str] = field(default_factory=dict)  # execution -> why it evaluates nothing
    notes: list[str] = field(default_factory=list)
    fixed_s: float = 0.0  # the run's own overheads (kernel starts outside the executions)
    first_stage_s: float = 0.0
    available: dict[str, int] = field(default_factory=dict)  # dataset -> queries it can offer (its reduced corpus's)
    lanes: dict[str, float] = field(default_factory=dict)  # lane -> seconds of its executions (fixed and scoring)

    @property
    def predicted_s(self) -> float:
        """Wall time: the overheads, the first stage, then the lanes side by side (the slowest decides)."""
        return self.fixed_s + self.first_stage_s + max(self.lanes.values(), default=0.0)

    def first_stage_queries(self) -> dict[str, int]:
        """Per dataset, the queries the first stage evaluates: the largest sample any execution takes, never
        fewer than the minimum (the dense-only row needs its own evidence); every query the dataset can offer
        when no execution reranks."""
        chosen = {}
        for label, total in self.available.items():
            taken = [n.get(label, 0) for n in self.queries.values()]
            chosen[label] = min(total, max([self.min_queries, *taken])) if self.queries else total
        return chosen

    def record(self) -> dict:
        """What the bundle keeps (``budget.json``): enough for the stages to evaluate what was planned, and for a
        resumed run to keep the same samples."""
        return {
            "budget_s": self.budget_s, "min_queries": self.min_queries, "first_stage_share": FIRST_STAGE_SHARE,
            "predicted_s": self.predicted_s, "lanes_s": self.lanes,
            "corpora": {k: vars(v) for k, v in self.corpora.items()},
            "queries": self.queries, "skipped": self.skipped, "notes": self.notes,
            "first_stage_queries": self.first_stage_queries(),
        }


def _cost(execution: ExecutionCost, n: int, caps: dict[str, int]) -> float:
    assert execution.per_query_s is not None
    return sum(min(n, cap) * execution.per_query_s.get(label, 0.0) for label, cap in caps.items())


def _largest_n(execution: ExecutionCost, share: float, caps: dict[str, int]) -> int:
    """The largest common n whose cost fits ``share`` (cost grows with n: a binary search)."""
    low, high = 0, max(caps.values(), default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if _cost(execution, middle, caps) <= share:
            low = middle
        else:
            high = middle - 1
    return low


def _first_stage(datasets: list[DatasetCost], share: float, min_queries: int) -> dict[str, CorpusChoice]:
    """The first stage's share: each dataset's minimum (the full corpus, or a reduced one that holds the judged
    documents and pooled candidates of the minimum sample) funded in the order the parameters list the
    datasets, while it fits; then what is left shared equally between the funded datasets (water-filling,
    cheapest full corpus first), each growing toward its full corpus."""
    choices: dict[str, CorpusChoice] = {}
    paying = []
    for dataset in datasets:
        if dataset.first_stage_s is None:
            choices[dataset.label] = CorpusChoice(dataset.label, "full", dataset.docs, 0.0,
                                                  "first-stage time unknown: full corpus, not in the budget")
        elif dataset.first_stage_s == 0:
            choices[dataset.label] = CorpusChoice(dataset.label, "full", dataset.docs, 0.0)
        else:
            paying.append(dataset)
    remaining, minimum = share, {}
    for dataset in paying:  # the parameters' order is the priority
        docs = dataset.docs_needed(min(min_queries, dataset.queries))
        seconds = docs * dataset.doc_s
        if seconds > remaining:
            choices[dataset.label] = CorpusChoice(
                dataset.label, "skipped", 0, 0.0,
                f"the first stage's share left ({hours(remaining)}) does not embed the {docs:,} documents that "
                f"{min(min_queries, dataset.queries)} queries' judged documents and pooled candidates need "
                f"(~{hours(seconds)})")
            continue
        minimum[dataset.label] = docs
        remaining -= seconds
    funded = [d for d in paying if d.label in minimum]
    left = len(funded)
    for dataset in sorted(funded, key=lambda d: d.first_stage_s or 0.0):
        base = minimum[dataset.label] * dataset.doc_s
        equal = base + max(remaining, 0.0) / left
        left -= 1
        if dataset.first_stage_s <= equal:
            choices[dataset.label] = CorpusChoice(dataset.label, "full", dataset.docs, dataset.first_stage_s)
            remaining -= dataset.first_stage_s - base
            continue
        docs = max(int(equal / dataset.doc_s), minimum[dataset.label])
        choices[dataset.label] = CorpusChoice(
            dataset.label, "reduced", docs, docs * dataset.doc_s,
            f"the full corpus ({dataset.docs:,} documents, ~{hours(dataset.first_stage_s)}) exceeds its share "
            f"of the first stage's half of the budget")
        remaining -= docs * dataset.doc_s - base
    return {d.label: choices[d.label] for d in datasets}


def allocate(budget_s: float, datasets: list[DatasetCost], executions: list[ExecutionCost], min_queries: int,
             overhead_s: float = 0.0) -> Allocation:
    """The allocation of ``budget_s`` seconds (module docstring); ``overhead_s`` is what the run pays outside the
    executions listed (the first stage's and the report's kernel starts).

    When the first stage of every dataset would leave the reference variant unfunded, the run is planned on the
    first k datasets in the order listed, the largest k that funds it (the first stage of datasets no reranking
    would reach is not worth its time); the others are recorded skips."""
    try:
        return _allocate(budget_s, datasets, executions, min_queries, overhead_s)
    except NoReranking as first_error:
        for k in range(len(datasets) - 1, 0, -1):
            try:
                allocation = _allocate(budget_s, datasets[:k], executions, min_queries, overhead_s)
            except BudgetError:  # fewer datasets still do not fund it: the first reason is the one to show
                continue
            kept = ", ".join(d.label for d in datasets[:k])
            for dataset in datasets[k:]:
                allocation.corpora[dataset.label] = CorpusChoice(
                    dataset.label, "skipped", 0, 0.0,
                    f"the budget funds the reference variant only after the first stage of {kept}")
                allocation.notes.append(f"{dataset.label}: skipped, {allocation.corpora[dataset.label].reason}")
            return allocation
        raise first_error


def _allocate(budget_s: float, datasets: list[DatasetCost], executions: list[ExecutionCost], min_queries: int,
              overhead_s: float) -> Allocation:
    if overhead_s >= budget_s:
        raise BudgetError(f"budget {hours(budget_s)} does not cover starting the run's stages (~{hours(overhead_s)}); "
                          f"raise --budget above {hours(overhead_s)}")
    corpora = _first_stage(datasets, (budget_s - overhead_s) * FIRST_STAGE_SHARE, min_queries)
    first_stage_s = sum(c.seconds for c in corpora.values())
    # What each lane has once the first stage is done; every lane starts with the same.
    remaining = {e.lane: budget_s - overhead_s - first_stage_s for e in executions}
    # Queries each dataset can offer: all judged ones, or as many as its reduced corpus holds.
    caps: dict[str, int] = {}
    for dataset in datasets:
        choice = corpora[dataset.label]
        if choice.kind == "full":
            caps[dataset.label] = dataset.queries
        elif choice.kind == "reduced":
            per_query = dataset.pool_depth + dataset.judged_per_query
            caps[dataset.label] = max(min(dataset.queries, int(choice.docs / per_query)), 1)
    if datasets and not caps:
        raise BudgetError(f"budget {hours(budget_s)}: no dataset's first stage fits its share: "
                          + "; ".join(f"{c.label}: {c.reason}" for c in corpora.values()))
    allocation = Allocation(budget_s, min_queries, corpora, {}, {}, fixed_s=overhead_s, first_stage_s=first_stage_s,
                            available=dict(caps), lanes={lane: 0.0 for lane in remaining})
    for label, choice in corpora.items():
        if choice.kind == "skipped":
            allocation.notes.append(f"{label}: skipped, {choice.reason}")
        elif choice.kind == "reduced":
            total = next(d.queries for d in datasets if d.label == label)
            allocation.notes.append(f"{label}: reduced corpus of at most {choice.docs:,} documents, {choice.reason}; "
                                    f"at most {caps[label]:,} of {total:,} queries fit it")

    # 1. minimums. First the common datasets: the longest prefix of the run's datasets (in the order the
    #    parameters list them) on which every device's reference variant (priority 0: drift, agreement and the
    #    comparisons of that device are measured against it) can pay its minimum in its lane; a reference that
    #    cannot pay even the first dataset's is skipped, and with it every execution of its device. Every other
    #    execution is then funded on exactly those datasets or not at all, so that the executions of the run cover
    #    the same datasets and the report's averages and comparisons stay like for like. A dataset outside the
    #    prefix gives its first stage's time back: no reranking would use it.
    funded: dict[str, dict[str, int]] = {}
    listed = dict(caps)  # before datasets no execution reaches are dropped (error messages name the first)
    order = sorted(executions, key=lambda e: (e.priority, e.fixed_s + _minimum_cost(e, caps, min_queries)))
    labels = list(caps)

    def minimum(execution: ExecutionCost, k: int) -> float:
        return execution.fixed_s + sum(min(min_queries, caps[d]) * execution.per_query_s.get(d, 0.0)
                                       for d in labels[:k])

    rated = [e for e in order if e.per_query_s is not None]
    # What every execution pays whatever is funded comes off first: each rated one starts its kernel (to run, or to
    # record why it does not), an unrated one pays its fixed seconds. Funding then costs only what comes on top.
    for execution in executions:
        remaining[execution.lane] -= execution.start_s if execution.per_query_s is not None else execution.fixed_s

    def extra(execution: ExecutionCost, k: int) -> float:
        return minimum(execution, k) - execution.start_s

    def given_back(k: int) -> float:  # first-stage seconds of the datasets a prefix of k leaves out
        return sum(corpora[d].seconds for d in labels[k:])

    references, unfunded = [], []
    for execution in [e for e in rated if e.priority == 0] or rated[:1]:  # no reference variant: the first decides
        lane_refs = [r for r in references if r.lane == execution.lane]
        if labels and sum(extra(r, 1) for r in [*lane_refs, execution]) <= remaining[execution.lane] + given_back(1):
            references.append(execution)
        else:
            unfunded.append(execution)

    def affordable(k: int) -> bool:
        return all(sum(extra(r, k) for r in references if r.lane == lane) <= remaining[lane] + given_back(k)
                   for lane in remaining)

    k = next((k for k in range(len(labels), 0, -1) if affordable(k)), 0) if references else 0
    common = labels[:k] if k else None
    # Datasets past the common prefix give their first stage's time back before anything else is funded.
    if common is not None:
        for label in [d for d in caps if d not in common]:
            choice = corpora[label]
            corpora[label] = CorpusChoice(label, "skipped", 0, 0.0,
                                          f"no execution reaches it: the reference variants' minimums fit "
                                          f"{', '.join(common)} only")
            allocation.first_stage_s -= choice.seconds
            remaining = {lane: left + choice.seconds for lane, left in remaining.items()}
            del caps[label]
            allocation.notes.append(f"{label}: skipped, {corpora[label].reason}")
    devices_without_reference = {e.device for e in unfunded if e.priority == 0}
    for execution in order:
        if execution.per_query_s is None:
            continue
        scope = common if common is not None else labels[:1]
        if execution.device in devices_without_reference and execution.priority != 0:
            missing = next(e.name for e in unfunded if e.device == execution.device)
            reason = (f"the reference variant of {execution.device} ({missing}) is not funded: there would be "
                      "nothing to measure its drift and agreement against")
        elif common is None or execution in unfunded or extra(execution, k) > remaining[execution.lane]:
            reason = (f"the budget left{_on(execution.lane)} ({hours(max(remaining[execution.lane], 0.0))}) does not "
                      f"pay its minimum (~{hours(minimum(execution, len(scope)))}: loading, timing and {min_queries} "
                      f"queries of {', '.join(scope)})")
        else:
            reason = None
        if reason:
            allocation.lanes[execution.lane] += execution.start_s  # a skipped execution still starts, says why, ends
            allocation.skipped[execution.name] = reason
            if execution.priority == 0:  # its device's other executions would have nothing to be measured against
                devices_without_reference.add(execution.device)
                unfunded.append(execution)
            continue
        funded[execution.name] = {d: min(min_queries, caps[d]) for d in common}
        allocation.lanes[execution.lane] += execution.fixed_s
        remaining[execution.lane] -= extra(execution, k)
        if execution.emulated:
            allocation.notes.append(f"{execution.name}: the minimum sample only: {execution.emulated}")
    for execution in order:  # without a rate: the minimum on the common datasets, outside the total
        if execution.per_query_s is None:
            allocation.queries[execution.name] = {d: min(min_queries, caps[d]) for d in (common or list(caps))}
            allocation.seconds[execution.name] = 0.0
            allocation.lanes[execution.lane] += execution.fixed_s  # taken off the lane's time at the start
            allocation.notes.append(f"{execution.name}: the minimum sample ({min_queries} queries a dataset): no "
                                    "predicted rate, its scoring time is not in the total")
    allocation.available = dict(caps)

    # 2. what is left, shared equally between the funded executions that can use more (water-filling): each
    #    takes the largest common n its minimum plus its share pays for, on the datasets it was funded for.
    #    Each lane shares its own remainder.
    growing = [e for e in order if e.name in funded and not e.emulated]
    left = {lane: sum(e.lane == lane for e in growing) for lane in remaining}
    for execution in sorted(growing, key=lambda e: _cost(e, max(caps.values(), default=0),
                                                         {d: caps[d] for d in funded[e.name]})):
        own = {d: caps[d] for d in funded[execution.name]}
        base = _cost(execution, min_queries, own)
        share = base + max(remaining[execution.lane], 0.0) / left[execution.lane]
        left[execution.lane] -= 1
        n = max(_largest_n(execution, share, own), min_queries)
        extra = _cost(execution, n, own) - base
        funded[execution.name] = {d: min(n, cap) for d, cap in own.items()}
        remaining[execution.lane] -= extra
    for execution in executions:
        if execution.name in funded:
            allocation.queries[execution.name] = funded[execution.name]
            allocation.seconds[execution.name] = _cost(execution, max(funded[execution.name].values()),
                                                       funded[execution.name])
            allocation.lanes[execution.lane] += allocation.seconds[execution.name]
    references = [e for e in executions if e.priority == 0]
    if executions and (not funded or (references and not any(e.name in funded for e in references))):
        reference = order[0]
        first = next(iter(listed), None)
        needed = overhead_s + first_stage_s + reference.fixed_s + (
            min(min_queries, listed[first]) * (reference.per_query_s or {}).get(first, 0.0) if first else 0.0)
        raise NoReranking(
            f"budget {hours(budget_s)} funds no reranking with the reference variant: after the first stage "
            f"(~{hours(first_stage_s)}), "
            f"{reference.name} alone needs ~{hours(needed - overhead_s - first_stage_s)} for its loading, timing and "
            f"{min_queries} queries of {first}; raise --budget, lower queries.min_n, or time fewer workloads "
            f"(throughput.datasets, throughput.max_queries)")
    return allocation


def _on(lane: str) -> str:
    return f" on the {lane} node" if lane else ""


def _minimum_cost(execution: ExecutionCost, caps: dict[str, int], min_queries: int) -> float:
    if execution.per_query_s is None:
        return 0.0
    return _cost(execution, min_queries, caps)


def hours(seconds: float) -> str:
    """A budget-sized duration as people say it: 45 s, 12 min, 3.2 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
