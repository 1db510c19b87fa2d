"""Converted and quantized model files, written once per model fingerprint and reused by later runs.

Exports are built by a backend's ``prepare`` step in a process of their own (:func:`registry.prepare_exports`);
the process that loads and measures a variant reads finished files only. :func:`reading_only` enforces that: an
export missing at load time is an error, never a silent conversion inside the measured process.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from runlocalai_bench.models.refs import ModelRef
from runlocalai_bench.paths import publish_dir, staging_path

_READ_ONLY = [0]  # how many reading_only blocks are open (nested blocks stay read-only until the outermost ends)


class ExportMissing(RuntimeError):
    """A loader asked for an export that its backend's prepare step should have built."""


@contextmanager
def reading_only() -> Iterator[None]:
    """Inside this block building an export raises :class:`ExportMissing` (the measured process only reads)."""
    _READ_ONLY[0] += 1
    try:
        yield
    finally:
        _READ_ONLY[0] -= 1


def require_build(target: Path) -> None:
    """Call before building ``target``: refuses inside :func:`reading_only`."""
    if _READ_ONLY[0]:
        raise ExportMissing(f"{target} is missing at load time: exports are built by the backend's prepare step in "
                            "a process of their own, so the measured process never holds a second copy of the model")


def export_root(ref: ModelRef, cache_dir: Path) -> Path:
    """Where converted files of ``ref`` live: ``<cache>/exports/<model>-<fingerprint>/``."""
    slug = ref.spec.replace("/", "--").replace(":", "-")
    return Path(cache_dir) / "exports" / f"{slug}-{ref.fingerprint}"


def export_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Run ``build(staging)`` unless ``target`` exists; rename into place so a crash leaves no half export."""
    if target.is_dir():
        return target
    require_build(target)
    staging = staging_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    build(staging)
    return publish_dir(staging, target)
