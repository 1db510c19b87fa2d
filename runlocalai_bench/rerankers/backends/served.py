"""Served variants: the suite's own GGUF files behind llama.cpp's ``llama-server`` on 127.0.0.1, called over HTTP
the way a RAG application calls it (one request = one query with its candidates).

Same files as the in-process ``gguf-*`` variants (converted and quantized by the same llama.cpp), so the served
and in-process rows of one file differ only by the server: its tokenization, its batching of candidates over its
slots, HTTP and JSON. The server is started when the variant loads and stopped when it closes (and when this
process exits or is killed: :mod:`serving.process`); a server that dies mid-run fails the execution with its log's
last lines, and the port is free again.

Truncation: llama-server takes text, not tokens, and refuses a pair longer than its micro-batch. So the client
cuts each pair to the run's ``max_length`` as the in-process variants do: the server's own ``/tokenize`` (its
vocabulary, no specials, no special-token parsing: what its ``/rerank`` does), Hugging Face's ``longest_first``
rule over the query and document tokens (:func:`gguf.llamacpp.truncate_pair`, the same function the in-process
GGUF variants use), then, for the side that was cut, the kept tokens detokenized, or where that does not give
them back, a prefix of its own characters within the count (:meth:`ServedReranker._cut_text`). A prefix of a text
does not always tokenize to a prefix of its tokens (a word cut in two is split otherwise), so the client counts
the cut pairs whose tokens came back exactly (``details['truncation']``). The cutting is cached per pair: a timed round after
the warm-up sends requests only.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections import OrderedDict
from typing import ClassVar, Sequence

import httpx
import numpy as np

from runlocalai_bench.devices import device_index
from runlocalai_bench.rerankers.backends import gguf
from runlocalai_bench.rerankers.backends.gguf.convert import gguf_file, llama_cpp_version
from runlocalai_bench.rerankers.backends.gguf.llamacpp import (AMX_NOTE, LOGITS_KEY, TOKENS_PER_CALL, TYPE_LINE,
                                                               amx_repack_crashes, buffer_sizes, buffers_on,
                                                               ggml_compute_precision,
                                                               logits_estimate_mb, packed_shape, truncate_pair)
from runlocalai_bench.rerankers.backends.gguf.server import (BINARY_ENV, ServerUnavailable, build_record,
                                                             server_binary, server_command)
from runlocalai_bench.rerankers.base import (Backend, Features, LoadRequest, Pair, Progress,
                                             Reranker, Scores, Variant, VariantUnavailable)
from runlocalai_bench.serving.client import RerankClient, RerankError
from runlocalai_bench.serving.load import RerankRequest, Target
from runlocalai_bench.serving.process import ServerFailed, ServerProcess

REQUIRES = gguf.REQUIRES  # the conversion needs the gguf extra; the server itself is a binary (make llama-server)
VARIANTS = tuple(
    Variant(f"server-llama-{precision}", "server", precision, gguf.DEVICES, REQUIRES,
            f"llama-server (llama.cpp's HTTP server, same build as gguf-*) serving the GGUF {precision.upper()} "
            "file on 127.0.0.1; one request per query", same_file_as=f"gguf-{precision}",
            served=True)
    for precision in ("f16", "q8_0", "q4_k_m"))
FILE_TYPE_LINE = re.compile(r"file type\s*=\s*(?P<type>.+)")


@dataclass(eq=False, kw_only=True)
class ServedReranker(Reranker):
    """A reranker behind an HTTP server this process started; scores come back over loopback."""

    server: ServerProcess
    client: RerankClient
    specials: int  # tokens the server lays around a pair (BOS, EOS, SEP ...), measured at load
    tokens_per_batch: int  # the server's micro-batch: the most tokens one decode packs
    buffers: dict[str, float] = field(default_factory=dict)  # llama.cpp's buffer sizes, read from its start-up log
    _fitted: dict[tuple[str, str, int], tuple[str, str, int]] = field(default_factory=dict, repr=False)
    inexact: set[tuple[str, str, int]] = field(default_factory=set, repr=False)  # cut pairs whose tokens differ
    # Token ids of recent texts (a query's, reused for each of its candidates); bounded: a large run's documents
    # as Python int lists would take gigabytes of the client's memory. _fitted keeps only texts and lengths.
    _tokens: OrderedDict = field(default_factory=OrderedDict, repr=False)
    TOKEN_CACHE: ClassVar[int] = 1024

    # -- the server's tokenizer, for cutting pairs to max_length

    def tokenize_text(self, text: str) -> list[int]:
        cached = self._tokens.get(text)
        if cached is None:
            cached = self._call(lambda: self.client.post(
                "/tokenize", {"content": text, "add_special": False, "parse_special": False})["tokens"])
            self._tokens[text] = cached
            if len(self._tokens) > self.TOKEN_CACHE:
                self._tokens.popitem(last=False)
        else:
            self._tokens.move_to_end(text)
        return cached

    def _count(self, text: str) -> list[int]:
        """The server's tokens of ``text`` (uncached: the cut's probes would only crowd the cache)."""
        return self._call(lambda: self.client.post(
            "/tokenize", {"content": text, "add_special": False, "parse_special": False})["tokens"])

    def _cut_text(self, text: str, keep: list[int]) -> tuple[str, int, bool]:
        """A cut of ``text`` that the server tokenizes to at most ``len(keep)`` tokens, as close to ``keep`` as it
        can be; with its token count and whether its tokens are exactly ``keep``. Tried in turn, the first exact one
        taken, else the one sharing the longest prefix with ``keep``:

        - ``keep`` detokenized (exact for most text: one ``/tokenize`` to check it);
        - where it is not (a piece that is not its text: an unknown character comes back as "<unk>", three tokens
          again; normalization rewrites characters), a prefix of the text's own characters within the count, found
          by bisection (token counts of prefixes grow almost but not strictly with length: a prefix that fits, not
          always the longest), and that prefix up to its last space (it may end in part of the next word)."""
        limit = len(keep)
        best: tuple[int, int, str] | None = None

        def judge(cut: str) -> bool:
            nonlocal best
            again = self._count(cut)
            if again == list(keep):
                best = (limit, len(again), cut)
                return True
            if len(again) <= limit:
                shared = next((i for i, (a, b) in enumerate(zip(again, keep)) if a != b), len(again))
                if best is None or (shared, len(again)) > best[:2]:
                    best = (shared, len(again), cut)
            return False

        if judge(self._call(lambda: self.client.post("/detokenize", {"tokens": list(keep)})["content"]).lstrip()):
            return best[2], best[1], True
        low, high = 0, len(text)
        while low < high:
            middle = (low + high + 1) // 2
            if len(self._count(text[:middle])) <= limit:
                low = middle
            else:
                high = middle - 1
        space = text.rfind(" ", 0, low)
        for cut in (text[:low], *((text[:space],) if space > 0 else ())):
            if judge(cut):
                return best[2], best[1], True
        return (best[2], best[1], False) if best is not None else ("", 0, False)

    def fit(self, query: str, doc: str, max_length: int) -> tuple[str, str, int]:
        """(query text, document text, tokens the server will see) of a pair cut to ``max_length`` tokens."""
        key = (query, doc, max_length)
        if key in self._fitted:
            return self._fitted[key]
        q_ids, d_ids = self.tokenize_text(query), self.tokenize_text(doc)
        q_keep, d_keep = truncate_pair(q_ids, d_ids, max_length - self.specials)
        q_text, d_text, q_len, d_len, exact = query, doc, len(q_ids), len(d_ids), True
        if len(q_keep) < len(q_ids):
            q_text, q_len, same = self._cut_text(query, q_keep)
            exact &= same
        if len(d_keep) < len(d_ids):
            d_text, d_len, same = self._cut_text(doc, d_keep)
            exact &= same
        if len(q_keep) + len(d_keep) < len(q_ids) + len(d_ids):
            counts = self.details.setdefault("truncation", {"cut_pairs": 0, "tokens_exact": 0})
            counts["cut_pairs"] += 1
            counts["tokens_exact"] += int(exact)
            if not exact:
                self.inexact.add(key)
        self._fitted[key] = (q_text, d_text, q_len + d_len + self.specials)
        return self._fitted[key]

    def token_lengths(self, pairs: Sequence[Pair], max_length: int) -> np.ndarray:
        return np.array([self.fit(q, d, max_length)[2] for q, d in pairs], dtype=np.int64)

    # -- scoring

    def _call(self, request):
        """Run one HTTP exchange; if it fails and the server has exited, say so with the server's log."""
        try:
            return request()
        except (httpx.HTTPError, RerankError, ValueError) as exc:  # ValueError: a body that is not JSON
            try:
                self.server.check()
            except ServerFailed as dead:
                raise ServerFailed(f"during a request: {dead}") from exc
            raise

    def score(self, pairs: Sequence[Pair], batch_size: int, max_length: int, length_sorted: bool = True,
              progress: Progress | None = None) -> Scores:
        """One request per query (its candidates in input order; ``batch_size`` and ``length_sorted`` are the
        server's business: it batches candidates over its slots). ``batch_seconds``/``batch_pairs`` are per
        request: a latency sample is one query's candidates."""
        fitted = [self.fit(q, d, max_length) for q, d in pairs]
        requests: dict[str, list[int]] = {}
        for index, (query, _, _) in enumerate(fitted):
            requests.setdefault(query, []).append(index)
        scores = np.empty(len(pairs), dtype=np.float32)
        seconds, sizes, done = [], [], 0
        for query, indices in requests.items():
            documents = [fitted[i][1] for i in indices]
            began = time.perf_counter()
            scores[indices] = self._call(lambda: self.client.rerank(query, documents))
            seconds.append(time.perf_counter() - began)
            sizes.append(len(indices))
            done += len(indices)
            if progress:
                progress(done, len(pairs))
        tokens = int(sum(f[2] for f in fitted))
        return Scores(scores, seconds, sizes, tokens, tokens)

    def load_target(self) -> Target:
        return Target(self.server.url, self.client.path, self.client.shape, self.client.model, self.client.timeout_s)

    def load_requests(self, queries: Sequence[Sequence[Pair]], max_length: int) -> list[RerankRequest]:
        """One request per query with its candidates, cut as :meth:`score` cuts them (a query cut differently next
        to different documents makes a request of its own, as in :meth:`score`)."""
        requests: list[RerankRequest] = []
        for pairs in queries:
            by_query: dict[str, list[str]] = {}
            for query, doc in pairs:
                q_text, d_text, _ = self.fit(query, doc, max_length)
                by_query.setdefault(q_text, []).append(d_text)
            requests += [RerankRequest(q, tuple(docs)) for q, docs in by_query.items()]
        return requests

    def tokenize(self, pairs: Sequence[Pair], max_length: int) -> Features:
        raise NotImplementedError("a served variant has no model-only path: the server tokenizes and batches itself")

    def forward(self, features: Features) -> np.ndarray:
        raise NotImplementedError("a served variant has no model-only path: the server tokenizes and batches itself")

    # -- what the measurements need to know: the GGUF file's, computed by the same ggml

    def compute_precision(self) -> str:
        return ggml_compute_precision(self.variant.precision, self.device)

    def weights_format(self) -> str:
        return self.variant.precision

    def activation_shape(self, batch_size: int, tokens: int) -> tuple[int, int]:
        return packed_shape(batch_size, tokens, self.tokens_per_batch)

    def output_buffer_mb(self, batch_size: int, tokens: int) -> float:
        return logits_estimate_mb(self.config, self.tokens_per_batch)  # sized at the server's micro-batch at start

    def memory_pid(self) -> int | None:
        return self.server.pid

    def check_alive(self) -> None:
        self.server.check(grace_s=0.5)

    def runtime_memory(self) -> dict[str, float] | None:
        """llama-server's buffers as its log reported them at start (host buffers on CPU, GPU buffers on CUDA), plus
        the logits buffer ``encode()`` sizes at the micro-batch and never logs (as for the in-process variant)."""
        found = buffers_on(self.buffers, self.device)
        if not self.device.startswith("cuda"):
            found = {k: v for k, v in found.items() if not k.startswith("output (")}
            found[LOGITS_KEY] = logits_estimate_mb(self.config, self.tokens_per_batch)
        return found or None

    def close(self) -> None:
        self.client.close()
        code = self.server.stop()
        self.details["server_exit_code"] = code


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


