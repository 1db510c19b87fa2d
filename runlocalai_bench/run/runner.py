"""Runs a parameter file: plans it, executes each stage into a bundle, and renames the bundle into place only
when every stage has run, so a folder named ``results/<run_id>`` is always complete.

The bundle is built in ``.<name>.partial`` beside the target. Every finished execution is recorded in its
``executions.jsonl`` the moment it ends, and each execution writes its outputs atomically, so a run that stops
(a failed first stage, Ctrl-C, a closed laptop, an OOM kill) leaves a folder that the same command with
``--resume`` continues: finished executions are reused (marked so in ``tables/runs``), the rest run again.
A resume is refused when the resolved parameters or the code commit differ, unless ``--force``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import yaml

from runlocalai_bench.environment import fingerprint, git_state
from runlocalai_bench.errors import error_line
from runlocalai_bench.params import Params, ParamsError, dump_params, load_params
from runlocalai_bench.paths import scrub
from runlocalai_bench.results.bundle import Bundle, write_json
from runlocalai_bench.results.tables import SCHEMA_VERSION, write_table
from runlocalai_bench.run.display import Display, Poller
from runlocalai_bench.run.engines import ENGINES, ExecutionFailed, run_notebook, run_subprocess
from runlocalai_bench.run.finalize import (
    EXECUTIONS_LOG, Execution, execution_reranker, executions_of, finalize_tables, recorded_executions, runs_table,
)
from runlocalai_bench.run.kernel import private_kernel
from runlocalai_bench.run.plan import describe, make_plan
from runlocalai_bench.run.prepare import (
    absolutize, access_notes, check_distinct_devices, default_run_id, preflight, resolve_auto_devices,
)
from runlocalai_bench.run.progress import progress_file

CACHE_ENV = "RUNLOCALAI_BENCH_CACHE"
KERNEL_LOG = "logs/kernels.log"
REPORT = Execution("report", "report")


class RunError(RuntimeError):
    """A run that could not complete; the message is one line saying why."""


@dataclass
class RunOutcome:
    bundle: Path
    executions: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [e for e in self.executions if e["status"] == "failed"]


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


def partial_folder(target: Path) -> Path:
    return target.with_name(f".{target.name}.partial")


def failed_folder(target: Path) -> Path:
    return target.with_name(f"{target.name}.failed")


def _record(bundle: Path, record: dict) -> None:
    with (Path(bundle) / EXECUTIONS_LOG).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def check_resumable(folder: Path, params: Params, force: bool) -> None:
    """Refuse (one line) a resume whose parameters or code commit differ from the interrupted run's."""
    before = yaml.safe_load((folder / "params.yaml").read_text(encoding="utf-8"))
    now = yaml.safe_load(dump_params(params))
    changed = _differences(before, now)
    env_before = json.loads((folder / "environment.json").read_text(encoding="utf-8")).get("code", {})
    env_now = git_state()
    problems = [f"parameters differ ({'; '.join(changed[:3])}{'; ...' if len(changed) > 3 else ''})"] if changed else []
    if env_before.get("commit") != env_now.get("commit"):
        problems.append(f"the code commit differs ({(env_before.get('commit') or '?')[:10]} -> "
                        f"{(env_now.get('commit') or '?')[:10]})")
    if problems and not force:
        raise ParamsError(f"cannot resume {folder.name}: {' and '.join(problems)}; rerun without --resume into a new "
                          "folder, or add --force to resume anyway")


