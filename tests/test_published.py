"""The curated example bundle under results/published/ still matches the table contract it was made with."""

import json
from pathlib import Path

import pandas as pd
import pytest

from runlocalai_bench.results.tables import COLUMNS, SCHEMA_VERSION, conform


PUBLISHED = sorted(p for p in (Path(__file__).resolve().parent.parent / "results" / "published").glob("*/bundle.json"))


def test_there_is_a_published_example():
    assert PUBLISHED, "results/published/<name>/ with a generated bundle is expected"


@pytest.mark.parametrize("manifest", PUBLISHED, ids=lambda p: p.parent.name)
def test_published_tables_follow_the_contract(manifest):
    bundle = manifest.parent
    assert json.loads(manifest.read_text())["schema_version"] == SCHEMA_VERSION
    for table, columns in COLUMNS.items():
        parquet, csv = bundle / "tables" / f"{table}.parquet", bundle / "tables" / f"{table}.csv"
        assert parquet.is_file() and csv.is_file(), table
        frame = pd.read_parquet(parquet)
        assert list(conform(table, frame).columns[: len(columns)]) == columns
        assert pd.read_csv(csv).shape == frame.shape
    for name in ("report.md", "report.html", "params.yaml"):
        assert (bundle / name).is_file()
    report = (bundle / "report.md").read_text()
    for figure in (bundle / "figures").glob("*.svg"):
        assert f"figures/{figure.name}" in report and figure.with_suffix(".png").is_file()
