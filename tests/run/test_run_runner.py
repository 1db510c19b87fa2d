"""The papermill runner end to end on the fixture (offline), and its failure modes."""

import json

import pandas as pd
import pytest
import yaml

from runlocalai_bench.cli import main

from support import REPO


def run_cli(*args: str, plan: bool = False) -> int:
    """The smoke parameters through the CLI (without the cost prediction unless asked: it probes models)."""
    return main(["run", str(REPO / "params" / "smoke.yaml"), *args, *([] if plan else ["--no-plan"])])


@pytest.mark.slow
def test_the_default_out_folder_is_relative_to_where_the_command_runs(tmp_path, session_cache, monkeypatch):
    """`make smoke` writes results/<run_id> below the current folder; the kernels, which run in the staging
    folder, must find their log and bundle there too (a relative path once sent them elsewhere)."""
    monkeypatch.chdir(tmp_path)
    assert run_cli("--set", "stages=[first_stage]", "--set", f"cache_dir={session_cache}", "--set", "run_id=here") == 0
    assert (tmp_path / "results" / "here" / "runs" / "fixture-tiny" / "first_stage.trec").is_file()
    assert (tmp_path / "results" / "here" / "logs" / "kernels.log").is_file()


@pytest.mark.slow
def test_auto_is_recorded_as_the_device_it_meant(tmp_path, session_cache):
    """`devices: [auto]` (the real benchmark's setting) runs and is recorded as the device it resolved to, so
    execution names, a comparison reranker's variant and the headline agree, here and on any machine that
    finalizes the bundle later."""
    import torch

    here = "cuda" if torch.cuda.is_available() else "cpu"
    out = tmp_path / "auto"
    assert run_cli("--out", str(out), "--set", f"cache_dir={session_cache}", "--set", "reranker.devices=[auto]",
                   "--set", "reranker.variants=[torch-fp32]", "--set", "throughput.enabled=false",
                   "--set", "reranker.baseline_variants=[]",
                   "--set", "datasets=[fixture:tiny]", "--set", "run_id=auto") == 0
    assert yaml.safe_load((out / "params.yaml").read_text())["reranker"]["devices"] == [here]
    runs = pd.read_parquet(out / "tables" / "runs.parquet")
    assert set(runs["device"].dropna()) == {here} and (runs["status"] == "ok").all()
    assert f"baseline--twin-tiny-bert--{'torch-fp16' if here == 'cuda' else 'torch-fp32'}--{here}" in set(runs["execution"])
    headline = pd.read_parquet(out / "tables" / "headline.parquet")
    assert set(headline["device"].dropna()) <= {here, ""}
    assert main(["finalize", str(out)]) == 0
    assert (pd.read_parquet(out / "tables" / "runs.parquet")["status"] == "ok").all()


@pytest.mark.slow
def test_first_stage_smoke_bundle(tmp_path, session_cache):
    out = tmp_path / "bundle"
    assert run_cli("--out", str(out), "--set", "stages=[first_stage]", "--set", f"cache_dir={session_cache}",
                   "--set", "run_id=smoke-first") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # nothing else left behind
    params = yaml.safe_load((out / "params.yaml").read_text())
    assert params["run_id"] == "smoke-first" and params["stages"] == ["first_stage"]
    env = json.loads((out / "environment.json").read_text())
    assert {"cpu", "packages", "code", "date_utc"} <= set(env) and env["packages"]["torch"]
    assert (out / "runs" / "fixture-tiny" / "first_stage.trec").read_text().startswith("q01 Q0 ")
    assert (out / "runs" / "fixture-multilingual" / "first_stage.trec").read_text().startswith("mq01 Q0 ")
    quality = pd.read_parquet(out / "tables" / "quality.parquet")
    assert list(quality.columns[:11]) == ["run_id", "dataset", "split", "system", "first_stage", "reranker",
                                          "variant", "device", "query_id", "measure", "value"]
    assert set(quality["measure"]) == {"nDCG@10", "RR@10", "R@20", "R@10"}  # recall at both depths, named truthfully
    assert quality.groupby(["dataset", "measure"]).size().to_dict() == {  # judged queries, none dropped
        (d, m): n for d, n in (("fixture:tiny", 13), ("fixture:multilingual", 12))
        for m in ("nDCG@10", "RR@10", "R@20", "R@10")}
    languages = quality[quality["dataset"] == "fixture:multilingual"].groupby("language")["query_id"].nunique()
    assert languages.to_dict() == {"ar": 3, "es": 3, "ru": 3, "zh": 3}
    assert pd.read_csv(out / "tables" / "quality.csv").shape == quality.shape
    executed = json.loads((out / "notebooks" / "01_first_stage.ipynb").read_text())
    assert any(c.get("outputs") for c in executed["cells"] if c["cell_type"] == "code")
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert runs["status"].tolist() == ["ok"]


