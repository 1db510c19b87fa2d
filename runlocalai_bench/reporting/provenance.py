"""What each run of a bundle was: the line a report prints for it and the footer every figure carries.

A single run's bundle describes itself from its parameters, environment and stage records. A pooled bundle
(``runlocalai-bench merge``) keeps one description per pooled run in ``provenance/<run_id>.json``, so its report
says what *every* run was (dataset, queries, first stage and depth, reranker and its weights, reranked depth,
hardware, commit), never just the first one's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runlocalai_bench.environment import hardware_label
from runlocalai_bench.models.refs import model_label
from runlocalai_bench.models.twins import FALLBACK_TOKENIZER, XLMR_FALLBACK_TOKENIZER
from runlocalai_bench.quality.reachable import missing_judged_sentence
from runlocalai_bench.results.bundle import Bundle, write_json

PROVENANCE_DIR = "provenance"
STAND_IN_TOKENIZERS = (XLMR_FALLBACK_TOKENIZER, FALLBACK_TOKENIZER)


@dataclass
class RunDescription:
    run_id: str
    datasets: list[str]
    split: str
    n_queries: int | None
    first_stage: str  # e.g. "dense all-MiniLM-L6-v2 (local folder, sha256 ...) top 100" or "bm25 top 16"
    reranker: str | None  # model label, twins named as twins; None when the run did not rerank
    weights: str | None
    rerank_depth: int | None
    variants: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    hardware: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)  # comparison rerankers measured on the same candidates
    date: str = ""
    commit: str = ""
    queries: dict[str, int] = field(default_factory=dict)  # per dataset
    # The tokenizer a shape twin ran with when it was not the model's own (a stand-in built offline): its token
    # counts and its share of end-to-end time are then the stand-in's.
    tokenizer: str | None = None
    # Set when the run timed fixed shapes only (a length sweep): the token lengths it timed.
    fixed_lengths: list[int] = field(default_factory=list)
    # Per dataset, the protocol it was evaluated by and what the data held (data/protocol.py), one sentence each.
    protocol_notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the report's "What was run"."""
        data = ", ".join(f"{d} ({self.queries[d]} queries)" if d in self.queries else d for d in self.datasets)
        total = f", {self.n_queries} queries in all" if len(self.datasets) > 1 and self.n_queries is not None else ""
        text = f"`{self.run_id}`: {data}{total}; first stage {self.first_stage}"
        if self.reranker:
            text += (f"; reranker {self.reranker} reorders the top {self.rerank_depth}"
                     f" ({', '.join(self.variants)} on {', '.join(self.devices)})")
            if self.fixed_lengths:
                text += f"; timed model-only on one pair of {self.lengths_text()} tokens (a length sweep)"
            if self.tokenizer:
                text += f"; tokenized with the stand-in {self.tokenizer} (the model's own tokenizer was not cached)"
            if self.baselines:
                text += f"; compared on the same candidates with {', '.join(self.baselines)}"
        else:
            text += "; no reranking"
        return text + f"; {', '.join(self.hardware)}; {self.date}; commit {self.commit}."

    def lengths_text(self) -> str:
        return ", ".join(f"{n:,}" for n in self.fixed_lengths)

    def measured(self) -> str:
        """What the run measured, for the report's opening line."""
        text = f"{', '.join(self.datasets)}, first stage {self.first_stage}"
        if self.reranker and self.fixed_lengths:
            return f"{self.reranker} timed on one pair of {self.lengths_text()} tokens (a length sweep)"
        return text + (f", reranker {self.reranker} on the top {self.rerank_depth}" if self.reranker else "")

    def footer(self) -> str:
        parts = [f"run {self.run_id}", f"data {', '.join(self.datasets)} ({self.n_queries} q)",
                 f"first stage {self.first_stage}"]
        if self.reranker:
            parts.append(f"reranker {self.reranker} top {self.rerank_depth}")
        return " · ".join(parts + [", ".join(self.hardware), self.date, f"commit {self.commit}"])


def _commit(env: dict[str, Any]) -> str:
    code = env.get("code", {})
    return (code.get("commit") or "unknown")[:10] + ("+dirty" if code.get("dirty") else "")


