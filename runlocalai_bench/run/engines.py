"""How one execution runs: a notebook in its own Jupyter kernel (papermill; the default, which leaves the
executed notebook in the bundle), or the same stage function in a plain Python subprocess (for machines
without Jupyter, such as a GPU box that only has PyTorch and carried wheels). Either way each execution gets
a fresh process, so its memory peaks are its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from runlocalai_bench.paths import REPO_ROOT, scrub

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = {"first_stage": "01_first_stage.ipynb", "rerank": "02_rerank.ipynb", "report": "03_report.ipynb"}
ENGINES = ("papermill", "subprocess", "ray")  # ray: run.cluster (each execution a Ray task)


class ExecutionFailed(RuntimeError):
    """An execution that did not finish; the message is one line (the failing cell's or process's error)."""


MAX_REASON = 400  # characters of an error kept as an execution's reason (some libraries print whole lists)


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """The first line of ``text``, shortened to ``limit`` characters."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def describe_failure(exc: BaseException) -> str:
    """One line: the failing cell's exception (papermill), or the exception itself."""
    from papermill.exceptions import PapermillExecutionError  # only the papermill engine raises it

    if isinstance(exc, PapermillExecutionError):
        return f"{exc.ename}: {one_line(exc.evalue or '')} (cell {exc.exec_count})"
    return f"{type(exc).__name__}: {one_line(str(exc))}"


def scrub_notebook(path: Path) -> None:
    """Rewrite an executed notebook without local absolute paths (papermill records the input and output
    paths; tracebacks and warnings name files of the Python environment)."""
    if path.is_file():
        path.write_text(scrub(path.read_text(encoding="utf-8")), encoding="utf-8")


def run_notebook(stage: str, output: Path, parameters: dict, cwd: Path, kernel: str, log_output: bool) -> None:
    """Execute ``stage``'s notebook with papermill into ``output`` (raises :class:`ExecutionFailed`)."""
    import papermill  # only this engine needs Jupyter

    source = NOTEBOOKS_DIR / NOTEBOOKS[stage]
    if not source.is_file():
        raise ExecutionFailed(f"notebook {source} not found: run from a checkout installed with `pip install -e .`")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(source), str(output), parameters=parameters, kernel_name=kernel, cwd=str(cwd),
            progress_bar=False, log_output=log_output, request_save_on_cell_execute=True,
        )
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a notebook is one recorded reason
        raise ExecutionFailed(scrub(describe_failure(exc))) from exc
    finally:
        scrub_notebook(output)


def run_subprocess(stage: str, bundle: Path, args: list[str], log_file: Path) -> None:
    """Run ``stage`` in a fresh Python process (``python -m runlocalai_bench.run.execute``), output to the log."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as log:
        done = subprocess.run([sys.executable, "-m", "runlocalai_bench.run.execute", stage, str(bundle), *args],
                              stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode != 0:
        lines = [line for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        raise ExecutionFailed(scrub(one_line(lines[-1]) if lines else f"exit status {done.returncode}"))
