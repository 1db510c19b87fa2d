"""What a dataset will download before it can run, from ir_datasets' own download registry.

ir_datasets ships ``etc/downloads.json``: per dataset family, every file it fetches with its URL and a
``size_hint`` in bytes (the archive's size). Reading it needs no network, so a plan can say how many GB a run
will fetch before anything is fetched. The mapping from a dataset id to its files follows the families'
layouts: a BEIR dataset is one archive (``beir/<name>``, ``beir/cqadupstack/<name>``); a MIRACL language is its
corpus parts plus the split's topics and qrels. Ids of other families are "size unknown" rather than a guess.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from runlocalai_bench.data.specs import DatasetKind, DatasetSpec


@lru_cache(maxsize=1)
def _registry() -> dict:
    import ir_datasets  # the registry file sits in the package

    return json.loads((Path(ir_datasets.__file__).parent / "etc" / "downloads.json").read_text(encoding="utf-8"))


def _home() -> Path:
    import ir_datasets

    return Path(ir_datasets.util.home_path())


def download_bytes(spec: DatasetSpec) -> tuple[int | None, str]:
    """(bytes still to download, how it was found) for ``spec``: 0 for a local folder or fixture and for files
    already in ir_datasets' home; None when the registry has no entry the id maps to."""
    if spec.kind is not DatasetKind.IR_DATASETS:
        return 0, "local"
    parts = spec.text.split("/")
    registry = _registry()
    family = parts[0]
    if family == "beir" and len(parts) >= 2:
        name = "/".join(parts[1:3]) if parts[1] == "cqadupstack" else parts[1]
        entries = [registry.get("beir", {}).get(name)]
    elif family == "miracl" and len(parts) >= 3:
        language, split = parts[1], parts[2]
        files = registry.get("miracl", {})
        entries = [v for k, v in files.items()
                   if k.startswith(f"v1.0/{language}/corpus/") or k in (f"v1.0/{language}/{split}/topics",
                                                                        f"v1.0/{language}/{split}/qrels")]
    else:
        return None, f"no entry for {spec.text} in ir_datasets' download registry"
    if not entries or any(e is None or "size_hint" not in e for e in entries):
        return None, f"no size in ir_datasets' download registry for {spec.text}"
    home = _home() / family
    missing = [e for e in entries if not (home / e.get("cache_path", "")).is_file()]
    return sum(int(e["size_hint"]) for e in missing), "ir_datasets download registry (size_hint)"