def describe_bundle(bundle: Bundle) -> RunDescription:
    """The description of a single run's bundle."""
    params = bundle.params()
    env = bundle.environment()
    meta = bundle.all_stage_meta()
    first = meta.get("first_stage", {})
    reruns = [m for m in meta.values() if m.get("stage") == "rerank"]
    measured = [m for m in reruns if m.get("status") == "ok" and not m.get("baseline")]  # the reranker under test
    compared = sorted({m.get("model_label") or m["baseline"] for m in reruns
                       if m.get("status") == "ok" and m.get("baseline")})
    if params.first_stage.kind == "dense":
        model = first.get("model_label") or model_label(params.first_stage.model, first.get("model"))
        first_stage = f"dense {model} top {params.first_stage.depth}"
    else:
        first_stage = f"{params.first_stage.label} top {params.first_stage.depth}"
    reranker = None
    if "rerank" in params.stages:
        labelled = next((m["model_label"] for m in measured if m.get("model_label")), None)
        reranker = labelled or (f"{params.reranker.model} shape twin (random weights)" if params.reranker.weights == "random"
                                else params.reranker.model)
    devices = sorted({m.get("device") or m.get("requested_device") for m in measured}) or list(params.reranker.devices)
    tokenizers = sorted({m["tokenizer"] for m in measured if isinstance(m.get("tokenizer"), str)})
    stand_in = (next((t for t in tokenizers if t.startswith(STAND_IN_TOKENIZERS)), None)
                if params.reranker.weights == "random" else None)  # only a real model's twin stands in
    workloads = set(params.throughput.workloads) if params.throughput.enabled else set()
    fixed_only = bool(reranker) and workloads == {"fixed"}
    return RunDescription(
        # what the first stage ran (a budget may skip datasets or reduce their corpus), else the parameters'
        run_id=params.run_id or "", split=params.split,
        datasets=([d.get("quality_label") or d["label"] for d in first["datasets"]] if first.get("datasets")
                  else [d.label for d in params.datasets]),
        n_queries=sum(d.get("n_queries", 0) for d in first.get("datasets", [])) if first.get("datasets") else None,
        queries={d.get("quality_label") or d["label"]: d["n_queries"] for d in first.get("datasets", []) if "label" in d}, first_stage=first_stage, reranker=reranker,
        weights=params.reranker.weights if reranker else None, rerank_depth=params.reranker.depth if reranker else None,
        variants=sorted({m["variant"] for m in measured}) if reranker else [], baselines=compared,
        devices=devices if reranker else [],
        hardware=sorted({hardware_label(env, d) for d in (devices if reranker else ["cpu"])}),
        date=env.get("date_utc", "")[:10], commit=_commit(env), tokenizer=stand_in,
        fixed_lengths=sorted(params.throughput.max_lengths) if fixed_only else [],
        protocol_notes=[protocol_note(d) for d in first.get("datasets", []) if d.get("protocol")])


def protocol_note(record: dict) -> str:
    """What the first stage's record of one dataset says about its protocol, as one sentence: split, rule set,
    identical ids, judged documents missing from the corpus, queries without a positive judgment, duplicates,
    calibration source."""
    protocol = record["protocol"]
    parts = [f"{record['label']} ({record.get('split', '?')} split): {protocol['reference']}"]
    if protocol.get("ignore_identical_ids"):
        parts.append(f"{record.get('identical_ids_dropped', 0):,} candidates whose id equals their query's were "
                     "dropped (one more retrieved per query)")
    elif record.get("identical_ids_retrieved"):
        parts.append(f"{record['identical_ids_retrieved']:,} candidates share their query's id and were kept "
                     "(no identical-id rule for this collection)")
    missing = missing_judged_sentence(record["label"], record.get("missing_judged_documents") or {})
    if missing:
        parts.append(missing.split(": ", 1)[1])
    zero = record.get("n_zero_positive_queries")
    if zero:
        parts.append(f"{zero} evaluated queries have no positive judgment and score 0 (as pytrec_eval, BEIR and "
                     "MTEB count them)")
    duplicates = (record.get("duplicate_doc_ids") or {}).get("count")
    if duplicates:
        parts.append(f"{duplicates} duplicate document records (the last one kept)")
    calibration = record.get("calibration")
    if calibration:
        parts.append(f"static-int8 calibration source: {calibration['kind']} ({calibration['source']})")
    return "; ".join(parts) + "."


def write_descriptions(root: Path, descriptions: list[RunDescription]) -> None:
    for description in descriptions:
        write_json(Path(root) / PROVENANCE_DIR / f"{description.run_id}.json", asdict(description))


def run_descriptions(bundle: Bundle) -> list[RunDescription]:
    """Every run a bundle holds: its own, or each pooled run's."""
    pooled = bundle.root / PROVENANCE_DIR
    if pooled.is_dir():
        return [RunDescription(**json.loads(p.read_text(encoding="utf-8"))) for p in sorted(pooled.glob("*.json"))]
    return [describe_bundle(bundle)]


def combined_footer(descriptions: list[RunDescription]) -> str:
    """The provenance footer of a figure drawn from these runs: every run's own footer, joined."""
    return "  |  ".join(d.footer() for d in descriptions) + "  ·  runlocalai-bench"
