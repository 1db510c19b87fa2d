"""What a person sees while a run executes: the stage, dataset, variant and device, work done of the total,
the current rate, an ETA for the execution and for the whole run.

On a terminal a tqdm bar is refreshed twice a second; when stdout is not a terminal (CI, a log file) plain
lines are printed at every tenth of a step or once a minute, whichever comes first. The kernels' own noise
goes to the bundle's log (:mod:`run.kernel`), never here.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from runlocalai_bench.run.progress import ProgressReader, Snapshot
from runlocalai_bench.units import sig

POLL_S = 0.5
PLAIN_EVERY_S = 60.0
PLAIN_EVERY_FRACTION = 0.1


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class _Current:
    name: str
    title: str
    reader: ProgressReader
    started: float
    predicted: float | None
    bar: tqdm | None = None
    key: tuple | None = None
    last_line_t: float = 0.0
    last_line_fraction: float = -1.0


class Display:
    """Progress of a run, execution by execution. Several executions can run at once (the Ray engine): each
    has its own progress file; a terminal then gets plain lines too, since one bar cannot show several."""

    def __init__(self, predicted: dict[str, float] | None = None, stream: IO[str] | None = None,
                 tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.predicted = predicted or {}
        self.running: dict[str, _Current] = {}
        self.done: dict[str, tuple[float, float | None]] = {}  # name -> (seconds taken, seconds predicted)
        self._lock = threading.RLock()

    @property
    def current(self) -> _Current | None:
        """The execution a bar may show: the only one running, else None."""
        return next(iter(self.running.values())) if len(self.running) == 1 else None

    def line(self, text: str) -> None:
        with self._lock:
            bar = next((c.bar for c in self.running.values() if c.bar is not None), None)
            if bar is not None:
                bar.clear()
                print(text, file=self.stream, flush=True)
                bar.refresh()
            else:
                print(text, file=self.stream, flush=True)

    # -- the run's ETA

    def _correction(self) -> float:
        """How much slower (>1) or faster the finished executions ran than predicted."""
        pairs = [(taken, predicted) for taken, predicted in self.done.values() if predicted]
        if not pairs:
            return 1.0
        return max(0.2, min(5.0, sum(t for t, _ in pairs) / sum(p for _, p in pairs)))

    def run_eta(self, current_eta: float | None, current: _Current | None = None) -> float | None:
        """Seconds left in the run: ``current_eta`` for ``current`` (the execution being described; predicted
        when None), the others running by their predictions, and everything not started. Executions that
        run at once are summed, so on a cluster this is an upper bound."""
        current = current or self.current
        remaining = [p for name, p in self.predicted.items() if name not in self.done
                     and (current is None or name != current.name)]
        if current_eta is None and current is not None and current.predicted:
            current_eta = max(current.predicted * self._correction() - (time.monotonic() - current.started), 0)
        if current_eta is None:
            return None
        return current_eta + sum(remaining) * self._correction()

    # -- executions

    def begin(self, name: str, title: str, progress_path: Path) -> None:
        with self._lock:
            self.running[name] = _Current(name, title, ProgressReader(progress_path), time.monotonic(),
                                          self.predicted.get(name))
            started = len(self.done) + len(self.running)
        if not self.tty or len(self.running) > 1:
            self.line(f"[runlocalai-bench] {title}: started ({started} of {max(len(self.predicted), 1)})")

    def poll(self) -> None:
        with self._lock:
            running = list(self.running.values())
        for current in running:
            snapshot = current.reader.poll()
            if snapshot is None:
                continue
            eta = (snapshot.total - snapshot.done) / snapshot.rate if snapshot.rate else None
            run_eta = self.run_eta(None, current)
            if self.tty and len(running) == 1:
                self._update_bar(current, snapshot, run_eta)
            else:
                self._maybe_line(current, snapshot, eta, run_eta)

    def _describe(self, current: _Current, snapshot: Snapshot) -> str:
        where = f" · {snapshot.dataset}" if snapshot.dataset else ""
        return f"{current.title}{where} · {snapshot.step}"

    def _update_bar(self, current: _Current, snapshot: Snapshot, run_eta: float | None) -> None:
        key = (snapshot.step, snapshot.dataset, snapshot.total)
        with self._lock:
            if current.key != key:
                if current.bar is not None:
                    current.bar.close()
                current.bar = tqdm(total=snapshot.total, desc=self._describe(current, snapshot), unit=snapshot.unit,
                                   file=self.stream, dynamic_ncols=True, leave=False, mininterval=POLL_S)
                current.key = key
            current.bar.update(max(snapshot.done - current.bar.n, 0))
            current.bar.set_postfix_str(f"run ETA {duration(run_eta)}", refresh=True)

    def _maybe_line(self, current: _Current, snapshot: Snapshot, eta: float | None, run_eta: float | None) -> None:
        fraction = snapshot.done / snapshot.total if snapshot.total else 1.0
        now = time.monotonic()
        if (fraction - current.last_line_fraction < PLAIN_EVERY_FRACTION and now - current.last_line_t < PLAIN_EVERY_S
                and not (fraction >= 1.0 and current.last_line_fraction < 1.0)):
            return
        current.last_line_fraction, current.last_line_t = fraction, now
        rate = f", {sig(snapshot.rate)} {snapshot.unit}/s" if snapshot.rate else ""
        self.line(f"[runlocalai-bench] {self._describe(current, snapshot)}: {snapshot.done:,}/{snapshot.total:,} "
                  f"{snapshot.unit} ({fraction:.0%}){rate}, ETA {duration(eta)} (run ETA {duration(run_eta)})")

    def end(self, status: str, seconds: float, reason: str | None = None, reused: bool = False,
            name: str | None = None) -> None:
        """The end of execution ``name`` (default: the only one running)."""
        with self._lock:
            if name is None:
                name = self.current.name if self.current is not None else None
            current = self.running.pop(name, None) if name is not None else None
        if current is None:
            return
        if current.bar is not None:
            current.bar.close()
        self.done[current.name] = (seconds, current.predicted)
        label = "reused" if reused else status
        self.line(f"  {label:8s} {current.title} ({duration(seconds)})" + (f": {reason}" if reason else ""))

    def reused(self, name: str, title: str) -> None:
        self.done[name] = (0.0, None)
        self.line(f"  {'reused':8s} {title} (finished before the interruption)")


class Poller:
    """Calls ``display.poll`` every half second in a background thread while an execution runs."""

    def __init__(self, display: Display):
        self.display = display
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.display.poll()
            except Exception:  # noqa: BLE001 - a display hiccup must never stop a run
                pass

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.display.poll()
