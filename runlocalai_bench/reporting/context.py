"""Published context: other sources' comparisons of the run's rerankers, shown beside the run's own.

``params/references/context/*.yaml`` hold published tables in which the run's rerankers were compared on
*other* candidates and benchmarks (Qwen3's README, jina-reranker-v3's card). They are not reproduction targets
(reporting/reproduction.py holds those: same dataset, same first stage): a different first stage and benchmark
mix is exactly why published rankings disagree. The report lists the rows naming a reranker of the run, with
each table's setup, next to the run's paired comparisons on identical candidates.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runlocalai_bench.params import ParamsError, format_validation_error

CONTEXT_FOLDER = "context"
COLUMNS = ["reranker", "benchmark", "published", "setup", "source", "file", "note"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextRow(_Strict):
    reranker: str
    benchmark: str
    value: float = Field(description="as published (nDCG@10 in percent)")


class ContextTable(_Strict):
    source: str
    setup: str = Field(description="first stage, depth and benchmarks: what makes it context, not a target")
    rows: list[ContextRow] = Field(min_length=1)


class ContextFile(_Strict):
    note: str = Field(default="", description="how the figures were transcribed, and what to check before citing")
    tables: list[ContextTable] = Field(min_length=1)


def load_context(references: Path | None) -> dict[str, ContextFile]:
    """Every context file (by name) in ``<references>/context/``; a malformed one is an error naming its key."""
    if references is None or not references.is_dir() or not (references / CONTEXT_FOLDER).is_dir():
        return {}
    loaded = {}
    for file in sorted((references / CONTEXT_FOLDER).glob("*.yaml")):
        try:
            loaded[file.name] = ContextFile.model_validate(yaml.safe_load(file.read_text(encoding="utf-8")))
        except ValidationError as exc:
            raise ParamsError(format_validation_error(str(file), exc, ContextFile)) from None
    return loaded


def context_rows(files: dict[str, ContextFile], rerankers: set[str]) -> pd.DataFrame:
    """The published rows of every table that names at least one of ``rerankers`` (the whole table, so each
    row keeps its peers from the same setup)."""
    out = []
    for name, file in files.items():
        for table in file.tables:
            if not {row.reranker for row in table.rows} & rerankers:
                continue
            out += [{"reranker": row.reranker, "benchmark": row.benchmark, "published": row.value,
                     "setup": table.setup, "source": table.source, "file": name, "note": file.note}
                    for row in table.rows]
    return pd.DataFrame(out, columns=COLUMNS)


def keep_context_files(references: Path | None, used: set[str], bundle_root: Path) -> None:
    """Copy the context files a report showed into ``<bundle>/references/context/``."""
    if references is None or not used:
        return
    target = bundle_root / "references" / CONTEXT_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    for name in sorted(used):
        shutil.copyfile(references / CONTEXT_FOLDER / name, target / name)
