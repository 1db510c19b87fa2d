"""Executes the notebooks with papermill into a bundle, atomically.

The bundle is built in a hidden sibling folder and renamed into place only when every stage has run, so a
folder named ``results/<run_id>`` is always complete. Each notebook execution gets a fresh kernel whose
Python is this process's interpreter (a private kernelspec, so a stale global ``python3`` kernel pointing
at another environment, the classic papermill failure, can never be picked up).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pandas as pd

import papermill
from papermill.exceptions import PapermillExecutionError

from runlocalai_bench.data.specs import DatasetKind, access_note
from runlocalai_bench.data.trec import read_trec
from runlocalai_bench.environment import REPO_ROOT, fingerprint
from runlocalai_bench.devices import canonical_device
from runlocalai_bench.models.hub import hub_revision
from runlocalai_bench.models.refs import ModelNotFoundError, is_hub_id
from runlocalai_bench.params import Params, ParamsError, dump_params, load_params
from runlocalai_bench.paths import scrub
from runlocalai_bench.results.bundle import Bundle, rerank_execution, write_json
from runlocalai_bench.results.tables import SCHEMA_VERSION, write_table
from runlocalai_bench.run.finalize import finalize_tables

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "runlocalai-bench-python"
CACHE_ENV = "RUNLOCALAI_BENCH_CACHE"
NOTEBOOKS = {"first_stage": "01_first_stage.ipynb", "rerank": "02_rerank.ipynb", "report": "03_report.ipynb"}


class RunError(RuntimeError):
    """A run that could not complete; the message is one line saying why."""


@dataclass
class RunOutcome:
    bundle: Path
    executions: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [e for e in self.executions if e["status"] == "failed"]


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
    for key, spec, revision in checks:
        if is_hub_id(spec):
            try:
                hub_revision(spec, revision)
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(f"{key}: {exc}") from None


@contextmanager
def private_kernel() -> Iterator[str]:
    """A kernelspec for ``sys.executable`` on JUPYTER_PATH for the duration of the run."""
    with tempfile.TemporaryDirectory(prefix="rlb-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"runlocalai-bench ({sys.executable})", "language": "python",
            "env": {"PYTHONUNBUFFERED": "1"},
        }))
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp] + ([previous] if previous else []))
        try:
            yield KERNEL_NAME
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


def execute(notebook: str, output: Path, parameters: dict, cwd: Path, kernel: str, log_output: bool) -> None:
    source = NOTEBOOKS_DIR / notebook
    if not source.is_file():
        raise RunError(f"notebook {source} not found: run from a checkout installed with `pip install -e .`")
    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(
        str(source), str(output), parameters=parameters, kernel_name=kernel, cwd=str(cwd),
        progress_bar=False, log_output=log_output, request_save_on_cell_execute=True,
    )


def describe_failure(exc: BaseException) -> str:
    """One line: the failing cell's exception (papermill), or the exception itself."""
    if isinstance(exc, PapermillExecutionError):
        evalue = (exc.evalue or "").strip().splitlines()
        return f"{exc.ename}: {evalue[0] if evalue else ''} (cell {exc.exec_count})"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def rerank_pairs(params: Params) -> list[tuple[str, str]]:
    return [(variant, device) for variant in params.reranker.variants for device in params.reranker.devices]


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


