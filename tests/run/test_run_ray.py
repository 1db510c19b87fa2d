"""The Ray engine on a real local cluster: a head and a second node with its own class, both started here with
token authentication on (a random token of this test), and stopped in a finalizer.

What is checked: executions pinned to the second node's class run there (its node id in the bundle), the
quality tables equal the papermill engine's on the same parameters (the session's smoke bundle), and a worker
killed mid-execution gives a failed execution and a run that ``--resume`` completes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from runlocalai_bench.cli import main
from runlocalai_bench.params import ParamsError, load_params
from runlocalai_bench.reporting.report import node_environments
from runlocalai_bench.results.bundle import Bundle
from runlocalai_bench.run.cluster import CLASS_PREFIX, SLOT, Cluster, ClusterError, class_nodes, fits, placement, relocate
from runlocalai_bench.run.runner import run

from support import REPO

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

SMOKE = str(REPO / "params" / "smoke.yaml")
RAY = str(Path(sys.executable).parent / "ray")
# Two variants and no comparison reranker keep each run near a minute on two cores; timing as short as it goes.
SMALL = ["--set", "reranker.variants=[torch-fp32, torch-int8]", "--set", "reranker.baselines=[]",
         "--set", "stages=[first_stage, rerank]", "--set", "throughput.min_seconds=0",
         "--set", "throughput.workloads=[candidates]",
         "--set", "bootstrap_samples=200"]


def _ray_env(folder: Path) -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(folder / "token"),
            "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def cluster():
    """A head node (slot only) and a node of class ``second``: the address, the env, the second node's id."""
    folder = Path(tempfile.mkdtemp(prefix="rlb-ray-", dir="/tmp"))  # short: Ray's socket paths have a length cap
    (folder / "token").write_text(secrets.token_hex(32))
    env = _ray_env(folder)
    common = ["--num-cpus=1", "--num-gpus=0", "--object-store-memory=100000000", "--disable-usage-stats"]
    try:
        head = subprocess.run([RAY, "start", "--head", "--port=0", f"--temp-dir={folder / 'r'}",
                               "--include-dashboard=false", f"--resources={json.dumps({SLOT: 1})}", *common],
                              env=env, capture_output=True, text=True, timeout=180)
        assert head.returncode == 0, head.stdout + head.stderr
        address = re.search(r"ray start --address='([^']+)'", head.stdout + head.stderr).group(1)
        second = subprocess.run([RAY, "start", f"--address={address}",
                                 f"--resources={json.dumps({SLOT: 1, CLASS_PREFIX + 'second': 1})}", *common],
                                env=env, capture_output=True, text=True, timeout=180)
        assert second.returncode == 0, second.stdout + second.stderr
        probe = subprocess.run([sys.executable, "-c", (
            "import json, ray; ray.init(address=%r, log_to_driver=False, logging_level='ERROR'); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive'] and %r in n['Resources']]))"
        ) % (address, CLASS_PREFIX + "second")], env=env, capture_output=True, text=True, timeout=120)
        second_ids = json.loads(probe.stdout.strip().splitlines()[-1])
        assert len(second_ids) == 1, probe.stdout + probe.stderr
        yield address, env, second_ids[0]
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def _cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runlocalai_bench.cli", *args], env={**env, "PYTHONUNBUFFERED": "1"},
                          cwd=REPO, capture_output=True, text=True, timeout=1200)


def _rerank_quality(bundle: Path, reranker: str = "twin:tiny-xlmr") -> pd.DataFrame:
    quality = pd.read_csv(bundle / "tables" / "quality.csv")
    rows = quality[(quality["system"] == "rerank") & (quality["reranker"] == reranker)]
    return rows[["dataset", "variant", "device", "query_id", "measure", "value"]].sort_values(
        ["dataset", "variant", "device", "query_id", "measure"]).reset_index(drop=True)


