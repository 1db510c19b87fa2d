"""A run a person can size, watch, interrupt and resume: the plan, live progress without kernel noise, resume
after a kill, refusal to resume a changed run, notebooks rerun by hand and finalized."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from runlocalai_bench.cli import main

from support import REPO

SMOKE = str(REPO / "params" / "smoke.yaml")
# Operability is about the runner, not the comparisons: smoke.yaml's comparison rerankers (six more executions,
# GGUF conversions among them) are left out here; tests/reporting covers them.
SMALL = ["--set", "reranker.variants=[torch-fp32, torch-bf16, torch-int8]", "--set", "stages=[first_stage, rerank]",
         "--set", "throughput.min_seconds=0", "--set", "bootstrap_samples=200", "--set", "reranker.baselines=[]"]


def cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """The CLI in a subprocess with stdout piped (not a terminal: the plain progress lines)."""
    return subprocess.Popen([sys.executable, "-m", "runlocalai_bench.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True,
                            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})


def test_plan_lists_every_execution_with_a_positive_estimate(capsys, session_cache):
    assert main(["plan", SMOKE, "--set", f"cache_dir={session_cache}",
                 "--set", "reranker.variants=[torch-fp32, onnx-int8, gguf-q4_k_m]"]) == 0
    lines = capsys.readouterr().out.splitlines()
    reranks = [line for line in lines if line.startswith("rerank ")]
    expected = {(d, v) for d in ("fixture:tiny", "fixture:multilingual") for v in ("torch-fp32", "onnx-int8", "gguf-q4_k_m")}
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        expected = {(d, v) for d, v in expected if v != "gguf-q4_k_m"}
    parsed = [re.match(r"^rerank\s+(\S+) · (\S+) · (\S+?): ", line) for line in reranks]
    found = {(m.group(1), m.group(2)) for m in parsed if m}
    assert expected <= found
    for line in reranks:
        if " · " in line and "pairs/s" in line:
            estimate = line.split("~ ")[1].split(",")[0]
            assert estimate.endswith((" s", " min", " h")) and float(estimate.split()[0]) > 0, line
    firsts = [line for line in lines if line.startswith("first stage")]
    assert len(firsts) == 2 and all("queries" in line and "documents" in line for line in firsts)
    assert any(line.startswith("total") and "executions" in line for line in lines)


def test_the_speed_probe_loads_models_in_a_child_process_never_the_runner(session_cache):
    """A model loaded in the runner would keep its device context (CUDA: ~0.5 GB, exclusive-process GPUs refuse
    every later process) for the whole run; the probe runs in a spawned child that takes it along when it exits."""
    from runlocalai_bench.params import load_params
    from runlocalai_bench.run.plan import make_plan

    from runlocalai_bench.run.plan import probes_a_device

    params = load_params(SMOKE, [f"cache_dir={session_cache}", "reranker.variants=[torch-fp32]"])
    plan = make_plan(params, reference_only=True, isolate=True)
    assert plan.probe_pid is not None and plan.probe_pid != os.getpid()
    assert any("probe here" in note for note in plan.notes) and plan.total_s > 0
    # Which runs isolate by default: any GPU among the devices (requested, or auto resolving to one).
    assert probes_a_device(load_params(SMOKE, ["reranker.devices=[cpu, cuda]"]))
    assert probes_a_device(load_params(SMOKE, ["first_stage.device=cuda:1"]))
    on_cpu = load_params(SMOKE, ["reranker.devices=[cpu]", "first_stage.device=cpu"])
    assert not probes_a_device(on_cpu)


@pytest.mark.slow
def test_progress_is_shown_while_the_run_goes_and_kernel_noise_stays_in_the_log(tmp_path, session_cache):
    out = tmp_path / "watched"
    process = cli("run", SMOKE, "--out", str(out), "--set", f"cache_dir={session_cache}", *SMALL,
                  "--set", "reranker.variants=[torch-fp32]")
    seen, before_end = [], None
    for line in process.stdout:
        seen.append(line.rstrip("\n"))
        if before_end is None and "scoring" in line and line.startswith("[runlocalai-bench] rerank"):
            before_end = not (out / "bundle.json").exists()
    assert process.wait() == 0, "\n".join(seen[-20:])
    assert before_end is True, "\n".join(seen)  # a progress line while the run was still going
    assert any(line.startswith("plan  total") for line in seen)  # the plan comes first
    assert not any("IPKernelApp" in line or "pytree" in line for line in seen), "\n".join(seen)
    log = (out / "logs" / "kernels.log").read_text()
    assert "IPKernelApp" in log  # the kernels' noise is kept, in the bundle


@pytest.mark.slow
def test_a_killed_run_resumes_and_reruns_only_what_did_not_finish(tmp_path, session_cache):
    out = tmp_path / "killed"
    args = ["run", SMOKE, "--out", str(out), "--set", f"cache_dir={session_cache}", "--set", "run_id=resumable",
            *SMALL, "--no-plan"]
    process = cli(*args)
    log = out.with_name(f".{out.name}.partial") / "executions.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 2:  # first stage and the first rerank finished
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # as an OOM kill or a closed laptop would: no cleanup at all
    process.wait()
    assert not out.exists() and out.with_name(f".{out.name}.partial").is_dir()
    finished = [json.loads(line)["execution"] for line in log.read_text().splitlines()]

    assert main(args + ["--resume"]) == 0
    runs = pd.read_parquet(out / "tables" / "runs.parquet").set_index("execution")
    assert runs.loc[finished, "reused"].all() and not runs.drop(index=finished + ["report"], errors="ignore")["reused"].any()
    assert set(runs.index) >= {"first_stage", "rerank--torch-fp32--cpu", "rerank--torch-bf16--cpu", "rerank--torch-int8--cpu"}
    summary = pd.read_parquet(out / "tables" / "summary.parquet")
    assert {"torch-fp32", "torch-bf16", "torch-int8"} <= set(summary["variant"].dropna())


@pytest.mark.slow
def test_resuming_a_changed_run_is_refused_unless_forced(tmp_path, session_cache, capsys):
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    out = tmp_path / "changed"
    base = ["run", SMOKE, "--out", str(out), "--set", f"cache_dir={session_cache}", "--set", "run_id=changed",
            "--set", "stages=[first_stage]", "--no-plan"]
    assert main(base + ["--set", f"first_stage.model={broken}"]) == 2  # the first stage fails: kept for --resume
    assert (tmp_path / "changed.failed").is_dir() and not out.exists()
    capsys.readouterr()
    assert main(base + ["--resume", "--set", f"first_stage.model={broken}", "--set", "queries.n=5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume" in err[0] and "queries.n" in err[0] and "--force" in err[0]
    assert main(base + ["--resume"]) == 2  # the model fixed: parameters differ too (first_stage.model)
    assert main(base + ["--resume", "--force"]) == 0  # forced: the fixed model runs in the kept folder
    assert (out / "tables" / "quality.parquet").is_file()


@pytest.mark.slow
def test_a_notebook_rerun_by_hand_is_finalized_into_the_tables(tmp_path, session_cache):
    """A rerank execution failed (pairs longer than the model's positions); a researcher fixes the length in the
    bundle's parameters, reruns the 02 notebook by hand and finalizes: the tables and report now hold it."""
    out = tmp_path / "fixed"
    assert main(["run", SMOKE, "--out", str(out), "--set", f"cache_dir={session_cache}", "--set", "run_id=fixed",
                 "--set", "reranker.variants=[torch-fp32]", "--set", "throughput.max_lengths=[2048]", "--no-plan",
                 "--set", "throughput.min_seconds=0", "--set", "reranker.baselines=[]"]) == 1
    assert set(pd.read_parquet(out / "tables" / "summary.parquet")["system"]) == {"dense", "oracle"}
    params = yaml.safe_load((out / "params.yaml").read_text())
    params["throughput"]["max_lengths"] = [64]
    (out / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "runlocalai_bench.run.execute", "rerank", str(out), "torch-fp32", "cpu"],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "RUNLOCALAI_BENCH_CACHE": str(session_cache)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert main(["finalize", str(out)]) == 0
    summary = pd.read_parquet(out / "tables" / "summary.parquet")
    assert "rerank" in set(summary["system"])
    runs = pd.read_parquet(out / "tables" / "runs.parquet").set_index("execution")
    assert runs.loc["rerank--torch-fp32--cpu", "status"] == "ok"
    assert "torch-fp32" in (out / "report.md").read_text()


@pytest.mark.slow
def test_the_rerank_notebook_runs_by_hand_on_a_scratch_bundle(tmp_path, session_cache, monkeypatch):
    """Opened in JupyterLab and run as it is (bundle_dir None): the smoke parameters' scratch bundle."""
    from runlocalai_bench.run.engines import run_notebook
    from runlocalai_bench.run.kernel import private_kernel

    monkeypatch.setenv("RUNLOCALAI_BENCH_SCRATCH", str(tmp_path))
    monkeypatch.setenv("RUNLOCALAI_BENCH_CACHE", str(session_cache))
    with private_kernel(tmp_path / "kernel.log") as kernel:
        run_notebook("rerank", tmp_path / "02_rerank.ipynb", {}, tmp_path, kernel, False)
    scratch = tmp_path / "scratch-smoke"
    assert (scratch / "stages" / "first_stage.json").is_file() and (scratch / "stages" / "rerank--torch-fp32--cpu.json").is_file()
    assert main(["finalize", str(scratch)]) == 0 and (scratch / "report.md").is_file()


def test_without_a_plan_the_count_still_includes_the_report(tmp_path, session_cache, capsys):
    """`--no-plan` counts the planned executions from the parameters: the report is one of them ("2 of 2"). Run by
    the subprocess engine (no kernel: the stage functions in plain Python processes): the engine's
    only end-to-end run in the suite."""
    out = tmp_path / "counted"
    args = ["run", SMOKE, "--out", str(out), "--set", f"cache_dir={session_cache}", "--engine", "subprocess",
            "--set", "stages=[first_stage, report]", "--set", "claims=null", "--no-plan"]
    assert main(args) == 0
    started = [line for line in capsys.readouterr().out.splitlines() if ": started (" in line]
    assert [line.split(": started ")[1] for line in started] == ["(1 of 2)", "(2 of 2)"], started
    assert (out / "report.html").is_file() and (out / "tables" / "quality.parquet").is_file()
