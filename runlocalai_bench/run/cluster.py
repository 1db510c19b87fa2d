"""The Ray engine: each execution a Ray task on a node of the cluster, with no shared file system.

Why Ray: it schedules tasks by resources a node declares (CPUs, GPUs, and custom ones such as a hardware
class), moves bytes between machines through its object store, reports a lost worker as an error of that task
only, and runs the same on one machine (a local cluster) as on several. What it does not do is what the
suite needs of a benchmark, so this module adds it:

- **One execution per node at a time.** Every task asks for one unit of the resource ``runlocalai-bench``
  that a node declares once (``ray start --resources '{"runlocalai-bench": 1}'``): two executions timing on
  one machine at once would share its cores and memory bandwidth and distort each other's numbers.
- **Where an execution runs.** ``cpu@epyc``/``cuda@rtx4090`` (a reranker device with a node class) runs on
  a node that declares the resource ``runlocalai-bench:epyc``, and every execution of that class runs on the
  *same* such node (chosen once per run, kept on resume): rows labelled ``cpu@epyc`` come from one machine,
  so their speeds and drift compare. A device without a class (``cpu``, ``cuda``) means *this* machine, as
  with the local engines, so the task is pinned to the driver's node; so is the first stage. CUDA executions also ask for ``num_gpus=1`` (Ray then sets CUDA_VISIBLE_DEVICES, so the
  execution's ``cuda`` is the GPU Ray gave it).
- **No shared file system.** The driver packs what an execution reads from the bundle (parameters, the
  budget, the first stage's run files and records) into the object store once; the task unpacks it into a
  temporary bundle on its node, runs the notebook there with papermill in a fresh kernel (so memory peaks are
  the execution's own, as locally), and returns every file the execution wrote (tables/parts, run files,
  its stage record, the executed notebook), its kernel log, and the node's environment fingerprint. The
  driver writes them into the bundle; the fingerprint goes to ``nodes/<execution>.json``, so one bundle
  holds several machines honestly. Collections are read on the node by their ids (ir_datasets downloads
  into the node's own cache) or from a folder at the same place relative to the node's checkout.
- **Progress.** The task is a streaming generator: it yields its progress file's new lines while the
  execution runs, and the driver appends them to its own progress file, which the display tails as usual.
"""

from __future__ import annotations

import io
import os
import re
import socket
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from runlocalai_bench.devices import device_kind, device_index, split_class
from runlocalai_bench.environment import fingerprint
from runlocalai_bench.errors import error_line
from runlocalai_bench.paths import REPO_ROOT, scrub
from runlocalai_bench.run.engines import ExecutionFailed, one_line, run_notebook
from runlocalai_bench.run.kernel import KERNEL_LOG, private_kernel
from runlocalai_bench.run.progress import PROGRESS_DIR

SLOT = "runlocalai-bench"  # one unit per node: one execution at a time on a machine
CLASS_PREFIX = "runlocalai-bench:"  # + class: the resource nodes of a hardware class declare
# What an execution never reads from the bundle: other executions' notebooks, logs and progress, the report.
NOT_SHIPPED = ("notebooks", "logs", PROGRESS_DIR, "figures", "nodes", "report.md", "report.html")
RELAY_S = 0.5  # how often a task sends its progress lines
LOCAL_OBJECT_STORE = 512 * 1024**2  # bytes; a run's inputs and parts are megabytes (run files, parquet tables)


class ClusterError(RuntimeError):
    """The cluster cannot run this run (Ray missing, unreachable, no node to run on): one line says why."""


class WorkerLost(ExecutionFailed):
    """The Ray worker or node running an execution died: the execution failed, the run stays resumable."""


@dataclass(frozen=True)
class Placement:
    """The Ray resources one execution asks for, and the node it is pinned to (None: any node with them)."""

    resources: dict[str, float]
    num_gpus: float
    node_id: str | None

    def describe(self) -> str:
        wanted = {**self.resources, **({"GPU": self.num_gpus} if self.num_gpus else {})}
        where = f"node {self.node_id[:12]}" if self.node_id else "a node"
        return f"{where} with {', '.join(f'{k}={v:g}' for k, v in sorted(wanted.items()))}"