@pytest.mark.slow
def test_ray_runs_pinned_executions_on_their_class_and_matches_the_papermill_engine(cluster, tmp_path, smoke_bundle,
                                                                                   session_cache, monkeypatch):
    address, env, second_node = cluster
    settings = [*SMALL, "--set", f"cache_dir={session_cache}"]
    ray_out = tmp_path / "ray"
    done = _cli(["run", SMOKE, "--engine", "ray", "--address", address, "--out", str(ray_out), *settings,
                 "--set", "reranker.devices=[cpu, cpu@second]"], env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    nodes = {p.stem: json.loads(p.read_text()) for p in (ray_out / "nodes").glob("*.json")}
    assert set(nodes) == {"first_stage", "rerank--torch-fp32--cpu", "rerank--torch-int8--cpu",
                          "rerank--torch-fp32--cpu@second", "rerank--torch-int8--cpu@second"}
    for name in ("rerank--torch-fp32--cpu@second", "rerank--torch-int8--cpu@second"):
        assert nodes[name]["node_id"] == second_node and nodes[name]["node_class"] == "second"
        assert nodes[name]["environment"]["cpu"]  # the node's own fingerprint travels with its parts
        assert "hostname" not in nodes[name]  # a bundle names no host (README: what a bundle contains)
    # Without a class, a device means the driver's machine: those executions share the first stage's node.
    assert nodes["rerank--torch-fp32--cpu"]["node_id"] == nodes["first_stage"]["node_id"]
    assert (ray_out / "notebooks" / "02_rerank--torch-int8--cpu@second.ipynb").is_file()
    # The report describes a pinned device by the node that ran it, not by the machine that wrote the bundle.
    assert set(node_environments(Bundle(ray_out))) == {"cpu@second"}

    # The same smoke parameters run by the papermill engine in this process (the session's smoke bundle: other
    # variants and timing settings, which change no score): torch-fp32 scores the same on both nodes as there,
    # and torch-int8 the same on both nodes.
    on_ray = _rerank_quality(ray_out)
    assert set(on_ray["device"]) == {"cpu", "cpu@second"}
    here = _rerank_quality(smoke_bundle)
    here = here[(here["variant"] == "torch-fp32") & (here["device"] == "cpu")].reset_index(drop=True)
    per_device = {device: on_ray[on_ray["device"] == device].assign(device="cpu").reset_index(drop=True)
                  for device in ("cpu", "cpu@second")}
    for rows in per_device.values():
        pd.testing.assert_frame_equal(rows[rows["variant"] == "torch-fp32"].reset_index(drop=True), here,
                                      check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(per_device["cpu"], per_device["cpu@second"], check_exact=False, rtol=1e-9)
    throughput = pd.read_csv(ray_out / "tables" / "throughput.csv")
    assert set(throughput["device"]) == {"cpu", "cpu@second"}  # timing rows keep the class apart too
    # Drift is measured per device label: torch-int8 against torch-fp32 of its own class, on both.
    drift = pd.read_csv(ray_out / "tables" / "drift.csv")
    assert {(v, d) for v, d in zip(drift["variant"], drift["device"])} >= {("torch-int8", "cpu"), ("torch-int8", "cpu@second")}
    first = pd.read_csv(ray_out / "tables" / "quality.csv")
    first_here = pd.read_csv(smoke_bundle / "tables" / "quality.csv")
    pick = lambda q: q[q["system"] != "rerank"].sort_values(["dataset", "system", "query_id", "measure"])["value"].to_numpy()
    assert (pick(first) == pick(first_here)).all()  # the first stage on a Ray node retrieves what it does here

    # A budget over the cluster: the class's rates from this bundle (--from), this machine's too; the two lanes
    # run side by side, so each is funded for the budget after the first stage, and the wall time is the slower.
    from runlocalai_bench.run import plan as plan_module
    from runlocalai_bench.run.plan import make_plan

    # A kernel's start is measured afresh by each plan; fixed here so that the two plans below price alike.
    monkeypatch.setattr(plan_module, "kernel_overhead_s", lambda: 10.0)
    budgeted = load_params(SMOKE, [f"cache_dir={session_cache}", "reranker.variants=[torch-fp32, torch-int8]",
                                   "reranker.baselines=[]", "reranker.devices=[cpu, cpu@second]", "budget=10min",
                                   "queries.min_n=3", "throughput.workloads=[candidates]"])
    planned = make_plan(budgeted, ray_out, node_lanes={"second": second_node})
    allocation = planned.allocation
    assert set(allocation.lanes) == {"", second_node} and not planned.unpredicted
    rows = planned.rows[planned.rows["device"] == "cpu@second"]
    assert rows["source"].str.contains(f"bundle {ray_out.name}").all()
    assert planned.total_s == pytest.approx(allocation.predicted_s, rel=0.01)
    # The same class on this machine's node shares this machine's time: one lane, run one after another.
    shared = make_plan(budgeted, ray_out, node_lanes={"second": ""}).allocation
    assert set(shared.lanes) == {""} and not shared.skipped and not allocation.skipped
    assert shared.queries == allocation.queries  # everything fits either way: the fixtures are small
    assert shared.lanes[""] == pytest.approx(sum(allocation.lanes.values()))
    assert shared.predicted_s > allocation.predicted_s


def _kill_first_rerank_worker(staging: Path, deadline: float) -> list:
    """Once the first stage is back in the driver's folder, SIGKILL the Ray worker running a rerank (only the
    worker, as Ray's memory monitor or a crash would); the kernel processes it had started."""
    while time.monotonic() < deadline:
        if (staging / "nodes" / "first_stage.json").is_file():
            for proc in psutil.process_iter(["cmdline"]):
                cmdline = " ".join(proc.info["cmdline"] or [])
                if cmdline.startswith("ray::runlocalai-bench rerank--"):  # the task's name is its proctitle
                    children = proc.children(recursive=True)
                    if not children:  # the rerank's kernel has not started yet
                        continue
                    proc.send_signal(signal.SIGKILL)
                    return children
        time.sleep(0.2)
    return []


@pytest.mark.slow
def test_a_killed_worker_fails_its_execution_and_the_run_resumes(cluster, tmp_path, session_cache):
    address, env, _ = cluster
    out = tmp_path / "killed"
    args = ["run", SMOKE, "--engine", "ray", "--address", address, "--out", str(out), *SMALL,
            "--set", f"cache_dir={session_cache}", "--set", "reranker.devices=[cpu]", "--set", "run_id=killed"]
    proc = subprocess.Popen([sys.executable, "-m", "runlocalai_bench.cli", *args], env={**env, "PYTHONUNBUFFERED": "1"},
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    orphans = _kill_first_rerank_worker(out.with_name(f".{out.name}.partial"), time.monotonic() + 300)
    assert orphans, "no rerank worker with a kernel was found to kill"
    # The kernel dies with its worker (PR_SET_PDEATHSIG): nothing keeps computing beside the next execution.
    _, alive = psutil.wait_procs(orphans, timeout=30)
    assert not alive, [p.cmdline() for p in alive]
    output, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 2, output[-3000:]
    assert "did not run to the end on the cluster" in output and "--resume" in output
    failed = out.with_name(f"{out.name}.failed")
    records = [json.loads(line) for line in (failed / "executions.jsonl").read_text().splitlines()]
    lost = [r for r in records if r["status"] == "failed"]
    assert len(lost) == 1 and "Ray worker running it died" in lost[0]["reason"]
    assert any(r["status"] == "ok" and r["stage"] == "rerank" for r in records)  # the other execution went on

    resumed = _cli([*args, "--resume"], env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert set(runs["status"]) == {"ok"}
    again = runs[runs["execution"] == lost[0]["execution"]]
    assert not again["reused"].iloc[0] and runs["reused"].sum() == 2  # the first stage and the other rerank


def test_placement_and_why_an_execution_cannot_be_placed():
    head = {"NodeID": "head", "Alive": True, "Resources": {SLOT: 1.0, "CPU": 2.0}}
    gpu = {"NodeID": "gpu", "Alive": True, "Resources": {SLOT: 1.0, CLASS_PREFIX + "rtx4090": 1.0, "GPU": 1.0}}
    gpu2 = {**gpu, "NodeID": "gpu2"}
    chosen = class_nodes({"rtx4090", "absent"}, [head, gpu2, gpu], {})
    assert chosen == {"rtx4090": "gpu"}  # one node per class for the whole run, the same on every call
    assert class_nodes({"rtx4090"}, [head, gpu, gpu2], {"rtx4090": "gpu2"}) == {"rtx4090": "gpu2"}  # kept on resume
    pinned = placement("cuda@rtx4090", "head", chosen)
    assert pinned.node_id == "gpu" and pinned.num_gpus == 1 and pinned.resources[CLASS_PREFIX + "rtx4090"] == 1
    assert fits(pinned, [head, gpu]) is None
    assert "no node of class 'rtx4090'" in fits(pinned, [head, {**gpu, "Alive": False}])
    assert "no node of class 'absent'" in fits(placement("cpu@absent", "head", chosen), [head, gpu])
    here = placement("cpu", "head")
    assert here.node_id == "head" and here.num_gpus == 0 and fits(here, [head, gpu]) is None
    # A first stage embedding on the GPU asks for one (else Ray hides the GPUs from the task).
    assert placement("cuda", "head").num_gpus == 1
    assert "this machine's Ray node cannot run it" in fits(placement("cuda", "head"), [head, gpu])


def test_joining_a_cluster_needs_token_authentication(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    with pytest.raises(ClusterError, match="RAY_AUTH_MODE=token"):
        Cluster("127.0.0.1:6379")
    monkeypatch.delenv("RAY_AUTH_MODE")
    with pytest.raises(ClusterError, match="RAY_AUTH_MODE=token"):
        Cluster("10.0.0.1:6379")


def test_class_devices_need_the_ray_engine_and_a_named_device(tmp_path):
    assert load_params(SMOKE, ["reranker.devices=[cpu, cuda@rtx4090]"]).reranker.devices == ["cpu", "cuda@rtx4090"]
    with pytest.raises(ParamsError, match="auto@x"):
        load_params(SMOKE, ["reranker.devices=[auto@x]"])
    with pytest.raises(ParamsError, match="only --engine ray schedules"):
        run(SMOKE, tmp_path / "b", ["reranker.devices=[cpu@epyc]"], plan=False)
    with pytest.raises(ParamsError, match="Ray chooses the GPU"):
        run(SMOKE, tmp_path / "b", ["reranker.devices=[cuda:1@big]"], plan=False, engine="ray")
    with pytest.raises(ParamsError, match="whose speed a probe here does not know; give --from"):
        run(SMOKE, tmp_path / "b", ["budget=8h", "reranker.devices=[cpu, cpu@epyc]"], engine="ray")
    assert not (tmp_path / "b").exists() and not list(tmp_path.iterdir())


def test_a_node_class_is_never_probed_here_and_runs_beside_this_machine_in_the_plan(session_cache):
    """This machine's probe says nothing of another node's speed: a class device without an earlier bundle's rate
    is left out of the total (and named), never predicted at this machine's rate."""
    from runlocalai_bench.run.plan import make_plan

    params = load_params(SMOKE, [f"cache_dir={session_cache}", "reranker.variants=[torch-fp32]",
                                 "reranker.baselines=[]", "reranker.devices=[cpu, cpu@epyc]"])
    planned = make_plan(params, reference_only=True)
    assert planned.lanes == {"rerank--torch-fp32--cpu": "", "rerank--torch-fp32--cpu@epyc": "epyc"}
    assert planned.unpredicted == ["rerank--torch-fp32--cpu@epyc"]
    assert any("class 'epyc': a probe here says nothing of it" in note for note in planned.notes)
    here = planned.executions["rerank--torch-fp32--cpu"]
    assert planned.total_s == pytest.approx(planned.executions["first_stage"] + here + planned.executions["report"])


def test_parameters_follow_the_checkout_to_another_node():
    text = "datasets: [/home/a/src/runlocalai-bench/fixtures/x]\ncache_dir: /home/a/.cache/rlb\nother: /home/ab/x\n"
    moved = relocate(text, {"/home/a/src/runlocalai-bench": "/srv/rlb", "/home/a": "/root"})
    assert moved == "datasets: [/srv/rlb/fixtures/x]\ncache_dir: /root/.cache/rlb\nother: /home/ab/x\n"


def test_cli_offers_the_ray_engine(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--engine {papermill,subprocess,ray}" in capsys.readouterr().out.replace("\n", " ")
