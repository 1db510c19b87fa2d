"""Progress of an execution, from the kernel that does the work to the runner that shows it.

Channel: a JSON-lines file per execution in the bundle's ``progress/`` folder, appended by the kernel and
tailed by the runner. Chosen over a socket or the kernel's own message channels because papermill owns those,
because a file needs no server and survives the kernel (after a crash its last line says where the work
stopped), and because a notebook run by hand in JupyterLab writes the same file with nobody reading it. Writes
are throttled to a few per second, so the file stays small on day-long runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROGRESS_DIR = "progress"
MIN_INTERVAL_S = 0.5


def progress_file(bundle_root: Path, execution: str) -> Path:
    return Path(bundle_root) / PROGRESS_DIR / f"{execution}.jsonl"


class ProgressWriter:
    """What an execution is doing: ``step`` (e.g. ``scoring``) on ``dataset``, ``done`` of ``total`` units."""

    def __init__(self, bundle_root: Path, execution: str, **context: Any):
        self.path = progress_file(bundle_root, execution)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.context = context
        self._last = 0.0

    def update(self, step: str, done: int, total: int, dataset: str | None = None, unit: str = "pairs",
               force: bool = False) -> None:
        now = time.time()
        if not force and done < total and now - self._last < MIN_INTERVAL_S:
            return
        self._last = now
        record = {"t": round(now, 3), **self.context, "step": step, "dataset": dataset, "done": int(done),
                  "total": int(total), "unit": unit}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def callback(self, step: str, dataset: str | None = None, unit: str = "pairs", offset: int = 0,
                 total: int | None = None):
        """A ``(done, total)`` callback for long loops (scoring batches, encoding chunks); ``offset`` and
        ``total`` place a part of the work (e.g. one chunk of pairs) within the whole."""
        def report(done: int, part_total: int) -> None:
            self.update(step, offset + done, total if total is not None else part_total, dataset, unit)
        return report


@dataclass
class Snapshot:
    """The latest progress record of an execution, and how fast its current step has been going."""

    step: str
    dataset: str | None
    done: int
    total: int
    unit: str
    rate: float | None  # units per second over the current step so far
    t: float


class ProgressReader:
    """Tails an execution's progress file (the runner's side)."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._first: dict[tuple[str, str | None], tuple[float, int]] = {}
        self.latest: Snapshot | None = None

    def poll(self) -> Snapshot | None:
        if not self.path.is_file():
            return self.latest
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete, newline, _ = chunk.rpartition(b"\n")
        self._offset += len(complete) + len(newline)  # a half-written last line is read next time
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            key = (record["step"], record.get("dataset"))
            first_t, first_done = self._first.setdefault(key, (record["t"], record["done"]))
            elapsed = record["t"] - first_t
            rate = (record["done"] - first_done) / elapsed if elapsed > 0 and record["done"] > first_done else None
            self.latest = Snapshot(record["step"], record.get("dataset"), record["done"], record["total"],
                                   record.get("unit", "pairs"), rate, record["t"])
        return self.latest
