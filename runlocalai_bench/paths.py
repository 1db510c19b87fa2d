"""Local paths and what a bundle may say about them.

A bundle travels (it is zipped and sent, pooled, published), so it must not hold an absolute path of the
machine that made it: user and folder names leak, and the path means nothing elsewhere. Paths the parameters
need (a BEIR folder, a model folder, a GGUF file, a claims file) are stored relative to the repository root
(``./params/x.yaml``, ``../data/scifact``) and resolved against it when a bundle is read; anything else that
ends up in text (a cache folder in a log line, a site-packages path in a traceback) is rewritten to a
placeholder by :func:`scrub`.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PORTABLE_PREFIXES = ("./", "../")


def portable(path: str | Path) -> str:
    """An absolute path as a path relative to the repository root, always starting ``./`` or ``../`` (so it is
    never mistaken for a hub id); other values unchanged."""
    text = str(path)
    if not os.path.isabs(text):
        return text
    relative = os.path.relpath(text, REPO_ROOT)
    return relative if relative.startswith("..") else f"./{relative}"


def localize(text: str) -> str:
    """The absolute path of a :func:`portable` path; other values unchanged."""
    if text.startswith(PORTABLE_PREFIXES):
        return str((REPO_ROOT / text).resolve())
    return text


def references_path(setting: str | None) -> Path | None:
    """The folder or file the ``references`` parameter names (relative to the repository, whatever the working
    directory: kernels run elsewhere), or None when disabled."""
    if not setting:
        return None
    path = Path(localize(setting))
    return path if path.is_absolute() else REPO_ROOT / path


def _roots(extra: dict[str, str] | None) -> list[tuple[str, str]]:
    roots = {str(REPO_ROOT): ".", str(REPO_ROOT.parent): "..", sys.prefix: "<python env>",
             sys.base_prefix: "<python>", tempfile.gettempdir(): "<tmp>", os.path.expanduser("~"): "~"}
    cache = os.environ.get("RUNLOCALAI_BENCH_CACHE")
    if cache:
        roots[os.path.abspath(cache)] = "<cache>"
    roots.update(extra or {})
    # Longest first, so a cache inside the home folder becomes <cache>, not ~/.cache/...
    return sorted(((k, v) for k, v in roots.items() if k and k != "/"), key=lambda kv: -len(kv[0]))


def scrub(text: str, extra: dict[str, str] | None = None) -> str:
    """``text`` with every absolute path under a known root (repository, its parent, the Python environment,
    the temp folder, the home folder, the run's cache, ``extra``) replaced by a placeholder."""
    for root, placeholder in _roots(extra):
        text = re.sub(re.escape(root) + r"(?=/|\b|$)", placeholder, text)
    return text


def staging_path(target: Path) -> Path:
    """A private name beside ``target`` to build it under: unique per process, so two executions building the
    same cached artefact at once (two Ray nodes on one machine, or sharing one cache folder) never write into
    one folder."""
    return target.with_name(f"{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")  # pids repeat across machines


def publish_dir(staging: Path, target: Path) -> Path:
    """Rename a built folder into place; when another process published the same build first, keep theirs."""
    try:
        staging.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    return target