def load(request: LoadRequest) -> ServedReranker:
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
    try:
        client = RerankClient(server.url, "/v1/rerank", "jina", timeout_s=request.server_timeout_s)
        config = AutoConfig.from_pretrained(folder, local_files_only=True) if (folder / "config.json").is_file() else None
        log_text = server.log_text()
        file_type = FILE_TYPE_LINE.search(log_text)
        reranker = ServedReranker(
            variant=request.variant, device=request.device, weight_files=[Path(path)],
            executed_precision=file_type["type"].strip() if file_type else precision.upper(), config=config,
            server=server, client=client, specials=0, tokens_per_batch=tokens_per_batch,
            buffers=buffer_sizes(log_text.splitlines()))
        reranker.specials = measure_specials(client, reranker.tokenize_text)
    except BaseException as exc:  # a server that died on its first decode says why (its log) before it is cleaned up
        try:
            server.check()
        except ServerFailed as dead:
            server.stop()
            raise ServerFailed(f"while loading: {dead}") from exc
        server.stop()
        raise
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


BACKEND = Backend(name="server", extra="gguf", variants=VARIANTS, load=load, runtime_modules=("httpx",),
                  prepare=gguf.prepare, check_device=check_device, user_file_suffix=".gguf",
                  artifacts=gguf.artifacts)
