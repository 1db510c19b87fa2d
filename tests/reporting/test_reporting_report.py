"""The smoke bundle's report and figures: complete, with skips and verdicts, byte-identical SVGs."""

import importlib.util

import pandas as pd
import pytest

from runlocalai_bench.reporting.figures import all_figures
from runlocalai_bench.reporting.report import load_tables
from support import llama_server_missing


FIGURES = {"quality_vs_speed", "lift_by_dataset", "depth_curve", "ndcg_by_variant", "lift_by_language", "lift_distribution",
           "throughput_by_variant", "latency_by_variant", "peak_memory", "mfu_by_variant"}


@pytest.mark.slow
def test_smoke_bundle_is_complete(smoke_bundle):
    for name in ("params.yaml", "environment.json", "bundle.json", "report.md", "report.html",
                 "runs/fixture-tiny/first_stage.trec", "runs/fixture-multilingual/rerank--torch-fp32--cpu.trec",
                 "notebooks/03_report.ipynb"):
        assert (smoke_bundle / name).is_file(), name
    for table in ("quality", "summary", "throughput", "drift", "runs"):
        assert (smoke_bundle / "tables" / f"{table}.parquet").is_file() and (smoke_bundle / "tables" / f"{table}.csv").is_file()
    served = set() if llama_server_missing() else {"server-llama-q4_k_m"}  # else a recorded skip
    figures = FIGURES | ({"load_curve"} if served else set())
    assert {p.stem for p in (smoke_bundle / "figures").glob("*.svg")} == figures
    assert {p.stem for p in (smoke_bundle / "figures").glob("*.png")} == figures
    runs = pd.read_parquet(smoke_bundle / "tables" / "runs.parquet")
    skipped = runs[runs["status"] == "skipped"]
    cuda_expected = 0 if __import__("torch").cuda.is_available() else 3
    assert len(skipped) >= cuda_expected and skipped["reason"].str.len().gt(0).all()
    summary = pd.read_parquet(smoke_bundle / "tables" / "summary.parquet")
    reranked = summary[(summary["system"] == "rerank") & (summary["measure"] == "nDCG@10")
                       & (summary["reranker"] == "twin:tiny-xlmr")]  # the comparison rerankers' rows are apart
    gguf = {"gguf-q4_k_m"} if importlib.util.find_spec("llama_cpp") else set()  # else a recorded skip
    assert set(reranked["variant"]) == {"torch-fp32", "torch-bf16", "onnx-int8"} | gguf | served
    assert reranked[["lift_abs", "lift_ci_low", "lift_ci_high", "p_value", "wins", "ties", "losses"]].notna().all().all()
    drift = pd.read_parquet(smoke_bundle / "tables" / "drift.parquet")
    assert set(drift["variant"]) == {"torch-bf16", "onnx-int8"} | gguf | served
    assert (drift["reference"] == "torch-fp32@cpu").all()
    load = pd.read_parquet(smoke_bundle / "tables" / "load.parquet")
    if served:  # the short sweep of smoke.yaml: two concurrencies and two Poisson rates per dataset
        assert set(load["variant"]) == served and (load["errors"] == 0).all()
        assert sorted(load.groupby("mode").size().items()) == [("closed", 4), ("open", 4)]
        assert (load["peak_rss_mb"] > 0).all() and (load["pairs_per_s"] > 0).all()
        throughput = pd.read_parquet(smoke_bundle / "tables" / "throughput.parquet")
        assert set(throughput[throughput["variant"] == "server-llama-q4_k_m"]["workload"]) == {"candidates", "query"}
    else:
        assert load.empty
    if not gguf:
        assert runs[runs["variant"] == "gguf-q4_k_m"]["reason"].str.contains("gguf' extra").all()
    report = (smoke_bundle / "report.md").read_text()
    assert "## Claims" in report and "Test model" in report and "skipped" in report
    assert ("## Served under load" in report) == bool(served)
    # The reranker is a test model, not bge-reranker-v2-m3: the verdicts say which filter found nothing.
    assert "— No matching run:" in report and "— Not tested on this hardware:" not in report
    assert "no row of tables/summary has reranker = BAAI/bge-reranker-v2-m3" in report
    # A figure that cannot be drawn says why in its place (the smoke run times one fixed length).
    assert "Not drawn: the fixed workload ran at fewer than two lengths" in report
    html = (smoke_bundle / "report.html").read_text()
    assert "<table>" in html and "figures/ndcg_by_variant.svg" not in html  # inlined, not linked


