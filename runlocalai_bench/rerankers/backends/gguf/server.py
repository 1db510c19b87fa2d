"""llama.cpp's ``llama-server``, built from the same llama.cpp the ``gguf`` extra compiles, and its command line
for a GGUF reranker.

The build takes the installed llama-cpp-python's source distribution (its ``vendor/llama.cpp``, the commit whose
converter wrote the suite's GGUF files and whose library the in-process ``gguf-*`` variants score with), configures
it standalone with the server on and nothing the suite does not use (no web UI, no HTTPS, no tests or examples,
static libraries so the binary depends on nothing installed), and builds the ``llama-server`` target only. The
binary is cached per llama-cpp-python version beside the environment, like the converter
(``<prefix>/share/runlocalai-bench/llama-server-<version>/``); ``make llama-server`` builds it ahead of time. A
run never builds it (12 to 14 minutes on two cores): without it the served variants are a
recorded skip saying how to build it. ``CMAKE_ARGS`` is passed on, so ``-DGGML_CUDA=on`` builds a CUDA server.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from runlocalai_bench.environment import usable_cores
from runlocalai_bench.paths import publish_dir, staging_path
from runlocalai_bench.rerankers.backends.gguf.convert import (SOURCE_ENV, ConversionError, _download_sdist,
                                                               converter_home, llama_cpp_version)

BINARY_ENV = "RUNLOCALAI_BENCH_LLAMA_SERVER"  # an existing llama-server binary to use instead of the built one
BUILD_OPTIONS = ("-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_UI=OFF",
                 "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF",
                 "-DLLAMA_BUILD_EXAMPLES=OFF", "-DBUILD_SHARED_LIBS=OFF")
# Options meant for llama-cpp-python's own CMakeLists (the Makefile's CMAKE_ARGS): not llama.cpp's.
WHEEL_ONLY = ("-DLLAVA_BUILD", "-DLLAMA_BUILD=")


class ServerUnavailable(RuntimeError):
    """No llama-server binary here: the message says how to build one."""


def server_dir(version: str | None = None) -> Path:
    return converter_home() / f"llama-server-{version or llama_cpp_version()}"


def server_binary() -> Path:
    """The llama-server to run: ``$RUNLOCALAI_BENCH_LLAMA_SERVER`` if set, else the one built for the installed
    llama-cpp-python version. Raises :class:`ServerUnavailable` with the command that builds it."""
    given = os.environ.get(BINARY_ENV)
    if given:
        path = Path(given)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ServerUnavailable(f"{BINARY_ENV}={given}: not an executable file")
        return path
    built = server_dir() / "llama-server"
    if not built.is_file():
        raise ServerUnavailable(f"llama-server is not built for llama-cpp-python {llama_cpp_version()} "
                                "(run `make llama-server`, 12-14 minutes on 2 cores, or set "
                                f"{BINARY_ENV} to a llama-server of the same llama.cpp)")
    return built


def build_record() -> dict | None:
    """What :func:`build_server` recorded next to the binary (version, options, seconds), if it built it."""
    path = server_dir() / "build.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _cmake_args() -> list[str]:
    """The user's ``CMAKE_ARGS`` (e.g. ``-DGGML_CUDA=on``) without llama-cpp-python's own options."""
    return [arg for arg in shlex.split(os.environ.get("CMAKE_ARGS", "")) if not arg.startswith(WHEEL_ONLY)]


def _extract_llama_cpp(sdist: Path, into: Path) -> Path:
    with tarfile.open(sdist) as archive:
        members = []
        for member in archive.getmembers():
            parts = Path(member.name).parts
            if len(parts) > 3 and parts[1:3] == ("vendor", "llama.cpp"):
                member.name = str(Path(*parts[3:]))
                members.append(member)
        if not members:
            raise ConversionError(f"{sdist}: no vendor/llama.cpp inside")
        archive.extractall(into, members=members, filter="data")
    return into


def build_server(jobs: int | None = None, log=print) -> Path:
    """Build ``llama-server`` from the installed llama-cpp-python's llama.cpp (or ``$RUNLOCALAI_BENCH_LLAMA_CPP_SOURCE``,
    a llama.cpp checkout or the sdist) unless it is already built; returns the binary."""
    version = llama_cpp_version()
    target = server_dir(version)
    if (target / "llama-server").is_file():
        return target / "llama-server"
    if shutil.which("cmake") is None:
        raise ServerUnavailable("building llama-server needs CMake and a C/C++ compiler (the same as the gguf extra)")
    jobs = jobs or usable_cores()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llama-server-build-") as tmp:
        given = os.environ.get(SOURCE_ENV)
        if given and Path(given).is_dir():
            source = Path(given)
        else:
            sdist = Path(given) if given else _download_sdist(version, Path(tmp))
            source = _extract_llama_cpp(sdist, Path(tmp) / "llama.cpp")
        build = Path(tmp) / "build"
        options = [*BUILD_OPTIONS, *_cmake_args()]
        log(f"building llama-server from llama.cpp of llama-cpp-python {version} ({jobs} jobs): {' '.join(options)}")
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []  # a little faster than make where installed
        for command in (["cmake", "-S", str(source), "-B", str(build), *generator, *options],
                        ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)]):
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise ConversionError(f"{' '.join(command)} failed (exit {done.returncode}):\n"
                                      f"{(done.stderr or done.stdout)[-3000:]}")
        binary = next(build.glob("bin/llama-server"), None)
        if binary is None:
            raise ConversionError(f"the build of {source} finished without bin/llama-server")
        staging = staging_path(target)
        staging.mkdir(parents=True)
        shutil.copy2(binary, staging / "llama-server")
        seconds = time.perf_counter() - started
        (staging / "build.json").write_text(json.dumps({
            "llama_cpp_python": version, "source": "llama-cpp-python sdist vendor/llama.cpp" if not given else "user source",
            "cmake_options": options, "jobs": jobs, "seconds": round(seconds, 1)}, indent=1))
        publish_dir(staging, target)
    log(f"llama-server built in {seconds / 60:.1f} min: {target / 'llama-server'}")
    return target / "llama-server"


def server_command(binary: Path, gguf: Path, *, slots: int, tokens_per_batch: int, threads: int, device: str,
                   device_index: int = 0) -> list[str]:
    """The command line serving ``gguf`` for reranking on ``{host}:{port}`` (formatted by ServerProcess).

    Sizing so no pair is refused (llama.cpp issue 11105, HTTP 500 "input is too large" at the default micro-batch):
    an encoder-only model needs each pair in one micro-batch, so ``-ub`` and ``-b`` are ``tokens_per_batch`` (the
    run's ``max_length`` or the in-process variants' tokens per call, whichever is larger), and every slot's share of
    the context (``-c`` / ``-np``) is that much too. ``-np`` slots let the server batch several candidates of a
    request (and of concurrent requests) into one decode, as the in-process variants pack several pairs per call."""
    command = [str(binary), "-m", str(gguf), "--reranking", "--host", "{host}", "--port", "{port}",
               "-np", str(slots), "-ub", str(tokens_per_batch), "-b", str(tokens_per_batch),
               "-c", str(slots * tokens_per_batch), "-t", str(threads), "-tb", str(threads),
               "--no-webui", "-fa", "auto",
               # Verbosity 4 ("trace"): the file type, tensor types and buffer sizes the suite records are not
               # printed at the default threshold (3).
               "-lv", "4"]
    if device.startswith("cuda"):
        command += ["-ngl", "999", "--split-mode", "none", "--main-gpu", str(device_index)]
    else:
        command += ["-ngl", "0", "--no-op-offload"]
    return command
