"""infinity (the ``infinity-emb`` package) serving the checkpoint with its torch engine on 127.0.0.1 (variant
``server-infinity-torch``): the Hugging Face weights behind a Cohere-shaped ``/rerank``, as a RAG application
runs them when it does not convert to GGUF.

Same checkpoint and arithmetic as the in-process ``torch-fp32`` (infinity's torch engine is sentence-transformers'
``CrossEncoder`` in eager PyTorch), so the served and in-process rows differ by the server: its batching of pairs
from all requests in flight (up to ``--batch-size``, queued pairs of similar length together), HTTP and JSON.

Installed in a virtualenv of its own (``make infinity``: ``.venv/infinity``, or ``$RUNLOCALAI_BENCH_INFINITY``
naming an ``infinity_emb`` executable): infinity-emb 0.0.78 pins numpy<2, sentence-transformers<4 and click<8.2,
which this project's environment does not share. The server runs with every setting pinned on its command line
(not left to 0.0.78's defaults, which its help text and its environment reader state differently, nor to an
``INFINITY_*`` variable of the user's, which the server's environment drops):

- ``--engine torch --dtype float32 --device cpu|cuda --device-id <index>``: the variant's precision, on the one
  GPU the run names (without an id infinity puts a model copy on every visible GPU);
- ``--no-compile`` (eager, as the reference), ``--no-bettertransformer`` (it would swap the attention for
  optimum's BetterTransformer where available), ``--no-vector-disk-cache`` (a cache of results keyed by request
  would turn the load sweep's repeats into hits), ``--no-model-warmup`` (the suite warms up itself);
- started through its virtualenv's python with TF32 switched off again after infinity is imported: infinity turns
  TF32 matmuls on at import (``transformer/acceleration.py``), so its "float32" on an Ampere or newer GPU would be
  TF32 against the reference's full fp32 (``torch_backend`` sets "highest"); the server's log says it;
- ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``RAYON_NUM_THREADS`` = the run's compute threads, as every
  in-process backend gets (Rayon: the Rust tokenizer's pool);
- ``DO_NOT_TRACK=1`` (no usage statistics), ``HF_HUB_OFFLINE=1`` (it reads the local folder only),
  ``INFINITY_HOME`` in a temporary folder (its cache folder would otherwise appear in the working directory) and
  ``--log-level warning`` (no log line per request inside the timed window).

Only one-label checkpoints: infinity flattens a classifier's logits and pairs them with documents in order, so a
two-label head (the in-process variants take the margin of its labels) would get wrong scores silently.

Truncation (:mod:`rerankers.served`): infinity strips each text and cuts a pair at the tokenizer's
``model_max_length`` (8192 for bge-reranker-v2-m3), not the run's ``max_length``. So the client strips texts as
the server does, counts tokens with the checkpoint's own Hugging Face tokenizer (the files the server loads, read
here from the same folder), and cuts a side at the character where its last kept token ends (the tokenizer's
offsets), checked by tokenizing the cut again, stripped as the server will strip it. The client's and the
server's tokenizers library versions are recorded; where they differ the details say so.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlocalai_bench.devices import device_index
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
    ``make infinity`` creates inside this environment's prefix). Its virtualenv's ``python`` must sit beside it:
    the server is started through it (:data:`TF32_OFF`)."""
    given = os.environ.get(BINARY_ENV)
    path = Path(given) if given else Path(sys.prefix) / "infinity" / "bin" / "infinity_emb"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise InfinityUnavailable(
            f"{BINARY_ENV}={given}: not an executable file" if given else
            "infinity is not installed (run `make infinity`: its own virtualenv in .venv/infinity, about 2 minutes "
            f"and 1.4 GB with the CPU torch wheel; or set {BINARY_ENV} to an infinity_emb executable)")
    if not python_of(path).is_file():
        raise InfinityUnavailable(f"{given or path.name}: no python beside it (the suite starts infinity through its "
                                  "virtualenv's python, to switch TF32 off after infinity's import)")
    return path


def python_of(binary: Path) -> Path:
    """The python of the virtualenv ``binary`` belongs to (links followed: a pipx-style link points into it)."""
    return binary.resolve().parent / "python"


# Run by the virtualenv's python with infinity's CLI arguments after it: import infinity's module that turns TF32
# on, turn it off again, say so in the log, then hand over to infinity's own entry point (infinity_emb.cli:cli).
TF32_OFF = ("import sys, torch; import infinity_emb.transformer.acceleration; "
            "torch.backends.cuda.matmul.allow_tf32 = False; torch.backends.cudnn.allow_tf32 = False; "
            "torch.set_float32_matmul_precision('highest'); "
            "print('runlocalai-bench: float32 matmul precision', torch.get_float32_matmul_precision(), "
            "'tf32', torch.backends.cuda.matmul.allow_tf32, flush=True); "
            "from infinity_emb.cli import cli; sys.argv[0] = 'infinity_emb'; cli()")
TF32_LINE = "runlocalai-bench: float32 matmul precision highest tf32 False"


