"""The online path, rehearsed on loopback: ``runlocalai-bench run params/default.yaml`` against a real Hugging
Face mirror (olah) serving tiny repositories under the real names, and ir_datasets' real loader on a pre-seeded
``source.zip``; then the same command offline on the same caches, and the one-line errors.

What it does not cover: the real hub's Xet storage and rate limits, gated repositories and tokens, the real
BEIR download server and its md5 check (a file under ``downloads/`` is checked, a pre-seeded ``source.zip``
is not), and weights of the real size.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hub_mirror import OLAH_CLI, OlahServer, commit_repository, seed_olah_cache
from runlocalai_bench.models.resolve import resolve
from support import REPO

pytestmark = [pytest.mark.slow, pytest.mark.rehearsal]
needs_olah = pytest.mark.skipif(not OLAH_CLI.is_file(), reason=f"olah is not installed at {OLAH_CLI} (make test installs it)")
EMBEDDER, RERANKER = "BAAI/bge-m3", "BAAI/bge-reranker-v2-m3"
# default.yaml's comparison rerankers, served as tiny checkpoints of their architectures (XLM-R and BERT).
BASELINES = {"BAAI/bge-reranker-large": "twin:tiny-xlmr", "cross-encoder/ms-marco-MiniLM-L-12-v2": "twin:tiny-bert"}
MISSING_REVISION = "0123456789abcdef0123456789abcdef01234567"


def build_embedder(tiny_xlmr_folder: Path, target: Path) -> None:
    """A sentence-transformers model with the files a hub snapshot of bge-m3 has (modules.json, the pooling
    config, tokenizer files, safetensors): an XLM-R encoder, CLS pooling, normalisation."""
    from sentence_transformers import SentenceTransformer, models

    encoder = models.Transformer(str(tiny_xlmr_folder), max_seq_length=64)
    pooling = models.Pooling(encoder.get_embedding_dimension(), pooling_mode="cls")
    SentenceTransformer(modules=[encoder, pooling, models.Normalize()], device="cpu").save(str(target))


def seed_ir_datasets(home: Path) -> None:
    """``$IR_DATASETS_HOME/beir/scifact/source.zip`` in BEIR's layout, built from the shipped fixture: ir_datasets
    reads it as if it had downloaded it (the md5 is checked only for files under ``downloads/``)."""
    from runlocalai_bench.data.specs import FIXTURES_DIR

    target = home / "beir" / "scifact" / "source.zip"
    target.parent.mkdir(parents=True)
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted((FIXTURES_DIR / "tiny").rglob("*")):
            if path.is_file() and path.name != "README.md":
                archive.write(path, f"scifact/{path.relative_to(FIXTURES_DIR / 'tiny')}")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory, tiny_xlmr, session_cache):
    root = tmp_path_factory.mktemp("mirror")
    files = root / "files"
    build_embedder(Path(tiny_xlmr.location), files / EMBEDDER)
    sources = {RERANKER: Path(tiny_xlmr.location)}
    sources.update({repo: Path(resolve(twin, None, session_cache).location) for repo, twin in BASELINES.items()})
    for repo_id, source in sources.items():
        (files / repo_id).mkdir(parents=True)
        for path in source.iterdir():
            if path.is_file() and path.name != "runlocalai_twin.json":
                (files / repo_id / path.name).write_bytes(path.read_bytes())
    server = OlahServer(root)
    shas = {}
    for repo_id in (EMBEDDER, RERANKER, *BASELINES):
        shas[repo_id] = commit_repository(files / repo_id, server.mirrors, repo_id)
        seed_olah_cache(server.repos, repo_id, shas[repo_id])
    server.start()
    try:
        yield server, shas
    finally:
        server.stop()


@pytest.fixture
def live_mirror(mirror):
    """The module's mirror, answering: a test before this one may have stopped it to prove an offline run."""
    server, shas = mirror
    if not server.running():
        server.start()
    return server, shas


def environment(home: Path, endpoint: str | None, offline: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_HOME", "RUNLOCALAI_BENCH_CACHE"}}
    env.update(HF_HOME=str(home / "hf"), IR_DATASETS_HOME=str(home / "ir_datasets"),
               RUNLOCALAI_BENCH_CACHE=str(home / "cache"), HF_HUB_DISABLE_TELEMETRY="1")
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    if offline:
        env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def run_default(out: Path, env: dict[str, str], *overrides: str) -> subprocess.CompletedProcess:
    variants = "[torch-fp32, gguf-q8_0]" if importlib.util.find_spec("llama_cpp") else "[torch-fp32]"
    settings = ["dataset=beir/scifact/test", "queries.n=5", "first_stage.depth=10", "first_stage.max_length=64",
                "first_stage.batch_size=8", "first_stage.device=cpu", "reranker.depth=5", "reranker.max_length=64",
                "reranker.batch_size=4", f"reranker.variants={variants}", "reranker.devices=[cpu]",
                "throughput.warmup_rounds=0", "throughput.min_seconds=0", "throughput.min_rounds=3",
                "throughput.max_pairs=8", "throughput.batch_sizes=[2]", "throughput.max_lengths=[32]",
                "bootstrap_samples=200", *overrides]
    command = [sys.executable, "-m", "runlocalai_bench.cli", "run", str(REPO / "params" / "default.yaml"),
               "--out", str(out)] + [arg for s in settings for arg in ("--set", s)]
    return subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO, timeout=600)