def placement(device: str, driver_node: str, class_nodes: dict[str, str] | None = None) -> Placement:
    """Where an execution on ``device`` runs: the node chosen for its class (``class_nodes``), else this
    machine's node (the first stage passes its own device, so a GPU first stage gets its GPU)."""
    physical, cls = split_class(device)
    resources: dict[str, float] = {SLOT: 1.0}
    if cls:
        resources[CLASS_PREFIX + cls] = 1.0
    node = (class_nodes or {}).get(cls, "") if cls else driver_node
    return Placement(resources, 1.0 if device_kind(physical) == "cuda" else 0.0, node)


def class_nodes(classes: set[str], nodes: list[dict], recorded: dict[str, str]) -> dict[str, str]:
    """One node per class for the whole run: the one an interrupted run recorded if it is still alive, else
    the alive node declaring the class with the smallest id (a stable choice). A class without one is absent."""
    chosen = {}
    for cls in sorted(classes):
        able = sorted(n["NodeID"] for n in nodes if n.get("Alive") and n.get("Resources", {}).get(CLASS_PREFIX + cls))
        if able:
            chosen[cls] = recorded[cls] if recorded.get(cls) in able else able[0]
    return chosen


def check_devices(devices: list[str], first_stage_device: str) -> None:
    """Refuse ``cuda:N`` (Ray picks the GPU and hides the others); the runner refuses ``auto``."""
    for device in [*devices, first_stage_device]:
        physical, _ = split_class(device)
        if device_kind(physical) == "cuda" and ":" in physical and device_index(physical) != 0:
            raise ClusterError(f"device {device!r}: with --engine ray Ray chooses the GPU (CUDA_VISIBLE_DEVICES); "
                               "write cuda, or cuda@<class> for a class of node")


def fits(place: Placement, nodes: list[dict]) -> str | None:
    """Why no alive node can run an execution placed so, or None when one can."""
    for node in nodes:
        if not node.get("Alive"):
            continue
        if place.node_id is not None and node["NodeID"] != place.node_id:
            continue
        have = node.get("Resources", {})
        wanted = {**place.resources, **({"GPU": place.num_gpus} if place.num_gpus else {})}
        if all(have.get(k, 0) >= v for k, v in wanted.items()):
            return None
    classes = [k for k in place.resources if k.startswith(CLASS_PREFIX)]
    if classes:
        return (f"no node of class {classes[0][len(CLASS_PREFIX):]!r} in the Ray cluster (start one with "
                f"ray start --address=<head> --resources='{{\"{SLOT}\": 1, \"{classes[0]}\": 1}}')")
    return (f"this machine's Ray node cannot run it: it needs {place.describe()} (start the node with "
            f"--resources='{{\"{SLOT}\": 1}}'{' and a GPU' if place.num_gpus else ''})")


# ----------------------------------------------------------------------------------------- bundle transfer

def pack(root: Path, names: list[str]) -> bytes:
    """The files ``names`` (relative to ``root``) as a gzip'd tar (level 1: the run files are text)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for name in names:
            tar.add(str(root / name), arcname=name, recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, root: Path) -> list[str]:
    """Extract ``data`` (from :func:`pack`) under ``root``; the names written."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        tar.extractall(str(root), members=members, filter="data")
    return [m.name for m in members]


def shipped_files(root: Path) -> list[str]:
    """What an execution may read from the bundle at ``root``: everything but :data:`NOT_SHIPPED`."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] not in NOT_SHIPPED)


def _state(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _places() -> dict[str, str]:
    """This machine's checkout and home folder: what :func:`relocate` maps between driver and node."""
    return {"repo": str(REPO_ROOT), "home": str(Path.home())}


def relocate(text: str, places: dict[str, str]) -> str:
    """``text`` with the driver's checkout and home folder replaced by this node's (parameters name data
    folders and caches by absolute paths, and the checkout can live elsewhere on another machine)."""
    for theirs, ours in sorted(places.items(), key=lambda kv: -len(kv[0])):
        if theirs and theirs != ours:  # a whole path component: /home/a is not the start of /home/ab
            text = re.sub(re.escape(theirs) + r"(?=/|\s|$|[\"',\]])", lambda _: ours, text)
    return text