def installed_versions(binary: Path) -> dict[str, str]:
    """infinity-emb's and torch's versions in the binary's virtualenv, from their dist-info folders."""
    found: dict[str, str] = {}
    for site in (binary.resolve().parent.parent / "lib").glob("python*/site-packages"):
        for package in ("infinity_emb", "torch", "sentence_transformers", "transformers", "tokenizers"):
            for info in site.glob(f"{package}-*.dist-info"):
                found[package] = info.name[len(package) + 1:-len(".dist-info")]
    return found


def server_command(binary: Path, folder: Path, *, batch_size: int, device: str, dtype: str) -> list[str]:
    """The command line serving the checkpoint in ``folder`` on ``{host}:{port}`` (formatted by ServerProcess);
    why each option: the module's docstring."""
    kind = "cuda" if device.startswith("cuda") else device
    # -I: isolated, so neither the working directory nor the suite's PYTHONPATH can shadow infinity's modules.
    command = [str(python_of(binary)), "-I", "-c", TF32_OFF, "v2", "--model-id", str(folder),
               "--served-model-name", SERVED_NAME, "--engine", "torch", "--device", kind, "--dtype", dtype,
               "--batch-size", str(batch_size), "--no-compile", "--no-bettertransformer", "--no-vector-disk-cache",
               "--no-model-warmup", "--host", "{host}", "--port", "{port}", "--log-level", "warning"]
    if kind == "cuda":
        command += ["--device-id", str(device_index(device))]
    return command


def check_device(variant: Variant, device: str) -> None:
    try:
        binary = infinity_binary()
    except InfinityUnavailable as exc:
        raise VariantUnavailable(str(exc)) from None
    if device.startswith("cuda"):
        try:
            probe = subprocess.run([str(python_of(binary)), "-I", "-c",
                                    "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"],
                                   capture_output=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise VariantUnavailable("infinity's virtualenv did not import torch within 300 s") from None
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
        """Tokens of ``text`` as the server will see it: stripped (a cut may end in whitespace the server drops)."""
        return list(self.tokenizer(text.strip(), add_special_tokens=False)["input_ids"])

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
        try:
            super().close()
        finally:
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
    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if getattr(config, "num_labels", 1) != 1:
        raise VariantUnavailable(f"{folder.name}: {config.num_labels} output labels; infinity scores one-label "
                                 "rerankers only (it would pair a two-label head's logits with the wrong documents)")
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if not tokenizer.is_fast:
        raise VariantUnavailable(f"{folder.name}: the client cuts pairs by a fast tokenizer's offsets; this "
                                 "checkpoint has a slow tokenizer only")
    command = server_command(binary, folder, batch_size=request.server_slots, device=request.device,
                             dtype=DTYPES[request.variant.precision])
    home = tempfile.TemporaryDirectory(prefix="infinity-home-")
    threads = str(request.threads)
    env = {"DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "INFINITY_HOME": home.name,
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "RAYON_NUM_THREADS": threads}
    server = ServerProcess("infinity", command, env=env, drop_env=("INFINITY_",))

    def build() -> InfinityReranker:
        client = RerankClient(server.url, "/rerank", "cohere", model=SERVED_NAME, timeout_s=request.server_timeout_s)
        reranker = InfinityReranker(
            variant=request.variant, device=request.device,
            weight_files=sorted(folder.glob("*.safetensors")) or sorted(folder.glob("pytorch_model*.bin")),
            executed_precision=f"{request.variant.precision} (torch eager"
                               f"{', TF32 off' if request.device.startswith('cuda') else ''})", config=config,
            server=server, client=client, specials=tokenizer.num_special_tokens_to_add(pair=True), tokenizer=tokenizer,
            home=home)
        client.rerank("a", ["b"])  # the first request: a server that cannot score dies here, with its log
        if TF32_LINE not in server.log_text():
            raise RuntimeError(f"infinity's log lacks {TF32_LINE!r}: TF32 may be on; its log ends:\n"
                               f"{server.log_tail()}")
        versions = installed_versions(binary)
        client_tokenizers = importlib.metadata.version("tokenizers")
        shown = [Path(part).name if part in (str(python_of(binary)), str(folder)) else
                 "<TF32 off, then infinity_emb>" if part == TF32_OFF else part for part in command]
        reranker.details.update(
            server="infinity", versions=versions, command=" ".join(shown), batch_size=request.server_slots,
            threads=request.threads, server_start_s=round(server.started_s, 3), specials=reranker.specials,
            float32_matmul_precision="highest (TF32 off after infinity's import turned it on)",
            client="httpx, one request per query (Cohere shape, /rerank, raw scores), on this machine: client and "
                   "server share its cores",
            truncation={"cut_pairs": 0, "tokens_exact": 0})
        if versions.get("tokenizers") != client_tokenizers:
            reranker.details["tokenizers_differ"] = (f"client cuts with tokenizers {client_tokenizers}, the server "
                                                     f"tokenizes with {versions.get('tokenizers')}")
        return reranker

    try:
        server.start()
        return while_serving(server, build)
    except BaseException:
        home.cleanup()
        raise


BACKEND = Backend(name="infinity", extra="", variants=VARIANTS, load=load, runtime_modules=("httpx", "transformers"),
                  check_device=check_device,
                  family_note="infinity 0.0.78 loads a reranker as a sequence classifier; a causal LM would get a "
                              "fresh, random classification head instead of its next-token scoring")
