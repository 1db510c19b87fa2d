"""The bundle digest an editor cites: one SHA-256 over every table's CSV, so a quoted number can be traced to
exactly one set of results (any changed row changes it) and checked later with ``runlocalai-bench cite``."""

from __future__ import annotations

import hashlib
from pathlib import Path

from runlocalai_bench.results.tables import TABLES


def tables_digest(bundle: Path) -> str:
    """``sha256:<hex>`` over ``tables/<name>.csv`` for every table, in table-name order (name, NUL, bytes)."""
    digest = hashlib.sha256()
    for name in sorted(TABLES):
        path = Path(bundle) / "tables" / f"{name}.csv"
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return f"sha256:{digest.hexdigest()}"
