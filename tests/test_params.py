from pathlib import Path

import pytest

import yaml

from runlocalai_bench.params import ParamsError, apply_overrides, dump_params, load_params, parse_override


REPO = Path(__file__).resolve().parent.parent


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["smoke.yaml", "default.yaml", "cpu.yaml", "baai-beir.yaml", "rerankers.yaml"])
def test_shipped_params_validate(name):
    params = load_params(REPO / "params" / name)
    assert params.reranker.variants


def test_unknown_key_names_file_key_and_accepted_keys(tmp_path):
    path = write(tmp_path, "dataset: fixture:tiny\nfirst_stage:\n  modle: x\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    message = str(err.value)
    assert str(path) in message and "'first_stage.modle'" in message
    assert "accepted keys here: kind, model" in message


def test_wrong_type(tmp_path):
    with pytest.raises(ParamsError, match=r"key 'queries.n'.*integer"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nqueries: {n: lots}\n"))


def test_unknown_variant_lists_accepted(tmp_path):
    with pytest.raises(ParamsError, match=r"reranker.variants\[1\].*'torch-fp64' is not a known variant; accepted: torch-fp32"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nreranker: {variants: [torch-fp32, torch-fp64]}\n"))


def test_unknown_device(tmp_path):
    with pytest.raises(ParamsError, match=r"reranker.devices\[0\].*'gpu' is not a device; accepted: auto, cpu"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nreranker: {devices: [gpu]}\n"))


@pytest.mark.parametrize("spec, fragment", [
    ("fixture:huge", "unknown fixture 'huge'; accepted: fixture:multilingual, fixture:tiny"),
    ("./no/such/folder", "is not a folder"),
    ("beir/nosuchset/test", "neither an ir_datasets id"),
])
def test_unknown_dataset_form(tmp_path, spec, fragment):
    with pytest.raises(ParamsError, match="key 'dataset'") as err:
        load_params(write(tmp_path, f"dataset: {spec}\n"))
    assert fragment in str(err.value)


def test_folder_without_corpus(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParamsError, match="no corpus.jsonl or corpus.jsonl.gz"):
        load_params(write(tmp_path, f"dataset: {tmp_path / 'empty'}\n"))


def test_rerank_depth_cannot_exceed_first_stage_depth(tmp_path):
    with pytest.raises(ParamsError, match=r"reranker.depth \(50\) exceeds first_stage.depth \(20\)"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nfirst_stage: {depth: 20}\nreranker: {depth: 50}\n"))


def test_stages_order_and_dependencies(tmp_path):
    with pytest.raises(ParamsError, match="in that order"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nstages: [rerank, first_stage]\n"))
    with pytest.raises(ParamsError, match="add 'first_stage'"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nstages: [rerank]\n"))


def test_overrides_keep_yaml_types(tmp_path):
    params = load_params(write(tmp_path, "dataset: fixture:tiny\n"), [
        "queries.n=5", "reranker.variants=[torch-fp32, onnx-fp32]", "first_stage.revision=null", "run_id=abc",
    ])
    assert params.queries.n == 5 and params.reranker.variants == ["torch-fp32", "onnx-fp32"]
    assert params.first_stage.revision is None and params.run_id == "abc"


def test_override_errors_name_the_set_flag(tmp_path):
    with pytest.raises(ParamsError, match=r"--set queries.count=3\).*unknown key 'queries.count'"):
        load_params(write(tmp_path, "dataset: fixture:tiny\n"), ["queries.count=3"])
    with pytest.raises(ParamsError, match="expected key=value"):
        parse_override("queries.n")
    with pytest.raises(ParamsError, match="holds a value"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_invalid_yaml_names_line(tmp_path):
    with pytest.raises(ParamsError, match=r"p.yaml: line 3 not valid YAML"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nqueries: {n: [\n"))


@pytest.mark.parametrize("entry, fragment", [
    ("{onnx-int8: m.gguf}", "'onnx-int8' is not a GGUF variant; accepted keys: gguf-f16, gguf-q8_0, gguf-q4_k_m"),
    ("{gguf-q8_0: model.bin}", "gguf-q8_0: 'model.bin' is not a .gguf file"),
    ("{gguf-q9: m.gguf}", "'gguf-q9' is not a known variant"),
])
def test_gguf_files_name_a_gguf_variant_and_a_gguf_file(tmp_path, entry, fragment):
    with pytest.raises(ParamsError, match="reranker.gguf_files") as err:
        load_params(write(tmp_path, f"dataset: fixture:tiny\nreranker: {{gguf_files: {entry}}}\n"))
    assert fragment in str(err.value)


def test_datasets_list_and_its_one_item_shorthand(tmp_path):
    several = load_params(write(tmp_path, "datasets: [fixture:tiny, fixture:multilingual]\n"))
    assert [d.label for d in several.datasets] == ["fixture:tiny", "fixture:multilingual"]
    one = load_params(write(tmp_path, "dataset: fixture:tiny\n"))
    assert [d.label for d in one.datasets] == ["fixture:tiny"] and one.dataset is None
    with pytest.raises(ParamsError, match="give `dataset` \\(one\\) or `datasets` \\(a list\\), not both"):
        load_params(write(tmp_path, "dataset: fixture:tiny\ndatasets: [fixture:tiny]\n"))
    with pytest.raises(ParamsError, match="datasets repeat"):
        load_params(write(tmp_path, "datasets: [fixture:tiny, fixture:tiny]\n"))
    # --set dataset=X replaces a file's list (the shorthand the README's commands use), and the other way round
    swapped = load_params(write(tmp_path, "datasets: [fixture:tiny, fixture:multilingual]\n"), ["dataset=fixture:tiny"])
    assert [d.label for d in swapped.datasets] == ["fixture:tiny"]
    assert "dataset" not in yaml.safe_load(dump_params(swapped))  # the bundle stores the list only


def test_depth_curve_is_capped_at_the_reranked_depth(tmp_path):
    params = load_params(write(tmp_path, "dataset: fixture:tiny\nfirst_stage: {depth: 30}\n"
                                         "reranker: {depth: 25, depth_curve: [5, 10, 50]}\n"))
    assert params.depth_curve == [5, 10, 25]


def test_a_run_file_first_stage_needs_its_file(tmp_path):
    with pytest.raises(ParamsError, match="kind 'run' needs first_stage.run"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nfirst_stage: {kind: run}\n"))
    with pytest.raises(ParamsError, match="scoreddocs.*fixture:tiny has none"):
        load_params(write(tmp_path, "dataset: fixture:tiny\nfirst_stage: {kind: scoreddocs}\n"))


def test_timed_datasets_follow_the_run_and_name_what_they_accept():
    from runlocalai_bench.params import load_params

    assert load_params(REPO / "params" / "default.yaml").timed_datasets == ["beir/scifact/test"]
    # `first` follows --set dataset=: a BEIR folder in place of the ir_datasets id still gets timed
    assert load_params(REPO / "params" / "default.yaml", ["dataset=fixture:tiny"]).timed_datasets == ["fixture:tiny"]
    assert load_params(REPO / "params" / "smoke.yaml").timed_datasets is None
    with pytest.raises(ParamsError, match="throughput.datasets: beir/fiqa/test is not a dataset of this run"):
        load_params(REPO / "params" / "smoke.yaml", ["throughput.datasets=[beir/fiqa/test]"])
