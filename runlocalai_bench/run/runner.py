"""Runs a parameter file: plans it, executes each stage into a bundle, and renames the bundle into place only
when every stage has run, so a folder named ``results/<run_id>`` is always complete.

The bundle is built in ``.<name>.partial`` beside the target. Every finished execution is recorded in its
``executions.jsonl`` the moment it ends, and each execution writes its outputs atomically, so a run that stops
(a failed first stage, Ctrl-C, a closed laptop, an OOM kill) leaves a folder that the same command with
``--resume`` continues: finished executions are reused (marked so in ``tables/runs``), the rest run again.
A resume is refused when the resolved parameters or the code commit differ, unless ``--force``.

Engines: ``papermill`` and ``subprocess`` run executions one after another on this machine; ``ray``
(:mod:`run.cluster`) runs the first stage, then every other execution at once on the nodes of a Ray cluster
(one per node at a time), and writes what they return into the same bundle.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import threading
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
from runlocalai_bench.devices import node_class, resolve_device
from runlocalai_bench.run.hosted import PLANNED_FILE, cost_refusal, planned_costs, rerun_on_resume
from runlocalai_bench.run.cluster import (
    Cluster, ClusterError, Placement, Submitted, WorkerLost, check_devices, class_nodes, fits, placement, unpack,
)
from runlocalai_bench.run.display import Display, Poller
from runlocalai_bench.run.engines import ENGINES, ExecutionFailed, run_notebook, run_subprocess
from runlocalai_bench.run.finalize import (
    EXECUTIONS_LOG, Execution, execution_reranker, executions_of, finalize_tables, recorded_executions, runs_table,
)
from runlocalai_bench.run.kernel import KERNEL_LOG, private_kernel
from runlocalai_bench.run.plan import describe, make_plan
from runlocalai_bench.run.prepare import (
    absolutize, access_notes, check_distinct_devices, default_run_id, preflight, resolve_auto_devices,
)
from runlocalai_bench.run.progress import progress_file

CACHE_ENV = "RUNLOCALAI_BENCH_CACHE"
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
    address: str | None = None,
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
    pinned = [d for d in params.reranker.devices if node_class(d)]
    if pinned and engine != "ray":
        raise ParamsError(f"reranker.devices: {pinned[0]!r} pins a class of node, which only --engine ray schedules; "
                          f"drop '@{node_class(pinned[0])}' to run on this machine")
    if engine == "ray":
        if params.budget_s is not None and pinned and from_bundle is None:
            raise ParamsError(f"budget {params.budget}: {pinned[0]!r} runs on a node of class "
                              f"{node_class(pinned[0])!r}, whose speed a probe here does not know; give --from a bundle "
                              "that ran there (an earlier run on the cluster, even a small one), or set budget: none")
        if any(d == "auto" for d in params.reranker.devices):
            raise ParamsError("reranker.devices: 'auto' would resolve on this machine, not on the node that runs "
                              "the execution; with --engine ray name the device (cpu, cuda, cuda@<class>)")
        try:
            check_devices(params.reranker.devices, params.first_stage.device)
        except ClusterError as exc:
            raise ParamsError(str(exc)) from None
        # A device without a class runs on this machine, where a probe is right; a class's speed comes only from
        # an earlier bundle (--from), so without one a run with node classes is not planned.
        plan = plan and (from_bundle is not None or not pinned)
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
    made = None  # the plan, where one is made
    cluster = None
    node_lanes: dict[str, str] = {}
    if engine == "ray":  # connected before anything is written: an unreachable cluster leaves no folder
        try:
            cluster = Cluster(address)
        except ClusterError as exc:
            raise RunError(str(exc)) from None
    try:  # up to the executions' own try: whatever stops the run here leaves no cluster behind
        if cluster is not None:
            display.line(f"[runlocalai-bench] Ray cluster: {sum(n.get('Alive', False) for n in cluster.nodes())} "
                         f"node(s); executions run one at a time per node")
            # The node each class will run on (as _execute_on_cluster chooses it, keeping a resumed run's): classes
            # on one node share its time, and a class on this machine's node shares this machine's, so the budget
            # funds lanes by node. A resumed run's folder is already at `staging`.
            kept = {n["node_class"]: n["node_id"] for n in _nodes(staging) if n.get("node_class")} if source else {}
            chosen = class_nodes({node_class(d) for d in pinned}, cluster.nodes(), kept)
            node_lanes = {cls: "" if node == cluster.driver_node else node for cls, node in chosen.items()}
        if plan:
            # A resumed budgeted run keeps the allocation it recorded (budget.json): its samples must not change
            # midway, so it is planned without the budget. A new budgeted run probes every variant, not torch-fp32
            # alone: the budget is shared out by each one's rate (an emulated fp16 runs at a third of fp32's).
            recorded = source is not None and Bundle(source if source.exists() else staging).budget_path.is_file()
            planned_params = params.model_copy(update={"budget": None}) if recorded else params
            made = make_plan(planned_params, Path(from_bundle) if from_bundle else None,
                             reference_only=params.budget_s is None or recorded, node_lanes=node_lanes)
            predicted, allocation = made.executions, made.allocation
            blind = [e.name for e in planned if e.name in made.unpredicted and e.device and node_class(e.device)]
            if allocation is not None and blind:
                raise ParamsError(f"budget {params.budget}: {from_bundle} has no rate for {', '.join(blind)} (a "
                                  "variant on a node class is priced only by what an earlier run measured there), so "
                                  "their share cannot be sized; --from a bundle that ran them on those classes, or set "
                                  "budget: none")
            if recorded:
                display.line("plan  budget       resumed: the queries and corpora recorded in budget.json")
            for line in describe(made, params):
                display.line(f"plan  {line}")
            refusal = cost_refusal(made.rows, params)
            if refusal:  # before anything is written or sent
                raise ParamsError(refusal)
        elif params.reranker.hosted and params.api.max_cost_usd is not None:
            raise ParamsError(f"--no-plan: the hosted rerankers ({', '.join(params.reranker.hosted)}) are held to "
                              "api.max_cost_usd by the plan's cost; run with the plan, or set "
                              "--set api.max_cost_usd=null")
        # Without a plan the display still counts every execution, the report included ("started (13 of 13)").
        display.predicted = predicted or {e.name: 0.0 for e in planned + [REPORT] * ("report" in params.stages)}

        if source is None:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
            Bundle(staging).params_path.write_text(dump_params(params), encoding="utf-8")
            write_json(Bundle(staging).environment_path, fingerprint())
        if allocation is not None and not Bundle(staging).budget_path.is_file():  # a resumed run keeps its samples
            write_json(Bundle(staging).budget_path, allocation.record())
        if params.reranker.hosted and made is not None and not (staging / PLANNED_FILE).is_file():  # shares out api.max_cost_usd
            write_json(staging / PLANNED_FILE, {"planned_usd": planned_costs(made.rows)})
        outcome = RunOutcome(target)
        previous = {r["execution"]: r for r in recorded_executions(staging)
                    if r["status"] in ("ok", "skipped") and not rerun_on_resume(r)}
    except BaseException:
        if cluster is not None:
            cluster.close()
        raise
    try:
        with private_kernel(staging / KERNEL_LOG) as kernel, kernel_environment(params):
            todo: list[Execution] = []
            for execution in planned:
                if execution.name in previous:
                    outcome.executions.append({**previous[execution.name], "reused": True})
                    display.reused(execution.name, execution.title)
                    continue
                if cluster is not None:
                    todo.append(execution)
                    continue
                if execution.stage == "rerank" and any(e["status"] == "failed" and e["stage"] == "first_stage"
                                                       for e in outcome.executions):
                    break
                record = _execute(execution, params, staging, kernel, log_output, engine, display)
                outcome.executions.append(record)
                _record(staging, record)
                if execution.stage == "first_stage" and record["status"] == "failed":
                    raise RunError(f"first stage failed: {record['reason']}")
            if cluster is not None:
                _execute_on_cluster(todo, params, staging, cluster, display, outcome)
            finalize_tables(Bundle(staging), params, outcome.executions)
            write_table(staging, "runs", runs_table(outcome.executions))
            if "report" in params.stages:
                # The report reads the whole bundle: it runs here, in a notebook as with the default engine.
                report = _execute(REPORT, params, staging, kernel, log_output,
                                  "papermill" if engine == "ray" else engine, display)
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
    finally:
        if cluster is not None:
            cluster.close()
    staging.rename(target)
    return outcome


def _execute_on_cluster(todo: list[Execution], params: Params, staging: Path, cluster: Cluster, display: Display,
                        outcome: RunOutcome) -> None:
    """The Ray engine's loop: the first stage (every other execution reads its candidates), then the rest at
    once. An execution that no node can take, whose worker or node died, or that ran another commit is recorded
    as failed and, once the others are done, the run stops resumable (its partial folder kept): the variant
    itself did not fail, and --resume runs it again once the cluster is right."""
    retry: list[dict] = []
    recorded = {n["node_class"]: n["node_id"] for n in _nodes(staging) if n.get("node_class")}
    commit = git_state().get("commit")
    for phase in ([e for e in todo if e.stage == "first_stage"], [e for e in todo if e.stage != "first_stage"]):
        if not phase:
            continue
        cluster.share(staging)  # the first stage's outputs travel with the second phase
        nodes = cluster.nodes()
        chosen = class_nodes({node_class(e.device) for e in phase if e.device and node_class(e.device)}, nodes, recorded)
        jobs: list[tuple[Execution, Submitted, Placement]] = []
        for execution in phase:
            # The first stage runs on this machine's node on its own device (a GPU when it embeds on one).
            device = execution.device or resolve_device(params.first_stage.device)
            place = placement(device, cluster.driver_node, chosen)
            why_not = fits(place, nodes)
            if why_not:
                record = _record_of(execution, params, "failed", why_not, 0.0, None)
                display.line(f"  {'failed':8s} {execution.title}: {why_not}")
                outcome.executions.append(record)
                _record(staging, record)
                retry.append(record)
                continue
            job = cluster.submit(execution.name, execution.stage, execution.notebook, _notebook_parameters(execution),
                                 place, str(params.cache_path))
            jobs.append((execution, job, place))
        for execution, job, _ in jobs:
            progress = progress_file(staging, execution.name)
            progress.unlink(missing_ok=True)
            progress.parent.mkdir(parents=True, exist_ok=True)

            def started(node: dict, execution: Execution = execution, progress: Path = progress) -> None:
                cls = node_class(execution.device) if execution.device else None
                where = node.get("hostname", "?") + (f" (class {cls})" if cls else "")
                display.begin(execution.name, f"{execution.title} on {where}", progress)

            def relay(lines: bytes, progress: Path = progress) -> None:
                with progress.open("ab") as handle:
                    handle.write(lines)

            job.thread = threading.Thread(target=cluster.follow, args=(job, started, relay), daemon=True,
                                          name=f"ray {execution.name}")
            job.thread.start()
        pending = list(jobs)
        checked = time.monotonic()
        with Poller(display):
            while pending:
                if time.monotonic() - checked > NODE_CHECK_S:  # a node that died before taking its queued work
                    checked, nodes = time.monotonic(), cluster.nodes()
                    for execution, job, place in pending:
                        why_not = fits(place, nodes) if job.started_at is None and job.error is None else None
                        if why_not:
                            cluster.cancel(job, why_not)
                for item in [p for p in pending if not p[1].thread.is_alive()]:
                    pending.remove(item)
                    record = _collect(item[0], item[1], params, staging, display, commit)
                    again = record.pop("retry")
                    outcome.executions.append(record)
                    _record(staging, record)
                    if again:
                        retry.append(record)
                    elif item[0].stage == "first_stage" and record["status"] == "failed":
                        raise RunError(f"first stage failed: {record['reason']}")
                time.sleep(0.2)
        if retry:
            raise RunError(f"{len(retry)} execution(s) did not run to the end on the cluster ({retry[0]['execution']}: "
                           f"{retry[0]['reason']})")


NODE_CHECK_S = 5.0  # how often queued executions are checked against the nodes still alive


def _nodes(staging: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((staging / "nodes").glob("*.json"))]


def _collect(execution: Execution, job: Submitted, params: Params, staging: Path, display: Display,
             commit: str | None) -> dict:
    """Write what a finished task returned into the bundle; its record (``retry``: failed through the cluster,
    not through the execution)."""
    bundle = Bundle(staging)
    status, reason, notebook, retry = "failed", None, None, False
    seconds = round(time.perf_counter() - (job.started_at or job.submitted_at), 3)
    result = job.result
    if job.error is not None or "node" not in result:
        reason = str(job.error or "the Ray task ended without a result")
        retry = isinstance(job.error, WorkerLost)
    elif (theirs := result["node"].get("environment", {}).get("code", {}).get("commit")) != commit:
        reason = (f"the node ran code commit {(theirs or '?')[:10]}, this machine {(commit or '?')[:10]}: install "
                  "the same commit on every node (its parts were not kept)")
        retry = True
    else:
        written = unpack(result["files"], staging) if result.get("files") else []
        node = {k: v for k, v in result["node"].items() if k != "hostname"}  # a bundle names no host
        if result.get("log"):
            with (staging / KERNEL_LOG).open("a", encoding="utf-8") as log:
                log.write(f"---- {execution.name} on Ray node {node.get('node_id', '?')[:12]}\n{result['log']}")
        write_json(staging / "nodes" / f"{execution.name}.json", {**node, "device": execution.device, "node_class": (
            node_class(execution.device) if execution.device else None), "files": written})
        status, reason = result.get("status", "failed"), result.get("reason")
        seconds = result.get("seconds", seconds)
        notebook = f"notebooks/{execution.notebook}" if f"notebooks/{execution.notebook}" in written else None
        if status == "ok" and execution.variant is not None:
            meta = bundle.stage_meta(execution.name)
            if meta.get("status") == "skipped":
                status, reason = "skipped", meta.get("reason")
    if execution.name not in display.running:  # it never started (lost before its first message)
        display.begin(execution.name, execution.title, progress_file(staging, execution.name))
    display.end(status, seconds, reason, name=execution.name)
    return {**_record_of(execution, params, status, reason, seconds, notebook), "retry": retry}


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
                run_notebook(execution.stage, output, _notebook_parameters(execution), staging, kernel, log_output)
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
    return _record_of(execution, params, status, reason, seconds,
                      f"notebooks/{execution.notebook}" if engine == "papermill" else None)


def _notebook_parameters(execution: Execution) -> dict:
    """What papermill injects into an execution's notebook (the bundle is its working folder)."""
    parameters: dict = {"bundle_dir": "."}
    if execution.variant:
        parameters.update(variant=execution.variant, device=execution.device)
    if execution.baseline:
        parameters.update(baseline=execution.baseline)
    if execution.stage == "report":
        parameters.update(claims=None)
    return parameters


def _record_of(execution: Execution, params: Params, status: str, reason: str | None, seconds: float,
               notebook: str | None) -> dict:
    """An execution's line in executions.jsonl and tables/runs."""
    return {"run_id": params.run_id, "stage": execution.stage, "reranker": execution_reranker(params, execution),
            "variant": execution.variant,
            "device": execution.device, "status": status, "reason": reason, "seconds": seconds,
            "notebook": notebook,
            "execution": execution.name, "dataset": ", ".join(d.label for d in params.datasets), "reused": False}
