"""The Jupyter kernel every execution runs in: this environment's Python, its noise kept in the bundle's log.

A private kernelspec (on ``JUPYTER_PATH`` for the duration of a run) points at ``sys.executable``, so a stale
global ``python3`` kernel from another environment, the classic papermill failure, can never be picked up.
The kernel starts through :func:`main`, which sends the kernel process's own stdout and stderr (ipykernel's
"running over TCP without encryption" warning, library deprecation warnings, llama.cpp's C-level logging)
to a log file in the bundle instead of the terminal. What a cell prints still reaches the executed notebook
through Jupyter's messages; only the process's raw output is redirected.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

KERNEL_NAME = "runlocalai-bench-python"
LOG_ENV = "RUNLOCALAI_BENCH_KERNEL_LOG"
KERNEL_LOG = "logs/kernels.log"  # where a bundle keeps what its kernels printed
DIE_WITH_PARENT_ENV = "RUNLOCALAI_BENCH_DIE_WITH_PARENT"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@contextmanager
def private_kernel(log_file: Path | None = None, die_with_parent: bool = False) -> Iterator[str]:
    """A kernelspec for ``sys.executable`` on JUPYTER_PATH for the duration of the run; its kernels append
    their own output to ``log_file``. ``die_with_parent``: a kernel is killed when the process that started it
    dies (Linux), so a Ray worker killed mid-execution leaves no kernel timing beside the next execution."""
    with tempfile.TemporaryDirectory(prefix="rlb-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        env = {"PYTHONUNBUFFERED": "1"}
        if die_with_parent:
            env[DIE_WITH_PARENT_ENV] = "1"
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            env[LOG_ENV] = str(log_file)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "runlocalai_bench.run.kernel", "-f", "{connection_file}"],
            "display_name": "runlocalai-bench (this environment)", "language": "python", "env": env,
        }))
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp] + ([previous] if previous else []))
        try:
            yield KERNEL_NAME
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


@contextmanager
def output_to(log_file: Path | None) -> Iterator[None]:
    """Send this process's raw stdout and stderr (library warnings, native libraries' logging) to ``log_file``
    (or nowhere) for the duration: what a plan's probe loads would otherwise bury its summary."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    target = os.open(str(log_file) if log_file else os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


def main() -> None:
    """Start an IPython kernel with this process's stdout/stderr going to the log named by the environment."""
    if os.environ.get(DIE_WITH_PARENT_ENV) and sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    log = os.environ.get(LOG_ENV)
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    from ipykernel import kernelapp  # the kernel itself: only a kernel process needs it

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