def run(
    params_path: str | Path, out: str | Path | None = None, overrides: list[str] | None = None,
    log_output: bool = False, resume: bool = False, force: bool = False, plan: bool = True,
    from_bundle: str | Path | None = None, engine: str = "papermill", stream: IO[str] | None = None,
) -> RunOutcome:
    """Validate, plan, execute every stage into a bundle, rename it into place.

    Raises :class:`ParamsError` (bad input, nothing written) or :class:`RunError` (a stage failed; the
    partial folder is kept as ``<out>.failed`` and can be resumed).
    """
    if engine not in ENGINES:
        raise ParamsError(f"--engine {engine!r}: accepted: {', '.join(ENGINES)}")
    stream = stream or sys.stdout
    params = absolutize(load_params(params_path, overrides))
    if params.budget_s is not None and not plan:
        raise ParamsError(f"budget {params.budget}: the budget is shared out from the plan's predictions; "
                          "drop --no-plan (or set budget: none)")
    check_distinct_devices(params)
    # `auto` becomes the device it means here, in params.yaml too: execution names, a comparison reranker's
    # variant (torch-fp16 on CUDA) and `finalize` on another machine then agree with what ran.
    params = resolve_auto_devices(params)
    target = Path(out) if out else None
    if resume and params.run_id is None and target is None:
        raise ParamsError("--resume needs the folder to continue: give --out DIR, or set run_id")
    source = None
    if resume:
        target = (target or Path("results") / params.run_id).absolute()
        source = next((f for f in (partial_folder(target), failed_folder(target)) if f.is_dir()), None)
        if source is None:
            raise ParamsError(f"nothing to resume for {target}: no {partial_folder(target).name} or "
                              f"{failed_folder(target).name} beside it")
        if params.run_id is None:  # the interrupted run's own id (a default id carries its start time)
            params = params.model_copy(update={"run_id": Bundle(source).params().run_id})
    params = params.model_copy(update={"run_id": params.run_id or default_run_id(params)})
    # Absolute from here: the kernels run in the staging folder, so a relative --out (or the default
    # results/<run_id>) would name another place for them (their log, the bundle they write into).
    target = (target or Path("results") / params.run_id).absolute()
    if target.exists():
        raise ParamsError(f"{target} already exists: pick another --out or run_id, or remove it")
    staging = partial_folder(target)
    if source is not None:
        check_resumable(source, params, force)
        if source != staging:
            source.rename(staging)
        if force:  # the executions still to run read the parameters given now
            Bundle(staging).params_path.write_text(dump_params(params), encoding="utf-8")
    else:
        for leftover in (staging, failed_folder(target)):
            if leftover.exists():
                raise ParamsError(f"{leftover} holds an unfinished run of {target.name}: add --resume to continue it, "
                                  "or remove it to start over")
        for note in access_notes(params):
            print(f"[runlocalai-bench] {note}", file=sys.stderr)
        preflight(params)
    planned = executions_of(params)
    predicted: dict[str, float] = {}
    display = Display(stream=stream)
    allocation = None
    if plan:
        # A resumed budgeted run keeps the allocation it recorded (budget.json): its samples must not change
        # midway, so it is planned without the budget. A new budgeted run probes every variant, not torch-fp32
        # alone: the budget is shared out by each one's rate (an emulated fp16 runs at a third of fp32's).
        recorded = source is not None and Bundle(source if source.exists() else staging).budget_path.is_file()
        planned_params = params.model_copy(update={"budget": None}) if recorded else params
        made = make_plan(planned_params, Path(from_bundle) if from_bundle else None,
                         reference_only=params.budget_s is None or recorded)
        predicted, allocation = made.executions, made.allocation
        if recorded:
            display.line("plan  budget       resumed: the queries and corpora recorded in budget.json")
        for line in describe(made, params):
            display.line(f"plan  {line}")
    # Without a plan the display still counts every execution, the report included ("started (13 of 13)").
    display.predicted = predicted or {e.name: 0.0 for e in planned + [REPORT] * ("report" in params.stages)}

    if source is None:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        Bundle(staging).params_path.write_text(dump_params(params), encoding="utf-8")
        write_json(Bundle(staging).environment_path, fingerprint())
    if allocation is not None and not Bundle(staging).budget_path.is_file():  # a resumed run keeps its samples
        write_json(Bundle(staging).budget_path, allocation.record())
    outcome = RunOutcome(target)
    previous = {r["execution"]: r for r in recorded_executions(staging) if r["status"] in ("ok", "skipped")}
    try:
        with private_kernel(staging / KERNEL_LOG) as kernel, kernel_environment(params):
            for execution in planned:
                if execution.name in previous:
                    outcome.executions.append({**previous[execution.name], "reused": True})
                    display.reused(execution.name, execution.title)
                    continue
                if execution.stage == "rerank" and any(e["status"] == "failed" and e["stage"] == "first_stage"
                                                       for e in outcome.executions):
                    break
                record = _execute(execution, params, staging, kernel, log_output, engine, display)
                outcome.executions.append(record)
                _record(staging, record)
                if execution.stage == "first_stage" and record["status"] == "failed":
                    raise RunError(f"first stage failed: {record['reason']}")
            finalize_tables(Bundle(staging), params, outcome.executions)
            write_table(staging, "runs", runs_table(outcome.executions))
            if "report" in params.stages:
                report = _execute(REPORT, params, staging, kernel, log_output, engine, display)
                outcome.executions.append(report)
                write_table(staging, "runs", runs_table(outcome.executions))
                if report["status"] == "failed":
                    raise RunError(f"report failed: {report['reason']}")
        _scrub_logs(staging)
        write_json(staging / "bundle.json", {"schema_version": SCHEMA_VERSION, "run_id": params.run_id,
                                             "complete_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    except KeyboardInterrupt:
        _keep_for_resume(staging, target)
        display.line(f"[runlocalai-bench] interrupted: finished executions are kept in {failed_folder(target)}; "
                     f"continue with the same command and --resume{'' if out else ' --out ' + str(target)}")
        raise
    except BaseException as exc:
        kept = _keep_for_resume(staging, target)
        if isinstance(exc, (RunError, ParamsError)):
            raise type(exc)(f"{exc} (partial output kept in {kept}; --resume continues it)") from None
        raise RunError(f"{error_line(exc)} (partial output kept in {kept}; --resume continues it)") from exc
    staging.rename(target)
    return outcome


def _keep_for_resume(staging: Path, target: Path) -> Path:
    failed = failed_folder(target)
    if staging.is_dir():
        shutil.rmtree(failed, ignore_errors=True)
        staging.rename(failed)
    return failed


def _scrub_logs(staging: Path) -> None:
    for path in (staging / "logs").glob("*.log"):
        path.write_text(scrub(path.read_text(encoding="utf-8", errors="replace")), encoding="utf-8")


def _execute(execution: Execution, params: Params, staging: Path, kernel: str, log_output: bool, engine: str,
             display: Display) -> dict:
    """Run one execution; record its status instead of raising, so one failing variant spares the rest."""
    bundle = Bundle(staging)
    started = time.perf_counter()
    status, reason = "ok", None
    meta_path = bundle.stages_dir / f"{execution.name}.json"
    meta_path.unlink(missing_ok=True)  # a rerun must not inherit an earlier attempt's record
    progress = progress_file(staging, execution.name)
    progress.unlink(missing_ok=True)
    display.begin(execution.name, execution.title, progress)
    output = bundle.notebooks_dir / execution.notebook
    try:
        with Poller(display):
            if engine == "papermill":
                parameters: dict = {"bundle_dir": "."}
                if execution.variant:
                    parameters.update(variant=execution.variant, device=execution.device)
                if execution.baseline:
                    parameters.update(baseline=execution.baseline)
                if execution.stage == "report":
                    parameters.update(claims=None)
                run_notebook(execution.stage, output, parameters, staging, kernel, log_output)
            else:
                args = [execution.variant, execution.device] if execution.variant else []
                args += [execution.baseline] if execution.baseline else []
                run_subprocess(execution.stage, staging, [a for a in args if a], staging / KERNEL_LOG)
    except ExecutionFailed as exc:
        status, reason = "failed", str(exc)
    if status == "ok" and execution.variant is not None:
        meta = bundle.stage_meta(execution.name)
        if meta.get("status") == "skipped":
            status, reason = "skipped", meta.get("reason")
    seconds = round(time.perf_counter() - started, 3)
    display.end(status, seconds, reason)
    return {"run_id": params.run_id, "stage": execution.stage, "reranker": execution_reranker(params, execution),
            "variant": execution.variant,
            "device": execution.device, "status": status, "reason": reason, "seconds": seconds,
            "notebook": f"notebooks/{execution.notebook}" if engine == "papermill" else None,
            "execution": execution.name, "dataset": ", ".join(d.label for d in params.datasets), "reused": False}