def test_bad_parameters_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "bundle"
    assert run_cli("--out", str(out), "--set", "reranker.variants=[torch-fp64]") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'torch-fp64' is not a known variant" in err[0] and "smoke.yaml" in err[0]
    assert not tmp_path.joinpath("bundle").exists() and list(tmp_path.iterdir()) == []


def test_missing_gguf_file_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "bundle"
    assert run_cli("--out", str(out), "--set", f"reranker.gguf_files={{gguf-q4_k_m: {tmp_path / 'absent.gguf'}}}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reranker.gguf_files.gguf-q4_k_m" in err[0] and "absent.gguf does not exist" in err[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_failing_notebook_fails_the_command_and_leaves_no_complete_bundle(tmp_path, capsys, session_cache):
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    out = tmp_path / "bundle"
    code = run_cli("--out", str(out), "--set", "stages=[first_stage]", "--set", f"first_stage.model={broken}",
                   "--set", f"cache_dir={session_cache}")
    assert code == 2
    err = capsys.readouterr().err
    assert "first stage failed: ModelNotFoundError: cannot load first-stage model" in err
    assert not out.exists()
    assert (tmp_path / "bundle.failed" / "notebooks" / "01_first_stage.ipynb").is_file()


def test_a_hub_model_missing_offline_fails_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "bundle"
    code = run_cli("--out", str(out), "--set", "stages=[first_stage]", "--set", "first_stage.model=no-such-org/no-model")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "first_stage.model: 'no-such-org/no-model' at revision 'main' is not in the Hugging Face cache" in err[0]
    assert "make smoke" in err[0] and list(tmp_path.iterdir()) == []


def test_existing_output_is_refused(tmp_path, capsys):
    (tmp_path / "bundle").mkdir()
    assert run_cli("--out", str(tmp_path / "bundle")) == 2
    assert "already exists" in capsys.readouterr().err


def test_malformed_collection_exits_2_and_writes_nothing(tmp_path, beir_copy, capsys):
    corpus = beir_copy / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    lines[6] = '{"_id": "d07", "title": "broken"'
    corpus.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out" / "bundle"
    assert run_cli("--out", str(out), "--set", f"dataset={beir_copy}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corpus.jsonl:7: not valid JSON" in err[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_random_weights_give_throughput_but_never_quality(tmp_path, session_cache):
    out = tmp_path / "twin"
    assert run_cli("--out", str(out), "--set", "reranker.weights=random", "--set", "reranker.variants=[torch-fp32]",
                   "--set", f"cache_dir={session_cache}", "--set", "run_id=twin-test", "--set", "reranker.baselines=[]") == 0
    quality = pd.read_parquet(out / "tables" / "quality.parquet")
    # the first stage and the oracle ordering of its candidates (the judgments' own order): nothing reranked
    assert set(quality["system"]) == {"dense", "oracle"} and quality["variant"].isna().all()
    assert not list((out / "runs").rglob("rerank--torch-fp32--cpu.trec"))
    meta = json.loads((out / "stages" / "rerank--torch-fp32--cpu.json").read_text())
    assert meta["quality"].startswith("not measured: random weights") and meta["checkpoint"]["kind"] == "shape twin"
    throughput = pd.read_parquet(out / "tables" / "throughput.parquet")
    assert (throughput["weights"] == "random").all()
    assert throughput.groupby("workload").size().to_dict() == {"candidates": 2, "query": 2, "fixed": 1}
    assert "Random weights (shape twin)" in (out / "report.md").read_text()


def test_two_specs_for_one_device_are_refused(tmp_path, capsys):
    """[auto, cpu] on a machine without a GPU: both executions would measure the CPU and pool its queries twice."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("on a CUDA machine auto means cuda")
    assert run_cli("--out", str(tmp_path / "b"), "--set", "reranker.devices=[auto, cpu]") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'auto' and 'cpu' both mean cpu on this machine" in err[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_failed_executions_rows_never_reach_the_summary(tmp_path, session_cache):
    """A pair longer than the model's position table fails the throughput cell after the quality part was
    written: that variant is failed, and its quality rows must not be summarized or judged."""
    out = tmp_path / "failed-variant"
    code = run_cli("--out", str(out), "--set", f"cache_dir={session_cache}", "--set", "run_id=fail-one",
                   "--set", "reranker.variants=[torch-fp32]", "--set", "throughput.max_lengths=[2048]",
                   "--set", "stages=[first_stage, rerank]", "--set", "reranker.baselines=[]")
    assert code == 1
    runs = pd.read_parquet(out / "tables" / "runs.parquet")
    assert runs.set_index("stage")["status"].to_dict() == {"first_stage": "ok", "rerank": "failed"}
    assert (out / "tables" / "parts" / "quality--rerank--torch-fp32--cpu.parquet").is_file()  # written, then failed
    summary = pd.read_parquet(out / "tables" / "summary.parquet")
    quality = pd.read_parquet(out / "tables" / "quality.parquet")
    assert set(summary["system"]) == {"dense", "oracle"} and set(quality["system"]) == {"dense", "oracle"}


@pytest.mark.slow
def test_a_run_file_first_stage_reproduces_the_first_stage_that_wrote_it(tmp_path, session_cache):
    """A first stage computed elsewhere (bge-m3 on a GPU, say) comes in as a TREC run file per dataset."""
    dense = tmp_path / "dense"
    assert run_cli("--out", str(dense), "--set", "stages=[first_stage]", "--set", f"cache_dir={session_cache}",
                   "--set", "run_id=dense") == 0
    files = {label: dense / "runs" / label.replace(":", "-") / "first_stage.trec"
             for label in ("fixture:tiny", "fixture:multilingual")}
    reused = tmp_path / "reused"
    assert run_cli("--out", str(reused), "--set", "stages=[first_stage]", "--set", f"cache_dir={session_cache}",
                   "--set", "run_id=reused", "--set", "first_stage.kind=run",
                   "--set", "first_stage.run={" + ", ".join(f"'{k}': {v}" for k, v in files.items()) + "}") == 0
    before, after = (pd.read_parquet(b / "tables" / "quality.parquet") for b in (dense, reused))
    keys = ["dataset", "query_id", "measure"]
    merged = before.merge(after, on=keys, suffixes=("_dense", "_run"))
    assert len(merged) == len(before) and (merged["value_dense"] == merged["value_run"]).all()
    assert set(after["first_stage"]) == {"run:first_stage.trec"}


def test_a_run_file_of_another_dataset_fails_with_file_and_line(tmp_path, capsys):
    wrong = tmp_path / "other.trec"
    wrong.write_text("q01 Q0 d02 1 2.0 x\nq01 Q0 doc-from-elsewhere 2 1.0 x\n")
    out = tmp_path / "bundle"
    assert run_cli("--out", str(out), "--set", "dataset=fixture:tiny", "--set", "first_stage.kind=run",
                   "--set", f"first_stage.run={wrong}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other.trec:2: document 'doc-from-elsewhere' is not in the corpus" in err[0]
    assert not out.exists()
