"""infinity (the ``infinity-emb`` package) serving the checkpoint with its torch engine on 127.0.0.1 (variant
``server-infinity-torch``): the Hugging Face weights behind a Cohere-shaped ``/rerank``, as a RAG application
runs them when it does not convert to GGUF.

Same checkpoint and arithmetic as the in-process ``torch-fp32`` (infinity's torch engine is sentence-transformers'
``CrossEncoder`` in eager PyTorch), so the served and in-process rows differ by the server: its batching of pairs
from all requests in flight (up to ``--batch-size``, queued pairs of similar length together), HTTP and JSON.

Installed in a virtualenv of its own (``make infinity``: ``.venv/infinity``, or ``$RUNLOCALAI_BENCH_INFINITY``
naming an ``infinity_emb`` executable): infinity-emb 0.0.78 pins numpy<2, sentence-transformers<4 and click<8.2,
which this project's environment does not share. The server runs with:

- ``--engine torch --dtype float32 --device cpu|cuda``: the variant's precision;
- ``--no-compile``: infinity's default wraps the model in ``torch.compile(dynamic=True)``; the reference it is
  compared with runs eager, and on CPU the compile would put a C++ toolchain's first-use compiles into the timings;
- ``--no-bettertransformer``: it would swap the attention for optimum's BetterTransformer where available;
- ``--no-vector-disk-cache``: a cache of results keyed by request would turn the load sweep's repeats into hits;
- ``--no-model-warmup``: the suite warms up itself (its timing harness discards warm-up rounds);
- ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` = the run's compute threads, as every in-process backend gets;
- ``DO_NOT_TRACK=1`` (no usage statistics), ``HF_HUB_OFFLINE=1`` (it reads the local folder only) and
  ``INFINITY_HOME`` in a temporary folder (its cache folder would otherwise appear in the working directory).

Truncation (:mod:`rerankers.served`): infinity strips each text and cuts a pair at the tokenizer's
``model_max_length`` (8192 for bge-reranker-v2-m3), not the run's ``max_length``. So the client strips texts as
the server does, counts tokens with the checkpoint's own Hugging Face tokenizer (the files the server loads, read
here from the same folder), and cuts a side at the character where its last kept token ends (the tokenizer's
offsets), checked by tokenizing the cut again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlocalai_bench.rerankers.base import Backend, LoadRequest, Variant, VariantUnavailable
from runlocalai_bench.rerankers.served import ServedReranker, while_serving
from runlocalai_bench.serving.client import RerankClient
from runlocalai_bench.serving.process import ServerProcess

BINARY_ENV = "RUNLOCALAI_BENCH_INFINITY"  # an infinity_emb executable to use instead of .venv/infinity's
DEVICES = ("cpu", "cuda")
SERVED_NAME = "reranker"  # --served-model-name: the "model" every request names
VARIANTS = (
    Variant("server-infinity-torch", "infinity", "fp32", DEVICES, (),
            "infinity (infinity-emb, torch engine, float32, eager) serving the checkpoint on 127.0.0.1; one request "
            "per query", same_file_as="torch-fp32", served=True),
)
DTYPES = {"fp32": "float32"}


class InfinityUnavailable(RuntimeError):
    """No infinity_emb executable here: the message says how to install one."""


def infinity_binary() -> Path:
    """The ``infinity_emb`` to run: ``$RUNLOCALAI_BENCH_INFINITY`` if set, else ``.venv/infinity``'s (the virtualenv
    ``make infinity`` creates inside this environment's prefix)."""
    given = os.environ.get(BINARY_ENV)
    path = Path(given) if given else Path(sys.prefix) / "infinity" / "bin" / "infinity_emb"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise InfinityUnavailable(
            f"{BINARY_ENV}={given}: not an executable file" if given else
            "infinity is not installed (run `make infinity`: its own virtualenv in .venv/infinity, about 2 minutes "
            f"and 1.4 GB with the CPU torch wheel; or set {BINARY_ENV} to an infinity_emb executable)")
    return path


def installed_versions(binary: Path) -> dict[str, str]:
    """infinity-emb's and torch's versions in the binary's virtualenv, from their dist-info folders."""
    found: dict[str, str] = {}
    for site in (binary.resolve().parent.parent / "lib").glob("python*/site-packages"):
        for package in ("infinity_emb", "torch", "sentence_transformers", "transformers"):
            for info in site.glob(f"{package}-*.dist-info"):
                found[package] = info.name[len(package) + 1:-len(".dist-info")]
    return found


