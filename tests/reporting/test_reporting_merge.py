"""Pooling bundles from several machines; refusing the same run twice and other schema versions."""

import json
import shutil

import pandas as pd
import pytest

from runlocalai_bench.cli import main
from runlocalai_bench.reporting.merge import merge_bundles
from runlocalai_bench.results.tables import BundleError


@pytest.mark.slow
def test_merge_pools_bundles_and_refuses_bad_ones(smoke_bundle, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(smoke_bundle, other)
    info = json.loads((other / "bundle.json").read_text())
    (other / "bundle.json").write_text(json.dumps({**info, "run_id": "smoke-b"}))
    for table in ("quality", "summary", "throughput", "drift", "runs"):
        frame = pd.read_parquet(other / "tables" / f"{table}.parquet").assign(run_id="smoke-b")
        frame.to_parquet(other / "tables" / f"{table}.parquet", index=False)
    merged = merge_bundles([smoke_bundle, other], tmp_path / "merged")
    throughput = pd.read_parquet(merged / "tables" / "throughput.parquet")
    assert set(throughput["run_id"]) == {"smoke-a", "smoke-b"}
    assert {p.stem for p in (merged / "environments").glob("*.json")} == {"smoke-a", "smoke-b"}
    assert (merged / "report.html").is_file()
    with pytest.raises(BundleError, match="same run twice"):
        merge_bundles([smoke_bundle, smoke_bundle], tmp_path / "twice")
    (other / "bundle.json").write_text(json.dumps({**info, "run_id": "smoke-c", "schema_version": 99}))
    assert main(["merge", str(smoke_bundle), str(other), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))
