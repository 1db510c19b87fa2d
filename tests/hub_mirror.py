"""A real Hugging Face mirror on loopback for the online rehearsal: olah serving git repositories built here.

olah (PyPI ``olah``) runs in its own virtualenv (it needs a newer huggingface_hub than this project pins);
``make test`` creates it at ``.venv/olah``. In offline mode it serves repositories from its ``mirrors-path``
(``<mirrors>/models/<org>/<name>``, git repositories whose large files are git-LFS pointers with the objects
under ``.git/lfs/objects``), and answers ``GET /api/models/<id>`` and branch lookups only once two small files
per repository sit in its ``repos-path`` cache (measured with olah 0.5.4; see :func:`seed_olah_cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from support import REPO

OLAH_CLI = Path(os.environ.get("RUNLOCALAI_BENCH_OLAH") or REPO / ".venv" / "olah" / "bin" / "olah-cli")
GIT_ENV = {"GIT_AUTHOR_NAME": "runlocalai-bench tests", "GIT_AUTHOR_EMAIL": "tests@localhost",
           "GIT_COMMITTER_NAME": "runlocalai-bench tests", "GIT_COMMITTER_EMAIL": "tests@localhost",
           "GIT_AUTHOR_DATE": "2026-11-26T00:00:00Z", "GIT_COMMITTER_DATE": "2026-11-26T00:00:00Z"}
LFS_SUFFIXES = (".safetensors", ".bin", ".model")


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def commit_repository(files: Path, mirrors: Path, repo_id: str) -> str:
    """Copy ``files`` into a git repository at ``<mirrors>/models/<repo_id>``, large files as LFS pointers;
    return the commit sha (what the hub reports as the model's revision)."""
    repo = mirrors / "models" / repo_id
    shutil.copytree(files, repo)
    _git("init", "-q", "-b", "main", ".", cwd=repo)
    patterns = []
    for path in sorted(p for p in repo.rglob("*") if p.is_file() and p.suffix in LFS_SUFFIXES and ".git" not in p.parts):
        data = path.read_bytes()
        oid = hashlib.sha256(data).hexdigest()
        obj = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
        obj.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(data)
        path.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n")
        patterns.append(f"*{path.suffix} filter=lfs diff=lfs merge=lfs -text")
    (repo / ".gitattributes").write_text("\n".join(sorted(set(patterns))) + "\n")
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", f"{repo_id} built for the online rehearsal", cwd=repo)
    return _git("rev-parse", "HEAD", cwd=repo)


def seed_olah_cache(repos: Path, repo_id: str, sha: str) -> None:
    """The two cache entries offline olah needs to answer ``/api/models/<id>`` and resolve ``main``."""
    org, name = repo_id.split("/")
    base = repos / "api" / "models" / org / name / "revision"
    (base / sha).mkdir(parents=True, exist_ok=True)
    (base / sha / "meta_head.json").write_text(json.dumps({"sha": sha, "lastModified": "2026-11-26T00:00:00.000Z"}))
    (base / "main").mkdir(parents=True, exist_ok=True)
    (base / "main" / "resolved_commit.json").write_text(json.dumps({"sha": sha}))
    (base / "main" / "resolved_commit.json.body").write_text(sha)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OlahServer:
    """olah in offline mode on 127.0.0.1, started in its own process group and always stopped."""

    def __init__(self, root: Path):
        self.root = root
        self.mirrors, self.repos = root / "mirrors", root / "repos"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        config = self.root / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.repos}"\nmirrors-path = ["{self.mirrors}"]\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\nmirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            "[accessibility]\noffline = true\n")
        log = (self.root / "olah.log").open("w")
        self.process = subprocess.Popen([str(OLAH_CLI), "-c", str(config), "--log-path", str(self.root / "logs")],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"olah exited ({self.process.returncode}): {(self.root / 'olah.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/api/models/BAAI/bge-m3", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"olah did not answer on {self.endpoint} within {timeout:.0f} s")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
