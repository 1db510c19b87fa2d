"""The curated example bundle under results/published/ still matches the table contract it was made with."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from runlocalai_bench.results.tables import COLUMNS, SCHEMA_VERSION, TABLES, conform


PUBLISHED = sorted(p for p in (Path(__file__).resolve().parent.parent / "results" / "published").glob("*/bundle.json"))


def test_there_is_a_published_example():
    assert PUBLISHED, "results/published/<name>/ with a generated bundle is expected"


@pytest.mark.parametrize("manifest", PUBLISHED, ids=lambda p: p.parent.name)
def test_published_tables_follow_the_contract(manifest):
    bundle = manifest.parent
    assert json.loads(manifest.read_text())["schema_version"] == SCHEMA_VERSION
    for table, columns in COLUMNS.items():
        parquet, csv = bundle / "tables" / f"{table}.parquet", bundle / "tables" / f"{table}.csv"
        if not TABLES[table].always_written_since_v2 and not parquet.is_file():
            continue  # a table added after this bundle was made (tables/load): read as empty
        assert parquet.is_file() and csv.is_file(), table
        frame = pd.read_parquet(parquet)
        assert list(conform(table, frame).columns[: len(columns)]) == columns
        assert pd.read_csv(csv).shape == frame.shape
    for name in ("report.md", "report.html", "params.yaml"):
        assert (bundle / name).is_file()
    report = (bundle / "report.md").read_text()
    for figure in (bundle / "figures").glob("*.svg"):
        assert f"figures/{figure.name}" in report and figure.with_suffix(".png").is_file()
    html = (bundle / "report.html").read_text()
    assert html.count("<svg ") == len(list((bundle / "figures").glob("*.svg")))  # inlined, self-contained
    assert "## Headline" in report and "Cite this" in report


@pytest.mark.parametrize("manifest", PUBLISHED, ids=lambda p: p.parent.name)
def test_published_bundles_hold_no_absolute_path(manifest):
    """Nothing in a published bundle names a folder of the machine that made it (home, repository, Python
    environment, temp folders): text files are read whole, parquet tables cell by cell."""
    bundle = manifest.parent
    pattern = re.compile(r"(?<![\w.])/(home|root|tmp|work|Users|opt|usr|var|private|mnt)/")
    found = []
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            # Text columns are `str` (pyarrow) under pandas 3 and `object` before it: check both.
            text = "\n".join(str(v) for column in frame.columns
                             if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column])
                             for v in frame[column].dropna())
            assert text or frame.empty or not any(pd.api.types.is_string_dtype(frame[c]) for c in frame.columns)
        elif path.suffix in (".png",):
            continue
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
        match = pattern.search(text)
        if match:
            found.append(f"{path.relative_to(bundle)}: ...{text[max(match.start() - 40, 0):match.end() + 40]}...")
    assert found == []