# ----------------------------------------------------------------------------------------- the task

def run_on_node(stage: str, name: str, notebook: str, parameters: dict, inputs: bytes, places: dict[str, str],
                cache: str) -> Iterator[dict]:
    """The Ray task (a streaming generator): run one execution here; yield ``started``, ``progress`` lines,
    then ``done`` with the files it wrote. An error of the execution is reported in ``done``; only a dead
    worker or node is raised (by Ray, on the driver)."""
    import ray  # the task runs in a Ray worker

    # Ray sets OMP_NUM_THREADS to the task's num_cpus (1) when the user has not: a CPU benchmark would then
    # quietly run single-threaded. The execution sizes its own threads (reranker.threads), as locally.
    if os.environ.get("OMP_NUM_THREADS") == "1" and not os.environ.get("RUNLOCALAI_BENCH_KEEP_OMP"):
        os.environ.pop("OMP_NUM_THREADS")
    node = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}
    yield {"kind": "started", "node": node}
    with tempfile.TemporaryDirectory(prefix="rlb-ray-") as tmp:
        staging = Path(tmp) / "bundle"
        staging.mkdir()
        unpack(inputs, staging)
        here = _places()
        mapping = {places["repo"]: here["repo"], places["home"]: here["home"]}
        for text_file in ("params.yaml", "budget.json"):
            path = staging / text_file
            if path.is_file():
                path.write_text(relocate(path.read_text(encoding="utf-8"), mapping), encoding="utf-8")
        os.environ["RUNLOCALAI_BENCH_CACHE"] = relocate(cache, mapping)
        before = _state(staging)
        progress = staging / PROGRESS_DIR / f"{name}.jsonl"
        outcome: dict[str, Any] = {}

        def execute() -> None:
            started = time.perf_counter()
            try:
                with private_kernel(staging / KERNEL_LOG, die_with_parent=True) as kernel:
                    run_notebook(stage, staging / "notebooks" / notebook, parameters, staging, kernel, False)
                outcome["status"] = "ok"
            except ExecutionFailed as exc:
                outcome.update(status="failed", reason=str(exc))
            except BaseException as exc:  # noqa: BLE001 - reported to the driver as this execution's failure
                outcome.update(status="failed", reason=scrub(error_line(exc)))
            finally:  # the execution's own time on this node, without waiting, transfers or packing
                outcome["seconds"] = round(time.perf_counter() - started, 3)

        worker = threading.Thread(target=execute, name=f"execution {name}", daemon=True)
        worker.start()
        sent = 0
        while True:
            finished = not worker.is_alive()
            if progress.is_file():
                data = progress.read_bytes()
                complete = data[: data.rfind(b"\n") + 1]  # a half-written line goes with the next relay
                if len(complete) > sent:
                    yield {"kind": "progress", "lines": complete[sent:]}
                    sent = len(complete)
            if finished:
                break
            worker.join(RELAY_S)
        after = _state(staging)
        written = sorted(n for n, state in after.items() if before.get(n) != state
                         and Path(n).parts[0] not in (PROGRESS_DIR, "logs"))
        log = staging / KERNEL_LOG
        yield {"kind": "done", **outcome, "files": pack(staging, written),
               "log": scrub(log.read_text(encoding="utf-8", errors="replace")) if log.is_file() else "",
               "node": {**node, "environment": fingerprint()}}


# ----------------------------------------------------------------------------------------- the driver

@dataclass
class Submitted:
    """One execution on the cluster, as the driver follows it."""

    name: str
    generator: Any
    thread: threading.Thread | None = None
    submitted_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None  # when a node took it (an execution may wait for a free node)
    node: dict = field(default_factory=dict)
    result: dict = field(default_factory=dict)
    error: BaseException | None = None