def revisions(bundle: Path) -> dict[str, str]:
    stages = {p.stem: json.loads(p.read_text()) for p in (bundle / "stages").glob("*.json")}
    found = {EMBEDDER: stages["first_stage"]["model"]["revision"]}
    for name, meta in stages.items():
        if meta.get("stage") == "rerank" and meta.get("status") == "ok":
            found[f"{meta['reranker']} ({meta['variant']})"] = meta["model"]["revision"]
    return found


@needs_olah
def test_online_then_offline_on_the_same_caches(mirror, tmp_path):
    server, shas = mirror
    seed_ir_datasets(tmp_path / "ir_datasets")

    online = run_default(tmp_path / "online", environment(tmp_path, server.endpoint, offline=False))
    assert online.returncode == 0, online.stderr[-3000:]
    first = json.loads((tmp_path / "online" / "stages" / "first_stage.json").read_text())
    assert first["datasets"][0]["source"] == "ir_datasets:beir/scifact/test"
    online_revisions = revisions(tmp_path / "online")
    assert online_revisions[EMBEDDER] == shas[EMBEDDER]
    for repo_id in (RERANKER, *BASELINES):  # the comparison rerankers come from the hub the same way
        reranked = {k: v for k, v in online_revisions.items() if k.startswith(repo_id + " (")}
        assert reranked and set(reranked.values()) == {shas[repo_id]}, (repo_id, online_revisions)
    for repo_id in (EMBEDDER, RERANKER, *BASELINES):  # the branch is recorded, so an offline run can find it
        ref = tmp_path / "hf" / "hub" / f"models--{repo_id.replace('/', '--')}" / "refs" / "main"
        assert ref.read_text() == shas[repo_id]

    pinned = run_default(tmp_path / "pinned", environment(tmp_path, server.endpoint, offline=False),
                         f"reranker.revision={MISSING_REVISION}")
    errors = [line for line in pinned.stderr.splitlines() if line.startswith("runlocalai-bench:")]
    assert pinned.returncode == 2 and len(errors) == 1, pinned.stderr[-2000:]
    assert "reranker.model" in errors[0] and RERANKER in errors[0] and MISSING_REVISION in errors[0]
    assert not (tmp_path / "pinned").exists()

    server.stop()  # the second run must not need the network at all
    # Every repository again (the embedder, the reranker, both comparison rerankers), from the caches alone; one
    # variant and no report: what is resolved offline is the same for the others.
    offline = run_default(tmp_path / "offline", environment(tmp_path, None, offline=True),
                          "reranker.variants=[torch-fp32]", "stages=[first_stage, rerank]")
    assert offline.returncode == 0, offline.stderr[-3000:]
    offline_revisions = revisions(tmp_path / "offline")
    assert offline_revisions == {k: v for k, v in online_revisions.items() if k in offline_revisions}
    assert EMBEDDER in offline_revisions and all(any(k.startswith(repo_id + " (") for k in offline_revisions)
                                                 for repo_id in (RERANKER, *BASELINES)), offline_revisions


