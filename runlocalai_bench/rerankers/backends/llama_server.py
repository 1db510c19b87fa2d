"""llama.cpp's ``llama-server`` serving the suite's own GGUF files on 127.0.0.1 (variants ``server-llama-*``).

Same files as the in-process ``gguf-*`` variants (converted and quantized by the same llama.cpp), so the served
and in-process rows of one file differ only by the server: its tokenization, its batching of candidates over its
slots, HTTP and JSON. The server is started when the variant loads and stopped when it closes (and when this
process exits or is killed: :mod:`serving.process`); a server that dies mid-run fails the execution with its log's
last lines, and the port is free again.

Truncation (:mod:`rerankers.served`): llama-server refuses a pair longer than its micro-batch, so the client cuts
each pair to the run's ``max_length`` first, counting with the server's own ``/tokenize`` (its vocabulary, no
specials, no special-token parsing: what its ``/rerank`` does) and turning kept tokens back into text with its
``/detokenize``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from runlocalai_bench.devices import device_index
from runlocalai_bench.rerankers.backends import gguf
from runlocalai_bench.rerankers.backends.gguf.convert import gguf_file, llama_cpp_version
from runlocalai_bench.rerankers.backends.gguf.llamacpp import (AMX_NOTE, LOGITS_KEY, TOKENS_PER_CALL, TYPE_LINE,
                                                               amx_repack_crashes, buffer_sizes, buffers_on,
                                                               ggml_compute_precision, logits_estimate_mb,
                                                               packed_shape)
from runlocalai_bench.rerankers.backends.gguf.server import (BINARY_ENV, ServerUnavailable, build_record,
                                                             server_binary, server_command)
from runlocalai_bench.rerankers.base import Backend, LoadRequest, Variant, VariantUnavailable
from runlocalai_bench.rerankers.served import ServedReranker, while_serving
from runlocalai_bench.serving.client import RerankClient, RerankError
from runlocalai_bench.serving.process import ServerProcess

REQUIRES = gguf.REQUIRES  # the conversion needs the gguf extra; the server itself is a binary (make llama-server)
VARIANTS = tuple(
    Variant(f"server-llama-{precision}", "server", precision, gguf.DEVICES, REQUIRES,
            f"llama-server (llama.cpp's HTTP server, same build as gguf-*) serving the GGUF {precision.upper()} "
            "file on 127.0.0.1; one request per query", same_file_as=f"gguf-{precision}",
            served=True)
    for precision in ("f16", "q8_0", "q4_k_m"))
FILE_TYPE_LINE = re.compile(r"file type\s*=\s*(?P<type>.+)")


@dataclass(eq=False, kw_only=True)
class LlamaServerReranker(ServedReranker):
    """llama-server: its tokenizer over HTTP, its buffers from its start-up log."""

    tokens_per_batch: int  # the server's micro-batch: the most tokens one decode packs
    buffers: dict[str, float] = field(default_factory=dict)  # llama.cpp's buffer sizes, read from its start-up log

    def _count(self, text: str) -> list[int]:
        return self._call(lambda: self.client.post(
            "/tokenize", {"content": text, "add_special": False, "parse_special": False})["tokens"])

    def _kept_text(self, text: str, keep: list[int]) -> str:
        """``keep`` detokenized by the server (its leading space dropped: a piece's word-start marker)."""
        return self.client.post("/detokenize", {"tokens": list(keep)})["content"].lstrip()

    # -- what the measurements need to know: the GGUF file's, computed by the same ggml

    def compute_precision(self) -> str:
        return ggml_compute_precision(self.variant.precision, self.device)

    def weights_format(self) -> str:
        return self.variant.precision

    def activation_shape(self, batch_size: int, tokens: int) -> tuple[int, int]:
        return packed_shape(batch_size, tokens, self.tokens_per_batch)

    def output_buffer_mb(self, batch_size: int, tokens: int) -> float:
        return logits_estimate_mb(self.config, self.tokens_per_batch)  # sized at the server's micro-batch at start

    def runtime_memory(self) -> dict[str, float] | None:
        """llama-server's buffers as its log reported them at start (host buffers on CPU, GPU buffers on CUDA), plus
        the logits buffer ``encode()`` sizes at the micro-batch and never logs (as for the in-process variant)."""
        found = buffers_on(self.buffers, self.device)
        if not self.device.startswith("cuda"):
            found = {k: v for k, v in found.items() if not k.startswith("output (")}
            found[LOGITS_KEY] = logits_estimate_mb(self.config, self.tokens_per_batch)
        return found or None



def check_device(variant: Variant, device: str) -> None:
    try:
        server_binary()
    except ServerUnavailable as exc:
        raise VariantUnavailable(str(exc)) from None
    record = None if os.environ.get(BINARY_ENV) else build_record()  # a user's own binary: its build is unknown
    options = " ".join((record or {}).get("cmake_options", [])).lower()
    if device.startswith("cuda") and record is not None and "-dggml_cuda=on" not in options:
        raise VariantUnavailable("llama-server here was built without CUDA (rebuild with CMAKE_ARGS=-DGGML_CUDA=on "
                                 "make llama-server)")


def measure_specials(server_client: RerankClient, tokenize) -> int:
    """Tokens the server adds around a pair, read from its own answer: the ``usage.prompt_tokens`` of one
    one-token query and document, minus their tokens (BOS query EOS SEP document EOS for XLM-R: 4)."""
    server_client.rerank("a", ["b"])
    used = int(server_client.last_usage.get("prompt_tokens", 0))
    specials = used - len(tokenize("a")) - len(tokenize("b"))
    if used <= 0 or specials < 0:
        raise RerankError(f"the server reported {used} prompt tokens for a one-token query and document; "
                          "cannot tell the tokens it adds around a pair")
    return specials


def load(request: LoadRequest) -> LlamaServerReranker:
    from transformers import AutoConfig

    folder, precision = request.folder, request.variant.precision
    gguf.check_convertible(folder)
    if request.user_file is not None:
        path, source = request.user_file, f"user file {request.user_file.name}"
    else:
        path = gguf_file(folder, request.exports, precision)
        source = "llama.cpp convert_hf_to_gguf.py (F16)" + ("" if precision == "f16" else f" then llama_model_quantize to {precision.upper()}")
    try:
        binary = server_binary()
    except ServerUnavailable as exc:
        raise VariantUnavailable(str(exc)) from None
    tokens_per_batch = max(request.max_length, request.tokens_per_call or TOKENS_PER_CALL)
    no_repack = amx_repack_crashes()
    command = server_command(binary, path, slots=request.server_slots, tokens_per_batch=tokens_per_batch,
                             threads=request.threads, device=request.device,
                             device_index=device_index(request.device) if request.device.startswith("cuda") else 0)
    if no_repack:
        command.append("--no-repack")
    server = ServerProcess("llama-server", command).start()

    def build() -> LlamaServerReranker:
        client = RerankClient(server.url, "/v1/rerank", "jina", timeout_s=request.server_timeout_s)
        config = AutoConfig.from_pretrained(folder, local_files_only=True) if (folder / "config.json").is_file() else None
        file_type = FILE_TYPE_LINE.search(server.log_text())
        reranker = LlamaServerReranker(
            variant=request.variant, device=request.device, weight_files=[Path(path)],
            executed_precision=file_type["type"].strip() if file_type else precision.upper(), config=config,
            server=server, client=client, specials=0, tokens_per_batch=tokens_per_batch,
            buffers=buffer_sizes(server.log_text().splitlines()))
        reranker.specials = measure_specials(client, reranker.tokenize_text)
        log_text = server.log_text()
        shown = [Path(part).name if part in (str(binary), str(path)) else part for part in command]
        reranker.details.update(
            server="llama-server", llama_cpp_python=llama_cpp_version(), source=source, build=build_record(),
            command=" ".join(shown), slots=request.server_slots, tokens_per_call=tokens_per_batch,
            threads=request.threads, server_start_s=round(server.started_s, 3), specials=reranker.specials,
            tensor_types={m["type"].upper(): int(m["count"]) for m in TYPE_LINE.finditer(log_text)},
            amx_repack="disabled (--no-repack): " + AMX_NOTE if no_repack else "not used",
            client="httpx, one request per query (Jina shape, /v1/rerank), on this machine: client and server share its cores",
            truncation={"cut_pairs": 0, "tokens_exact": 0})
        return reranker

    return while_serving(server, build)


BACKEND = Backend(name="server", extra="gguf", variants=VARIANTS, load=load, runtime_modules=("httpx",),
                  prepare=gguf.prepare, check_device=check_device, user_file_suffix=".gguf",
                  artifacts=gguf.artifacts, family_note=gguf.SERVED_LLM_NOTE)
