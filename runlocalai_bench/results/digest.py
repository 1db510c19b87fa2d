"""The bundle digest an editor cites: one SHA-256 over the result tables' CSVs, so a quoted number can be traced
to exactly one set of results (any changed row changes it) and checked later with ``runlocalai-bench cite``.

``runs`` is left out: it is the execution log, and the runner writes it after the report (it records the
report execution itself, its seconds included), so no report could cite a digest that covered it. What it
says about results (which variants were skipped or failed, and why) is in ``headline``, which is covered."""

from __future__ import annotations

import hashlib
from pathlib import Path

from runlocalai_bench.results.tables import TABLES

NOT_DIGESTED = ("runs",)


def tables_digest(bundle: Path) -> str:
    """``sha256:<hex>`` over ``tables/<name>.csv`` for every table but ``runs``, in table-name order (name, NUL,
    bytes)."""
    digest = hashlib.sha256()
    for name in sorted(set(TABLES) - set(NOT_DIGESTED)):
        path = Path(bundle) / "tables" / f"{name}.csv"
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()}"