@contextmanager
def kernel_environment(params: Params) -> Iterator[None]:
    """The environment the kernels inherit: the run's cache folder (the bundle's parameters do not name it)."""
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(params.cache_path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = previous


def scrub_notebook(path: Path) -> None:
    """Rewrite an executed notebook without local absolute paths (papermill records the input and output
    paths; tracebacks and warnings name files of the Python environment)."""
    if path.is_file():
        path.write_text(scrub(path.read_text(encoding="utf-8")), encoding="utf-8")


def run(
    params_path: str | Path, out: str | Path | None = None, overrides: list[str] | None = None,
    log_output: bool = False,
) -> RunOutcome:
    """Validate parameters, execute the stages' notebooks into a bundle, rename it into place.

    Raises :class:`ParamsError` (bad input, nothing written) or :class:`RunError` (a stage failed; the
    partial folder is kept as ``<out>.failed`` for inspection and never looks complete).
    """
    params = absolutize(load_params(params_path, overrides))
    run_id = params.run_id or default_run_id(params)
    params = params.model_copy(update={"run_id": run_id})
    target = Path(out) if out else Path("results") / run_id
    if target.exists():
        raise ParamsError(f"{target} already exists: pick another --out or run_id, or remove it")
    for spec in params.datasets:
        note = access_note(spec)
        if note:
            print(f"[runlocalai-bench] {spec}: {note}", file=sys.stderr)
    preflight(params)
    check_distinct_devices(params)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    bundle = Bundle(staging)
    bundle.params_path.write_text(dump_params(params), encoding="utf-8")
    write_json(bundle.environment_path, fingerprint())
    outcome = RunOutcome(target)
    try:
        with private_kernel() as kernel, kernel_environment(params):
            def execute_recorded(stage: str, output_name: str, variant: str | None = None, device: str | None = None) -> None:
                parameters: dict = {"bundle_dir": "."}
                if variant:
                    parameters.update(variant=variant, device=device)
                _execute_recorded(outcome, stage, variant, device, NOTEBOOKS[stage],
                                  bundle.notebooks_dir / output_name, parameters, staging, kernel, log_output)

            if "first_stage" in params.stages:
                execute_recorded("first_stage", NOTEBOOKS["first_stage"])
                if outcome.failed:
                    raise RunError(f"first stage failed: {outcome.failed[0]['reason']}")
            if "rerank" in params.stages:
                for variant, device in rerank_pairs(params):
                    execute_recorded("rerank", f"02_rerank--{variant}--{device.replace(':', '')}.ipynb", variant, device)
            finalize_tables(bundle, params, outcome.executions)
            write_table(staging, "runs", pd.DataFrame(outcome.executions))
            if "report" in params.stages:
                execute_recorded("report", NOTEBOOKS["report"])
                write_table(staging, "runs", pd.DataFrame(outcome.executions))
                if outcome.failed and outcome.failed[-1]["stage"] == "report":
                    raise RunError(f"report failed: {outcome.failed[-1]['reason']}")
        write_json(staging / "bundle.json", {"schema_version": SCHEMA_VERSION, "run_id": run_id,
                                             "complete_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    except BaseException as exc:
        failed = target.with_name(target.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        staging.rename(failed)
        if isinstance(exc, RunError):
            raise RunError(f"{exc} (partial output kept in {failed})") from None
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RunError(f"{describe_failure(exc)} (partial output kept in {failed})") from exc
    staging.rename(target)
    return outcome


def _execute_recorded(
    outcome: RunOutcome, stage: str, variant: str | None, device: str | None, notebook: str, output: Path,
    parameters: dict, cwd: Path, kernel: str, log_output: bool,
) -> None:
    """Execute one notebook; record its status instead of raising, so one failing pair spares the rest."""
    started = time.perf_counter()
    status, reason = "ok", None
    try:
        execute(notebook, output, parameters, cwd, kernel, log_output)
    except Exception as exc:  # noqa: BLE001 - any failure of a notebook is recorded with its reason
        status, reason = "failed", scrub(describe_failure(exc))
        print(f"[runlocalai-bench] {stage} {variant or ''} {device or ''} failed: {reason}", file=sys.stderr)
    scrub_notebook(output)
    if status == "ok" and variant is not None:
        meta = Bundle(cwd).stage_meta(rerank_execution(variant, device or ""))
        if meta.get("status") == "skipped":
            status, reason = "skipped", meta.get("reason")
    outcome.executions.append({
        "run_id": Bundle(cwd).params().run_id, "stage": stage, "variant": variant, "device": device,
        "status": status, "reason": reason, "seconds": round(time.perf_counter() - started, 3),
        "notebook": str(output.relative_to(cwd)),
        "execution": rerank_execution(variant, device or "") if variant else stage,
    })