@pytest.mark.slow
def test_report_opens_with_the_headline(smoke_bundle):
    """The first section after the title is the headline: a summary paragraph and the table in human units,
    sorted by quality; the raw table is tables/headline, one row per dataset level, variant and device."""
    headline = pd.read_parquet(smoke_bundle / "tables" / "headline.parquet")
    level = headline[headline["level"]]
    assert set(level["dataset"]) == {"macro-average"}
    reranked = level[(level["system"] == "rerank") & (level["status"] == "ok")]
    assert list(reranked["ndcg10"]) == sorted(reranked["ndcg10"], reverse=True)
    assert (level["system"] == "first stage").sum() == 1
    skipped = level[level["status"] == "skipped"]
    assert len(skipped) >= 1 and skipped["reason"].str.len().gt(0).all()  # the smoke run skips cuda variants
    per_dataset = headline[~headline["level"]]
    assert set(per_dataset["dataset"]) == {"fixture:tiny", "fixture:multilingual"}
    report = (smoke_bundle / "report.md").read_text()
    sections = [line for line in report.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Headline" and sections[1] == "## Claims"
    opening = report[report.index("## Headline"):report.index("## Claims")]
    assert "Best quality:" in opening and "Fastest:" in opening and "Not measured:" in opening
    assert "e+0" not in opening and "pairs/s" in opening  # human units, never 1.954e+04
    for variant in reranked[~reranked["comparison"].astype(bool)]["variant"]:  # a comparison row names its model
        assert f"| {variant} |" in opening


@pytest.mark.slow
def test_report_html_is_self_contained(smoke_bundle):
    """One file: every drawn figure inlined as SVG (ids prefixed per figure, so two figures' glyphs never
    clash), no stylesheet, script, image or font fetched from anywhere, verdicts linked to their rows."""
    import re

    html = (smoke_bundle / "report.html").read_text()
    drawn = {p.stem for p in (smoke_bundle / "figures").glob("*.svg")}
    for figure in drawn:
        assert f"<figure id='figure-{figure}'>" in html and f"aria-label='{figure}'" in html
    assert html.count("<svg ") == len(drawn)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<script" not in html and "@import" not in html and "<link rel='stylesheet'" not in html
    ids = re.findall(r"""\bid=['"]([^'"]+)['"]""", html)
    assert len(ids) == len(set(ids)), "duplicate ids in report.html"
    for href in re.findall(r"""href=['"]#([^'"]+)['"]""", html):
        assert href in ids, f"link to #{href} has no target"
    assert "Cite this" in html and "sha256:" in html


@pytest.mark.slow
def test_figures_are_byte_identical_for_the_same_tables(smoke_bundle, tmp_path):
    tables = load_tables(smoke_bundle)
    first = all_figures(tables, tmp_path / "a", "footer", 1024.0)
    all_figures(tables, tmp_path / "b", "footer", 1024.0)
    for figure in (f for f in first if f.drawn):
        assert (tmp_path / "a" / f"{figure.id}.svg").read_bytes() == (tmp_path / "b" / f"{figure.id}.svg").read_bytes()


def test_lifts_and_baselines_stay_within_their_run():
    """Two pooled runs share query ids: run a lifts 0.5 -> 0.6, run b 0.8 -> 0.9. Aligning on the query id
    alone once turned a +0.10 lift into -0.10."""
    from runlocalai_bench.reporting.figures import _first_stage_means, per_query_lift

    rows = []
    for run_id, base in (("a", 0.5), ("b", 0.8)):
        for query_id in ("q1", "q2"):
            rows.append({"run_id": run_id, "dataset": "d", "system": "dense", "variant": None, "device": None,
                         "query_id": query_id, "measure": "nDCG@10", "value": base})
            rows.append({"run_id": run_id, "dataset": "d", "system": "rerank", "variant": "torch-fp32", "device": "cpu",
                         "query_id": query_id, "measure": "nDCG@10", "value": base + 0.1})
    lifts = per_query_lift(pd.DataFrame(rows))
    assert len(lifts) == 4 and lifts["lift"].round(6).eq(0.1).all()
    summary = pd.DataFrame([{"run_id": r, "dataset": "d", "system": s, "measure": "nDCG@10", "mean": m, "ci_low": m,
                             "ci_high": m} for r, s, m in (("a", "dense", 0.5), ("b", "dense", 0.8))])
    assert _first_stage_means(summary).set_index("run_id")["base"].to_dict() == {"a": 0.5, "b": 0.8}


@pytest.mark.slow
def test_executed_report_notebook_shows_the_report_inline(smoke_bundle):
    """A researcher opening the executed 03 notebook reads the headline, the verdicts and the figures there."""
    import nbformat

    notebook = nbformat.read(smoke_bundle / "notebooks" / "03_report.ipynb", as_version=4)
    shown = "".join(output.get("data", {}).get("text/html", "") if isinstance(output.get("data", {}).get("text/html"), str)
                    else "".join(output.get("data", {}).get("text/html", []))
                    for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", []))
    assert "id='headline-table'" in shown and "Best quality:" in shown
    assert "No matching run:" in shown and "sha256:" in shown
    drawn = {p.stem for p in (smoke_bundle / "figures").glob("*.svg")}
    assert shown.count("<svg ") == len(drawn)


@pytest.mark.slow
def test_the_report_cites_the_digest_of_the_finished_bundle(smoke_bundle, tmp_path):
    """After the run ended (the runner writes tables/runs last), `cite` recomputes the digest the report
    printed; a changed result table changes it (changed in a copy: other tests read the bundle meanwhile)."""
    import shutil

    from runlocalai_bench.cli import main
    from runlocalai_bench.results.digest import tables_digest

    digest = tables_digest(smoke_bundle)
    assert digest in (smoke_bundle / "report.html").read_text() and digest in (smoke_bundle / "report.md").read_text()
    assert main(["cite", str(smoke_bundle)]) == 0
    copy = tmp_path / "bundle"
    shutil.copytree(smoke_bundle, copy)
    assert tables_digest(copy) == digest
    csv = copy / "tables" / "headline.csv"
    csv.write_bytes(csv.read_bytes().replace(b"0.", b"0.9", 1))
    assert tables_digest(copy) != digest and main(["cite", str(copy)]) == 1
