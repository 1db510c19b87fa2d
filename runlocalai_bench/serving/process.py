"""A server process the suite starts on 127.0.0.1 and always stops: a free port, a health check, its log kept
for the error message, and its memory read from ``/proc/<pid>`` (the server's own peak, not the client's).

Why by hand and not a process-supervision library: what is needed is four things none of them does together
on Linux without a daemon: die with the parent (``PR_SET_PDEATHSIG``, so a killed kernel cannot leave a server
holding gigabytes and a port), refuse to report healthy once the process has exited, read and reset the
child's peak resident set (``VmHWM``/``clear_refs``), and keep the last lines of its log for the error.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import httpx

LOOPBACK = "127.0.0.1"


class ServerFailed(RuntimeError):
    """The server did not start, or died, or stopped answering: the message carries its log's last lines."""


def free_port() -> int:
    """A TCP port free on the loopback interface now (the kernel's choice). Another process may take it
    before the server binds: :meth:`ServerProcess.start` retries on a bind failure."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port`` of the loopback interface any more (a connection is refused). Binding is not the
    test: the stopped server's closed connections may hold the port in TIME_WAIT for a minute, which keeps a bind
    without SO_REUSEADDR out but no server from starting there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        return probe.connect_ex((LOOPBACK, port)) != 0


# Looked up once here: between fork and exec in a multi-threaded parent (a notebook kernel) the child may only do
# the bare minimum (find_library would run ldconfig in a subprocess).
_PRCTL = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _death_signal(parent: int):
    """The child's pre-exec hook (Linux): SIGKILL when the thread that started it exits, even by SIGKILL; and exit
    at once if the parent died before the hook ran (then no signal would ever come)."""
    def hook() -> None:  # pragma: no cover - runs in the child between fork and exec
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)
    return hook


def proc_status_mb(pid: int | str, *fields: str) -> dict[str, float | None]:
    """Fields of ``/proc/<pid>/status`` (kB there) in MiB; None for each where it cannot be read."""
    found: dict[str, float | None] = dict.fromkeys(fields)
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name = line.split(":", 1)[0]
            if name in found:
                found[name] = int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return found


def reset_peak(pid: int | str) -> bool:
    """Start a new peak-resident-set window of ``pid`` (Linux: 5 into ``clear_refs`` resets VmHWM; allowed for
    one's own children). False where unsupported."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """One server: ``command`` is formatted with ``{port}`` and ``{host}``; ``health`` is the path that answers 200
    once the model is loaded. Use as a context manager, or :meth:`start` and :meth:`stop` (also called at
    interpreter exit and, through the parent-death signal, when this process is killed)."""

    name: str  # for messages: "llama-server", "infinity"
    command: Sequence[str]
    health: str = "/health"
    start_timeout_s: float = 600.0
    env: dict[str, str] | None = None  # added to this process's environment
    drop_env: tuple[str, ...] = ()  # prefixes of this process's variables the server must not inherit
    port: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    started_s: float = 0.0  # seconds from spawn to the first healthy answer
    _log: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return "(no log)"
        with self.log_path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines)).rstrip() or "(empty log)"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path and self.log_path.is_file() else ""

    def describe_exit(self) -> str:
        code = self.process.poll() if self.process is not None else None
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with code {code}" if code is not None else "stopped answering")
        return f"{self.name} (pid {self.pid}) {how}; its log ends:\n{self.log_tail()}"

    def start(self) -> "ServerProcess":
        """Spawn on a free loopback port and wait until ``health`` answers 200; a bind race is retried."""
        for attempt in range(3):
            self.port = free_port()
            handle, name = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
            self._log = self.log_path.open("wb")
            command = [part.format(port=self.port, host=LOOPBACK) for part in self.command]
            began = time.perf_counter()
            try:
                self.process = subprocess.Popen(
                    command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env={**{k: v for k, v in os.environ.items() if not k.startswith(self.drop_env)},
                         **(self.env or {})},
                    preexec_fn=_death_signal(os.getpid()) if _PRCTL is not None else None)
                atexit.register(self.stop)  # registered at once: a Ctrl-C during the health wait stops it too
                if self._wait_healthy(began):
                    return self
            except BaseException:  # Ctrl-C or an error while starting: nothing may outlive this call
                self.stop()
                raise
            text = self.log_text().lower()
            bind_race = not self.alive() and ("bind" in text or "address already in use" in text)
            if self.alive():
                tail = self.log_tail()
                self.stop()
                raise ServerFailed(f"{self.name} did not answer {self.health} within {self.start_timeout_s:.0f} s; "
                                   f"its log ends:\n{tail}")
            message = self.describe_exit()
            self.stop()
            if not bind_race or attempt == 2:
                raise ServerFailed(f"{self.name} did not start: {message}")
        raise AssertionError("unreachable")

    def _wait_healthy(self, began: float) -> bool:
        deadline = began + self.start_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while time.perf_counter() < deadline:
                if not self.alive():
                    return False
                try:
                    if client.get(self.url + self.health).status_code == 200:
                        self.started_s = time.perf_counter() - began
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        return False

    def check(self, grace_s: float = 2.0) -> None:
        """Raise :class:`ServerFailed` if the server has exited (called when a request fails). A killed server
        resets its connections a moment before the kernel reports it gone: wait up to ``grace_s`` for that."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                return
        if not self.alive():
            raise ServerFailed(self.describe_exit())

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; the port is free when this returns, and the log is deleted (an
        error message carries its last lines, read before). Returns the exit code."""
        atexit.unregister(self.stop)
        if self.process is None:
            self._close_log(keep=False)
            return None
        code = self.process.poll()
        if code is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
        self._close_log(keep=False)
        return code

    def _close_log(self, keep: bool) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if not keep and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