def server_command(binary: Path, folder: Path, *, batch_size: int, device: str, dtype: str) -> list[str]:
    """The command line serving the checkpoint in ``folder`` on ``{host}:{port}`` (formatted by ServerProcess);
    why each option: the module's docstring."""
    kind, _, index = device.partition(":")
    command = [str(binary), "v2", "--model-id", str(folder), "--served-model-name", SERVED_NAME,
               "--engine", "torch", "--device", kind, "--dtype", dtype, "--batch-size", str(batch_size),
               "--no-compile", "--no-bettertransformer", "--no-vector-disk-cache", "--no-model-warmup",
               "--host", "{host}", "--port", "{port}", "--log-level", "info"]
    if index:
        command += ["--device-id", index]
    return command


def check_device(variant: Variant, device: str) -> None:
    try:
        binary = infinity_binary()
    except InfinityUnavailable as exc:
        raise VariantUnavailable(str(exc)) from None
    python = binary.parent / "python"
    if device.startswith("cuda") and python.is_file():  # a user's own executable elsewhere: its start will tell
        probe = subprocess.run([str(python), "-c", "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"],
                               capture_output=True, timeout=120)
        if probe.returncode != 0:
            raise VariantUnavailable("the torch in infinity's virtualenv sees no CUDA device (install it with a CUDA "
                                     "build: rm -rf .venv/infinity; make infinity TORCH_SPEC=\"torch==... --index-url "
                                     "https://download.pytorch.org/whl/cu128\")")


@dataclass(eq=False, kw_only=True)
class InfinityReranker(ServedReranker):
    """infinity's torch engine: the checkpoint's own tokenizer counts and cuts, the server scores."""

    tokenizer: Any  # the checkpoint's Hugging Face tokenizer (fast: its offsets give the cut's character)
    home: tempfile.TemporaryDirectory | None = field(default=None, repr=False)  # the server's INFINITY_HOME

    def _count(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _kept_text(self, text: str, keep: list[int]) -> str:
        """``text`` up to the end of its ``len(keep)``-th token (the tokenizer's character offsets)."""
        if not keep:
            return ""
        offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return text[:offsets[len(keep) - 1][1]]

    def fit(self, query: str, doc: str, max_length: int) -> tuple[str, str, int]:
        """As the server sees texts: stripped of surrounding whitespace (its request model strips them)."""
        return super().fit(query.strip(), doc.strip(), max_length)

    def compute_precision(self) -> str:
        return self.variant.precision

    def close(self) -> None:
        super().close()
        if self.home is not None:
            self.home.cleanup()
            self.home = None


def load(request: LoadRequest) -> InfinityReranker:
    from transformers import AutoConfig, AutoTokenizer

    folder = request.folder
    try:
        binary = infinity_binary()
    except InfinityUnavailable as exc:
        raise VariantUnavailable(str(exc)) from None
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if not tokenizer.is_fast:
        raise VariantUnavailable(f"{folder}: the client cuts pairs by a fast tokenizer's offsets; this checkpoint "
                                 "has a slow tokenizer only")
    dtype = DTYPES[request.variant.precision]
    command = server_command(binary, folder, batch_size=request.server_slots, device=request.device, dtype=dtype)
    home = tempfile.TemporaryDirectory(prefix="infinity-home-")
    threads = str(request.threads)
    env = {"DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "INFINITY_HOME": home.name,
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    server = ServerProcess("infinity", command, env=env)

    def build() -> InfinityReranker:
        client = RerankClient(server.url, "/rerank", "cohere", model=SERVED_NAME, timeout_s=request.server_timeout_s)
        reranker = InfinityReranker(
            variant=request.variant, device=request.device,
            weight_files=sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin")),
            executed_precision=f"{request.variant.precision} (torch eager)",
            config=AutoConfig.from_pretrained(folder, local_files_only=True),
            server=server, client=client, specials=tokenizer.num_special_tokens_to_add(pair=True), tokenizer=tokenizer,
            home=home)
        client.rerank("a", ["b"])  # the first request: a server that cannot score dies here, with its log
        return reranker

    try:
        server.start()
        reranker = while_serving(server, build)
    except BaseException:
        home.cleanup()
        raise
    shown = [Path(part).name if part in (str(binary), str(folder)) else part for part in command]
    reranker.details.update(
        server="infinity", versions=installed_versions(binary), command=" ".join(shown),
        batch_size=request.server_slots, threads=request.threads, server_start_s=round(server.started_s, 3),
        specials=reranker.specials,
        client="httpx, one request per query (Cohere shape, /rerank, raw scores), on this machine: client and server "
               "share its cores",
        truncation={"cut_pairs": 0, "tokens_exact": 0})
    return reranker


BACKEND = Backend(name="infinity", extra="", variants=VARIANTS, load=load, runtime_modules=("httpx", "transformers"),
                  check_device=check_device)