def test_offline_with_nothing_cached_says_what_to_do(tmp_path):
    seed_ir_datasets(tmp_path / "ir_datasets")
    done = run_default(tmp_path / "bundle", environment(tmp_path, None, offline=True))
    errors = [line for line in done.stderr.splitlines() if line.startswith("runlocalai-bench:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert EMBEDDER in errors[0] and "HF_HUB_OFFLINE=1" in errors[0] and "make smoke" in errors[0]
    assert not (tmp_path / "bundle").exists()


@needs_olah
def test_default_yaml_datasets_by_their_protocols_through_ir_datasets(live_mirror, tmp_path):
    """params/default.yaml's exact dataset list, read by ir_datasets' own loaders from look-alikes that carry each
    dataset's quirks (tests/lookalikes.py), run to a complete bundle with tiny models served under the real
    names; every protocol rule is asserted on what the run wrote."""
    import ir_measures
    import pandas as pd

    from lookalikes import write_lookalikes
    from runlocalai_bench.data.trec import read_trec

    server, _ = live_mirror
    made = write_lookalikes(tmp_path / "ir_datasets")
    variants = "[torch-fp32, openvino-int8]" if importlib.util.find_spec("openvino") else "[torch-fp32]"
    settings = ["queries.n=null", "first_stage.depth=10", "first_stage.max_length=64", "first_stage.batch_size=16",
                "first_stage.device=cpu", "reranker.depth=5", "reranker.max_length=64", "reranker.batch_size=8",
                f"reranker.variants={variants}", "reranker.devices=[cpu]", "reranker.baselines=[]",
                "throughput.enabled=false", "bootstrap_samples=200"]
    command = [sys.executable, "-m", "runlocalai_bench.cli", "run", str(REPO / "params" / "default.yaml"),
               "--out", str(tmp_path / "bundle")] + [arg for s in settings for arg in ("--set", s)]
    done = subprocess.run(command, env=environment(tmp_path, server.endpoint, offline=False), capture_output=True,
                          text=True, cwd=REPO, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    bundle = tmp_path / "bundle"
    first = json.loads((bundle / "stages" / "first_stage.json").read_text())
    records = {d["spec"]: d for d in first["datasets"]}
    assert sorted(records) == sorted(made)
    quality = pd.read_parquet(bundle / "tables" / "quality.parquet")
    for dataset_id, look in made.items():
        record, slug = records[dataset_id], dataset_id.replace("/", "-")
        run = read_trec(bundle / "runs" / slug / "first_stage.trec")
        expected_split = "dev" if dataset_id.startswith("miracl/") else "test"
        assert record["split"] == expected_split and set(quality.loc[quality["dataset"] == dataset_id, "split"]) == {expected_split}
        # every judged query is evaluated, those judged only non-relevant and those with missing documents too
        assert set(run) == set(look.qrels[expected_split]), dataset_id
        ignores = dataset_id.startswith(("beir/arguana", "beir/fiqa"))
        assert record["protocol"]["ignore_identical_ids"] is ignores
        for query_id, docs in run.items():
            ids = [d for d, _ in docs]
            if ignores:  # the query itself never a candidate, and still `depth` of them
                assert query_id not in ids and len(ids) == min(10, len(look.docs) - (query_id in look.docs))
        if look.self_ids and ignores:
            assert record["identical_ids_dropped"] >= 1
        if look.relevant_self_id:  # MIRACL keeps a relevant passage whose id equals the query's
            assert look.relevant_self_id in [d for d, _ in run[look.relevant_self_id]]
    arguana = records["beir/arguana"]["missing_judged_documents"]
    assert arguana["count"] == len(made["beir/arguana"].missing) and arguana["best_ndcg10_mean"] < 1
    # a judgment on a missing document evaluates exactly like pytrec_eval on the same run file
    qrels = [ir_measures.Qrel(q, d, g) for q, docs in made["beir/arguana"].qrels["test"].items() for d, g in docs.items()]
    reference = {m.query_id: m.value for m in ir_measures.iter_calc(
        [ir_measures.nDCG @ 10], qrels, ir_measures.read_trec_run(str(bundle / "runs" / "beir-arguana" / "first_stage.trec")))}
    ours = quality[(quality["dataset"] == "beir/arguana") & (quality["system"] == "dense") & (quality["measure"] == "nDCG@10")]
    assert dict(zip(ours["query_id"], ours["value"])) == pytest.approx(reference)
    zero = made["beir/scifact/test"].zero_positive[0]
    assert records["beir/scifact/test"]["n_zero_positive_queries"] == 1
    assert zero in set(quality.loc[quality["dataset"] == "beir/scifact/test", "query_id"])
    assert records["beir/scidocs"]["duplicate_doc_ids"]["count"] == 1
    if "openvino-int8" in variants:  # the only calibrated variant: without it no calibration source is chosen
        calibration = {k: v["calibration"] for k, v in records.items()}
        assert calibration["beir/scifact/test"] == {
            "kind": "train split", "source": "ir_datasets:beir/scifact/train", "excluded_as_evaluated": 1,
            "n_queries": len(made["beir/scifact/test"].queries["train"]) - 1}  # the repeated test query left out
        texts = json.loads((bundle / "runs" / "beir-scifact-test" / "calibration.queries.json").read_text())["queries"]
        assert made["beir/scifact/test"].repeated not in texts
        sw = json.loads((bundle / "runs" / "miracl-sw-dev" / "calibration.queries.json").read_text())["queries"]
        assert f"calibration:{made['miracl/sw/dev'].clashing}" in sw  # renamed, never mistaken for the dev query
        assert set(read_trec(bundle / "runs" / "miracl-sw-dev" / "calibration.trec")) == set(sw)
        assert calibration["beir/arguana"]["kind"] == "other datasets of the run"
        assert calibration["miracl/yo/dev"]["kind"] == "other datasets of the run"
        stage = json.loads((bundle / "stages" / "rerank--openvino-int8--cpu.json").read_text())
        assert stage["status"] == "ok" and stage["calibration"]["pairs"] > 0
        assert "beir/scifact/train" in stage["calibration"]["summary"]
    report = (bundle / "report.md").read_text()
    assert "## Reproduction" in report and "Evaluation protocol per dataset" in report
    assert "not in the corpus" in report and "ignore_identical_ids" in report
    reproduction = pd.read_parquet(bundle / "tables" / "reproduction.parquet")
    # the tiny model is served as BAAI/bge-m3: its rows meet MTEB's bge-m3 numbers, on a sample of each query set
    assert set(reproduction["dataset"]) >= {"beir/scifact/test", "beir/arguana", "miracl/yo/dev"}
    assert reproduction["differences"].str.contains("of the reference's").all()
