"""Everything checked and resolved before a run writes anything: parameters made absolute, collections and run
files read once (file:line errors), hub models resolved to commits, one device per physical device, notes on
datasets whose download needs a licence."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from runlocalai_bench.data.specs import DatasetKind, access_note
from runlocalai_bench.data.trec import read_trec
from runlocalai_bench.devices import canonical_device, resolve_device
from runlocalai_bench.models.hub import hub_revision
from runlocalai_bench.models.refs import ModelNotFoundError, is_hub_id
from runlocalai_bench.params import Params, ParamsError


def default_run_id(params: Params) -> str:
    first = params.datasets[0].label + (f"-and-{len(params.datasets) - 1}-more" if len(params.datasets) > 1 else "")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", first)
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}-{slug.strip('-').lower()}"


def absolutize(params: Params) -> Params:
    """Make every local path absolute: notebooks run with the bundle as working directory."""
    updates = {}
    if params.cache_dir:
        updates["cache_dir"] = str(Path(params.cache_dir).expanduser().resolve())
    if params.claims:
        updates["claims"] = str(Path(params.claims).expanduser().resolve())
    params = params.model_copy(update=updates)
    for section in (params.first_stage, params.reranker):
        model = Path(section.model).expanduser()
        if model.exists():
            section.model = str(model.resolve())
    params.reranker.gguf_files = {variant: str(Path(path).expanduser().resolve())
                                  for variant, path in params.reranker.gguf_files.items()}
    run = params.first_stage.run
    if run:
        params.first_stage.run = ({label: str(Path(f).expanduser().resolve()) for label, f in run.items()}
                                  if isinstance(run, dict) else str(Path(run).expanduser().resolve()))
    return params


def preflight(params: Params) -> None:
    """Read every BEIR folder or fixture (and check any run file against it) once before anything is written,
    so a malformed collection or run file fails with its file and line and leaves nothing behind. (ir_datasets
    collections are checked by the first stage: reading a large one twice would cost more than it saves.)"""
    for spec in params.datasets:
        if spec.kind is DatasetKind.IR_DATASETS:
            continue
        collection = spec.load(params.split)
        if params.first_stage.kind == "run":
            try:
                read_trec(params.first_stage.run_file(spec.label), queries=collection.queries, docs=collection.docs)
            except ValueError as exc:
                raise ParamsError(f"first_stage.run: {exc}") from None
    for variant, path in params.reranker.gguf_files.items():
        if not Path(path).is_file():
            raise ParamsError(f"reranker.gguf_files.{variant}: {path} does not exist (expected a .gguf file)")
    preflight_models(params)


def preflight_models(params: Params) -> None:
    """Resolve every hub model the run will download to its commit before anything is written: a revision the
    hub (or mirror) lacks, an unreachable endpoint or, offline, an empty cache fails now with one line naming
    the model, instead of in a kernel after the first stage. Shape twins need no hub (their config is known)."""
    checks = []
    if params.first_stage.kind == "dense" and "first_stage" in params.stages:
        checks.append(("first_stage.model", params.first_stage.model, params.first_stage.revision))
    if params.reranker.weights == "trained" and "rerank" in params.stages:
        checks.append(("reranker.model", params.reranker.model, params.reranker.revision))
        checks += [(f"reranker.baselines[{i}]", spec, None) for i, spec in enumerate(params.reranker.baselines)
                   if spec in params.reranker.local_baselines]
    for key, spec, revision in checks:
        if is_hub_id(spec):
            try:
                hub_revision(spec, revision)
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(f"{key}: {exc}") from None


def check_distinct_devices(params: Params) -> None:
    """Refuse device lists in which two entries name the same hardware here (``[auto, cpu]`` on a machine
    without a GPU, ``[cuda, cuda:0]``): their executions would pool one device's queries twice, doubling n and
    shrinking every p-value."""
    seen: dict[str, str] = {}
    for device in params.reranker.devices:
        physical = canonical_device(device)
        if physical in seen:
            raise ParamsError(f"reranker.devices: {seen[physical]!r} and {device!r} both mean {physical} on this "
                              "machine; list each device once")
        seen[physical] = device


def resolve_auto_devices(params: Params) -> Params:
    """``reranker.devices`` with ``auto`` replaced by the device it resolves to on this machine."""
    devices = [resolve_device(d) if d == "auto" else d for d in params.reranker.devices]
    return params.model_copy(update={"reranker": params.reranker.model_copy(update={"devices": devices})})


def access_notes(params: Params) -> list[str]:
    """One line per dataset whose download needs a token or an accepted licence."""
    return [f"{spec}: {note}" for spec in params.datasets if (note := access_note(spec))]
