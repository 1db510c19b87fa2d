"""Converted and quantized model files, written once per model fingerprint and reused by later runs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

from runlocalai_bench.models.refs import ModelRef


def export_root(ref: ModelRef, cache_dir: Path) -> Path:
    """Where converted files of ``ref`` live: ``<cache>/exports/<model>-<fingerprint>/``."""
    slug = ref.spec.replace("/", "--").replace(":", "-")
    return Path(cache_dir) / "exports" / f"{slug}-{ref.fingerprint}"


def export_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Run ``build(staging)`` unless ``target`` exists; rename into place so a crash leaves no half export."""
    if target.is_dir():
        return target
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    build(staging)
    staging.rename(target)
    return target