class Cluster:
    """A connection to a Ray cluster (``address``; None: ``RAY_ADDRESS`` or a new one-node cluster here)."""

    def __init__(self, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise ClusterError("--engine ray needs Ray: pip install -e '.[ray]' (the `ray` extra)") from None
        self.ray = ray
        address = address or os.environ.get("RAY_ADDRESS") or None
        # Ray 2.60 turns token authentication on by itself only for a cluster that ray.init() starts; a node
        # started by `ray start` without a token runs without it. So joining an existing cluster needs the mode
        # said explicitly (every node and this driver started with RAY_AUTH_MODE=token and the same token).
        if address and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            raise ClusterError(f"--address {address}: set RAY_AUTH_MODE=token (and the cluster's token in "
                               "~/.ray/auth_token or RAY_AUTH_TOKEN), as every node of the cluster was started with; "
                               "a Ray cluster without token authentication runs code for anyone who reaches it "
                               "(README, 'A Ray cluster')")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level="WARNING")
            else:  # a local cluster for this run: one node, one execution at a time, no dashboard, and an
                # object store sized to what executions exchange (run files and tables), not Ray's 30% of memory
                ray.init(resources={SLOT: 1}, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                         object_store_memory=LOCAL_OBJECT_STORE)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is one line
            raise ClusterError(f"cannot connect to the Ray cluster{f' at {address}' if address else ''}: "
                               f"{error_line(exc)}") from None
        self.driver_node = ray.get_runtime_context().get_node_id()
        self.task = ray.remote(num_returns="streaming", max_retries=0)(run_on_node)
        self._inputs = None

    def nodes(self) -> list[dict]:
        return self.ray.nodes()

    def share(self, staging: Path) -> None:
        """Put what executions read from the bundle into the object store (once per phase of the run)."""
        self._inputs = self.ray.put(pack(staging, shipped_files(staging)))

    def submit(self, name: str, stage: str, notebook: str, parameters: dict, place: Placement,
               cache: str) -> Submitted:
        options: dict[str, Any] = {"resources": place.resources, "num_gpus": place.num_gpus,
                                   "num_cpus": 1, "name": f"runlocalai-bench {name}"}
        if place.node_id:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(place.node_id, soft=False)
        generator = self.task.options(**options).remote(stage, name, notebook, parameters, self._inputs, _places(),
                                                        cache)
        return Submitted(name, generator)

    def follow(self, job: Submitted, on_start: Callable[[dict], None], on_progress: Callable[[bytes], None]) -> None:
        """Consume ``job``'s stream (in a thread of the driver); a dead worker or node becomes ``job.error``."""
        from ray.exceptions import RayError, RayTaskError

        try:
            for ref in job.generator:
                item = self.ray.get(ref)
                if item["kind"] == "started":
                    job.started_at, job.node = time.perf_counter(), item["node"]
                    on_start(item["node"])
                elif item["kind"] == "progress":
                    on_progress(item["lines"])
                else:
                    job.result = item
        except RayTaskError as exc:  # the task's own code raised (outside the notebook): a failure to fix, not retry
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            job.error = job.error or ExecutionFailed(scrub(f"{type(cause).__name__}: {one_line(str(cause))}"))
        except RayError as exc:  # the worker, its node or the task itself was lost (or cancelled by the driver)
            where = f" on Ray node {job.node.get('node_id', '?')[:12]}" if job.node else ""
            job.error = job.error or WorkerLost(f"the Ray worker running it died{where}: {type(exc).__name__}; "
                                                "--resume runs it again")
        except Exception as exc:  # noqa: BLE001 - a driver-side error fails this execution, never the thread silently
            job.error = job.error or ExecutionFailed(scrub(error_line(exc)))

    def cancel(self, job: Submitted, reason: str) -> None:
        """Give up on a job no node can take any more (its class's node died before it started)."""
        job.error = WorkerLost(f"{reason}; --resume runs it again")
        try:
            self.ray.cancel(job.generator, force=True)
        except Exception:  # noqa: BLE001 - a task that cannot be cancelled ends on its own; its error is set
            pass

    def close(self) -> None:
        self.ray.shutdown()
