"""Scoring query-document pairs with a GGUF reranker through llama.cpp (llama-cpp-python's C API).

llama.cpp runs cross-encoders with *rank pooling*: the classification head sits on the [CLS] token and
``llama_get_embeddings_seq`` returns the relevance logit of each sequence. The high-level ``Llama.embed``
reads ``n_embd`` floats per sequence, which is wrong for rank pooling, so this module drives the C API
itself: tokenize with the GGUF's own vocabulary, lay the pair out exactly as ``llama-server``'s
``/rerank`` does (``format_prompt_rerank``: BOS query EOS SEP document EOS, per the vocabulary's flags),
pack pairs as separate sequences into ``llama_decode`` calls and read one logit per sequence.

Calls: an encoder-only model must see every token of a call in one micro-batch (llama.cpp asserts
``n_ubatch >= n_tokens``). A call packs up to ``batch_size`` pairs, in the caller's (length-sorted) order,
and at most ``tokens_per_call`` tokens (:data:`TOKENS_PER_CALL` = 512 by default, llama-server's default
micro-batch); a pair longer than that budget goes alone. The context is sized for one call (the budget, or
``max_length`` if larger) and rebuilt larger when a call needs more. Why a token budget and not
``batch_size`` pairs per call: packing has a price in llama.cpp. Attention runs over the whole micro-batch
under a mask, the compute buffer is reserved for its worst case, and ``encode()`` sizes its output buffer at
n_vocab float32 logits per token of the call (rank pooling reads one value per sequence; with XLM-R's 250,002
tokens that is 0.95 MiB per token). Measured with bge-reranker-v2-m3's shape twin on a 2-core AVX2 CPU
(2026-12-01): 8 pairs x 512 tokens per call held 4.97 GB at peak in Q4_K_M, one pair per call 1.70 GB, and
8 x 256-token pairs per call ran at 0.56 pairs/s against 0.83 one pair at a time. With llama-server's
default micro-batch a typical pair is decoded alone or with a few short ones, as here. llama_cpp is imported
inside the methods (optional extra, a native library).
"""

from __future__ import annotations

import ctypes
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from runlocalai_bench.devices import device_index
from runlocalai_bench.environment import compute_threads
from runlocalai_bench.rerankers.base import Features, Pair, Progress, Reranker, Scores, truncate_pair

log = logging.getLogger(__name__)
MAX_SEQUENCES = 256  # LLAMA_MAX_SEQ in llama.cpp: sequences one context can hold
TOKENS_PER_CALL = 512  # llama-server's default micro-batch (n_ubatch): the most tokens one call packs


def pack_calls(lengths: Sequence[int], order: Sequence[int], max_pairs: int, max_tokens: int) -> list[list[int]]:
    """Indices of the pairs each ``llama_decode`` call holds: consecutive pairs of ``order``, at most
    ``max_pairs`` and ``max_tokens`` tokens per call (a pair longer than ``max_tokens`` alone)."""
    calls: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for index in order:
        length = int(lengths[index])
        if current and (len(current) >= max_pairs or tokens + length > max_tokens):
            calls.append(current)
            current, tokens = [], 0
        current.append(int(index))
        tokens += length
    if current:
        calls.append(current)
    return calls


AMX_NOTE = ("ggml's AMX int8 matmul segfaults on Sapphire Rapids-class CPUs (llama.cpp issue 20824); weights "
            "stay in the file's own layout, computed by the AVX-512 kernels")


def amx_repack_crashes() -> bool:
    """True when this llama.cpp build would repack quantized weights for AMX (CPU reports AMX_INT8).

    Measured here (Xeon with AMX, llama-cpp-python 0.3.36 built -march=native): Q8_0 and Q4_K_M files crash in
    ``ggml_backend_amx_mul_mat`` on their first ``llama_decode``; F16 is unaffected. Turning off the extra
    (repacking) buffer types keeps every tensor in the CPU buffer, so the AMX kernel is never reached.
    """
    import llama_cpp

    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode(errors="replace")


# llama.cpp's own account of its allocations, as it logs them while loading a model and creating a context:
# "load_tensors:   CPU_Mapped model buffer size =   418.02 MiB", "sched_reserve:  CPU compute buffer size = ...".
# ... and what the file holds, as its loader counts it: "llama_model_loader: - type q4_K:   72 tensors".
TYPE_LINE = re.compile(r"llama_model_loader: - type\s+(?P<type>\w+):\s+(?P<count>\d+) tensors")
BUFFER_LINE = re.compile(r"(?P<where>[\w.-]+)\s+(?P<kind>model|KV|RS|output|compute) buffer size\s*=\s*(?P<mib>[\d.]+) MiB")


ALLOCATION_FAILED = re.compile(r"failed to allocate|out of memory|alloc(ation)? failed", re.IGNORECASE)
FLASH_ASKED = re.compile(r"flash_attn\s*=\s*(\w+)")
# "Flash Attention enabled", or where the backend lacks the kernel "... Flash Attention not supported, set to disabled"
FLASH_RESOLVED = re.compile(r"Flash Attention\b.*?\b(enabled|disabled)")
LOGITS_KEY = "output logits (CPU, computed: n_vocab x tokens of the largest call, not logged)"


class LlamaLog:
    """llama.cpp's log lines, kept for the buffer sizes it reports (no C API returns them), then handed to
    llama-cpp-python's own callback so what it prints is unchanged. One per process: llama.cpp has one log."""

    lines: list[str] = []
    _callback: Any = None

    @classmethod
    def install(cls) -> None:
        if cls._callback is not None:
            return
        import llama_cpp
        import llama_cpp._logger as upstream

        @llama_cpp.llama_log_callback
        def capture(level: int, text: bytes, user_data: Any) -> None:
            cls.lines.append(text.decode("utf-8", errors="replace"))
            upstream.llama_log_callback(level, text, user_data)

        cls._callback = capture  # referenced here: llama.cpp holds a raw pointer to it
        llama_cpp.llama_log_set(capture, ctypes.c_void_p(0))

    @classmethod
    def mark(cls) -> int:
        """Where the next lines will start. Called before a model load or a context creation (the only lines
        read back), it also drops what earlier reads no longer need, so the list stays short in long runs."""
        cls.lines.clear()
        return 0

    @classmethod
    def tensor_types_since(cls, mark: int) -> dict[str, int]:
        """Tensors per ggml type (upper case, as gguf-py names them) in the file loaded after ``mark``. Read from
        the loader's log rather than with gguf-py's reader, which parses every metadata array (the 250k-token
        vocabulary) and would put a transient peak of hundreds of MB into the measured process."""
        found: dict[str, int] = {}
        for line in cls.lines[mark:]:
            match = TYPE_LINE.search(line)
            if match:
                found[match["type"].upper()] = int(match["count"])
        return dict(sorted(found.items()))

    @classmethod
    def out_of_memory_note(cls) -> str:
        """" (out of memory: ...)" when llama.cpp's log since the last mark reports an allocation failure, else "":
        the C API returns a bare status, and only the log says a buffer did not fit."""
        failed = next((line.strip() for line in cls.lines if ALLOCATION_FAILED.search(line)), None)
        return f" (out of memory: {failed})" if failed else ""

    @classmethod
    def flash_attention_since(cls, mark: int) -> str:
        """What llama.cpp resolved flash attention to for the context created after ``mark`` ("auto -> enabled")."""
        asked = resolved = None
        for line in cls.lines[mark:]:
            asked = (FLASH_ASKED.search(line) or [None, asked])[1]
            resolved = (FLASH_RESOLVED.search(line) or [None, resolved])[1]
        return f"{asked or 'unlogged'} -> {resolved or 'not reported'}"

    @classmethod
    def buffers_since(cls, mark: int) -> dict[str, float]:
        """MiB per buffer (``"<kind> (<backend buffer>)"``) logged after ``mark``; a buffer logged twice (a
        context reserved again) keeps its last size."""
        return buffer_sizes(cls.lines[mark:])


def ggml_compute_precision(precision: str, device: str) -> str:
    """The precision the bulk of a GGUF file's FLOPs run in with ggml (in process or in llama-server)."""
    if precision in ("q8_0", "q4_k_m"):
        return "int8"  # ggml's quantized matmuls quantize activations to 8 bits and use integer dot products
    if not device.startswith("cuda"):
        return "fp32"  # ggml on CPUs widens f16 weights to f32 and multiplies in f32
    return "fp16"


def packed_shape(batch_size: int, tokens: int, tokens_per_call: int) -> tuple[int, int]:
    """llama.cpp packs a call's pairs into one masked sequence: its attention buffer grows with the square of the
    whole call (at most the token budget, or one pair), not of each pair."""
    return 1, max(tokens, min(batch_size * tokens, tokens_per_call))


def logits_estimate_mb(config: Any, call_tokens: int) -> float:
    """The n_vocab float32 logits per token of a call that ``encode()`` allocates (0 where the vocabulary is unknown)."""
    vocab = getattr(config, "vocab_size", None) if config is not None else None
    return call_tokens * vocab * 4 / 2**20 if vocab else 0.0


def buffer_sizes(lines: Sequence[str]) -> dict[str, float]:
    """MiB per buffer (``"<kind> (<backend buffer>)"``) in llama.cpp log lines; a buffer logged twice keeps its
    last size. Shared by the in-process variants (their log callback) and llama-server (its log file)."""
    found: dict[str, float] = {}
    for line in lines:
        for match in BUFFER_LINE.finditer(line):
            found[f"{match['kind']} ({match['where']})"] = float(match["mib"])
    return found


def buffers_on(buffers: dict[str, float], device: str) -> dict[str, float]:
    """Only the buffers on the counter a run on ``device`` is judged by: GPU buffers (``CUDA0``...) on CUDA, host
    buffers (``CPU``, ``CPU_Mapped``, pinned ``CUDA_Host``) on the CPU."""
    def on_gpu(key: str) -> bool:
        buffer = key.split("(", 1)[1].rstrip(")")
        return buffer.startswith(("CUDA", "ROCm", "Metal", "Vulkan")) and not buffer.endswith("_Host")

    return {k: v for k, v in buffers.items() if on_gpu(k) == device.startswith("cuda")}


class UnsupportedGGUF(RuntimeError):
    """The GGUF file is not a cross-encoder this module can score (no rank head, prompt-template rerankers)."""


@dataclass(eq=False)
class PreparedBatch:
    """A filled ``llama_batch`` and its shape; the native buffer is freed with the object."""

    batch: Any
    sequences: int
    tokens: int
    longest: int

    def __del__(self) -> None:
        try:
            import llama_cpp

            llama_cpp.llama_batch_free(self.batch)
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn the module down already
            pass


@dataclass
class TokenizedPairs:
    ids: list[list[int]]  # one laid-out sequence per pair, specials included

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.ids], dtype=np.int64)


@dataclass(eq=False, kw_only=True)
class LlamaCppReranker(Reranker):
    """A reranker backed by a llama.cpp model and context (``config`` is the checkpoint's Hugging Face config
    for FLOP counts, None for a bare .gguf file)."""

    threads: int
    tokens_per_call: int = TOKENS_PER_CALL
    _model: Any = None
    _vocab: Any = None
    _ctx: Any = None
    _capacity: tuple[int, int] = (0, 0)  # (tokens, sequences) the current context holds
    _specials: dict[str, list[int]] = field(default_factory=dict)
    _model_buffers: dict[str, float] = field(default_factory=dict)  # llama.cpp's log at model load
    _context_buffers: dict[str, float] = field(default_factory=dict)  # ... at the current context's creation
    _largest_call: int = 0  # tokens of the largest llama_decode call so far (sizes the unlogged logits buffer)
    # An LLM reranker (Qwen3-Reranker): the prompt is built by the family's rule with the checkpoint's own tokenizer
    # (the ids every torch variant of it scores), and rank pooling returns the softmax over its two answer tokens.
    encoder: Any = None

    # -- lifecycle

    @classmethod
    def load(cls, variant: Any, device: str, path: Path, config: Any, threads: int | None = None,
             tokens_per_call: int = TOKENS_PER_CALL, encoder: Any = None) -> "LlamaCppReranker":
        import llama_cpp
        import llama_cpp.llama  # noqa: F401 - installs llama-cpp-python's log callback, silenced below

        logging.getLogger("llama-cpp-python").setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.ERROR)
        LlamaLog.install()
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 999 if device.startswith("cuda") else 0  # every layer on the GPU, or none
        if device.startswith("cuda"):
            # One GPU, the one the device names (plain cuda: the first), never llama.cpp's default split of the
            # layers over every visible GPU: the suite measures one device (NVML samples that one, the peaks and
            # MFU are per GPU), and a split's numbers would be a multi-GPU system's. No split is offered.
            params.split_mode = llama_cpp.LLAMA_SPLIT_MODE_NONE
            params.main_gpu = device_index(device)
        params.use_mmap = True
        amx_disabled = amx_repack_crashes()
        if amx_disabled:
            params.use_extra_bufts = False
        mark = LlamaLog.mark()
        model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not model:
            raise UnsupportedGGUF(f"{path}: llama.cpp could not load this file (see its log above)")
        model_buffers, types = LlamaLog.buffers_since(mark), LlamaLog.tensor_types_since(mark)
        threads = threads or compute_threads()
        reranker = cls(variant=variant, device=device, weight_files=[Path(path)], executed_precision=_file_type(model),
                       config=config, threads=threads, tokens_per_call=tokens_per_call, encoder=encoder)
        reranker._model = model
        reranker._model_buffers = model_buffers
        reranker._vocab = llama_cpp.llama_model_get_vocab(model)
        if encoder is None:
            reranker._check_rank_head(path)
        else:
            reranker._check_answer_head(path)
        reranker._specials = reranker._layout()
        reranker.details.update(amx_repack="disabled: " + AMX_NOTE if amx_disabled else "not used",
                                threads=threads, tokens_per_call=tokens_per_call,
                                layout=reranker.layout_description(),
                                n_gpu_layers=params.n_gpu_layers, model_desc=_model_desc(model), tensor_types=types)
        return reranker

    def _check_rank_head(self, path: Path) -> None:
        import llama_cpp

        if llama_cpp.llama_model_chat_template(self._model, b"rerank"):
            raise UnsupportedGGUF(f"{path}: a prompt-template reranker (chat_template.rerank); only cross-encoders "
                                  "with a classification head are supported")
        if llama_cpp.llama_model_n_cls_out(self._model) < 1:
            raise UnsupportedGGUF(f"{path}: no classification head (n_cls_out = 0): not a reranker")

    def _check_answer_head(self, path: Path) -> None:
        """An LLM reranker's GGUF must carry the rank head the converter writes from its answer tokens, in the
        order the score reads them (``yes`` then ``no``)."""
        import llama_cpp

        labels = [(llama_cpp.llama_model_cls_label(self._model, i) or b"").decode()
                  for i in range(llama_cpp.llama_model_n_cls_out(self._model))]
        wanted = [self.encoder.rule.true_token, self.encoder.rule.false_token]
        if labels != wanted:
            raise UnsupportedGGUF(f"{path}: its rank head reads {labels or 'nothing'}, the {self.encoder.rule.name} "
                                  f"score needs {wanted} (convert with llama.cpp b6578 or later: older files crash or "
                                  "score wrong, llama.cpp issues 13820 and 16407)")

    def _layout(self) -> dict[str, list[int]]:
        """Specials around query and document, following llama-server's ``format_prompt_rerank``."""
        import llama_cpp

        vocab = self._vocab
        bos, eos, sep = (llama_cpp.llama_vocab_bos(vocab), llama_cpp.llama_vocab_eos(vocab),
                         llama_cpp.llama_vocab_sep(vocab))
        if eos == llama_cpp.LLAMA_TOKEN_NULL:
            eos = sep
        add_bos, add_eos, add_sep = (llama_cpp.llama_vocab_get_add_bos(vocab), llama_cpp.llama_vocab_get_add_eos(vocab),
                                     llama_cpp.llama_vocab_get_add_sep(vocab))
        return {"prefix": [bos] if add_bos else [],
                "middle": ([eos] if add_eos else []) + ([sep] if add_sep else []),
                "suffix": [eos] if add_eos else []}

    def layout_description(self) -> str:
        if self.encoder is not None:
            return f"{self.encoder.rule.name} prompt ({self.encoder.template_tokens()} template tokens)"
        names = {k: [self.token_text(t) for t in v] for k, v in self._specials.items()}
        return f"{' '.join(names['prefix'])} query {' '.join(names['middle'])} document {' '.join(names['suffix'])}".strip()

    def token_text(self, token: int) -> str:
        import llama_cpp

        buffer = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, True)
        return buffer.raw[: max(n, 0)].decode("utf-8", errors="replace")

    def close(self) -> None:
        import llama_cpp

        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:  # contexts hold GBs; do not wait for interpreter exit
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn the module down already
            pass

    def runtime_memory(self) -> dict[str, float] | None:
        """llama.cpp's buffers as it logged them: the model's (at load) and the current context's (output,
        compute; KV for models that have one), MiB each, keyed ``"<kind> (<backend buffer>)"``; only those on the
        counter this run is judged by: GPU buffers (``CUDA0``...) on CUDA, host buffers (``CPU``, ``CPU_Mapped``,
        pinned ``CUDA_Host``) on the CPU."""
        parts = buffers_on({**self._model_buffers, **self._context_buffers}, self.device)
        if self._largest_call and not self.device.startswith("cuda"):  # a host buffer: not on the GPU's counter
            # encode() replaced the output buffer logged at the context's creation (sized for n_seq_max outputs)
            # by this one: counting both would count the output twice.
            parts = {k: v for k, v in parts.items() if not k.startswith("output (")}
            parts[LOGITS_KEY] = self.logits_buffer_mib()
        return parts or None

    def logits_buffer_mib(self) -> float:
        """The output buffer llama.cpp's ``encode()`` sizes at the largest call and never logs: ``n_vocab`` float32
        logits for every token of the call, although rank pooling reads one value per sequence (the logits
        flags of the batch do not change it: measured). With bge-reranker-v2-m3's 250,002-token vocabulary that
        is 0.95 MiB per token: 3.9 GiB for 8 pairs x 512 tokens in one call, 0.49 GiB for llama-server's
        512-token micro-batch. Measured on its shape twin (AMD EPYC, llama-cpp-python 0.3.36): the first 8 x 512
        call grew the anonymous resident set by 4,001 MB; this formula gives 4,096 MB (3,906 MiB)."""
        import llama_cpp

        return self._largest_call * llama_cpp.llama_vocab_n_tokens(self._vocab) * 4 / 2**20

    # -- what the measurements need to know (weights stay in the mmapped file's format: weight_bytes = file_bytes)

    def compute_precision(self) -> str:
        return ggml_compute_precision(self.variant.precision, self.device)

    def weights_format(self) -> str:
        return self.variant.precision  # f16 | q8_0 | q4_k_m: the file's own block formats

    def activation_shape(self, batch_size: int, tokens: int) -> tuple[int, int]:
        return packed_shape(batch_size, tokens, self.tokens_per_call)

    def output_buffer_mb(self, batch_size: int, tokens: int) -> float:
        """The logits buffer ``encode()`` sizes at a call's tokens (:meth:`logits_buffer_mib`), for the estimate."""
        return logits_estimate_mb(self.config, self.activation_shape(batch_size, tokens)[1])

    # -- tokenization

    def _tokenize_text(self, text: str) -> list[int]:
        import llama_cpp

        data = text.encode("utf-8")
        size = max(16, len(data) + 8)
        while True:
            buffer = (llama_cpp.llama_token * size)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, size, False, False)
            if n >= 0:
                return list(buffer[:n])
            size = -n

    def encode_pair(self, query: str, doc: str, max_length: int) -> list[int]:
        specials = self._specials
        budget = max_length - sum(len(v) for v in specials.values())
        q, d = truncate_pair(self._tokenize_text(query), self._tokenize_text(doc), budget)
        return specials["prefix"] + q + specials["middle"] + d + specials["suffix"]

    def encode(self, pairs: Sequence[Pair], max_length: int) -> TokenizedPairs:
        if self.encoder is not None:
            return TokenizedPairs(self.encoder.encode(pairs, max_length))
        return TokenizedPairs([self.encode_pair(q, d, max_length) for q, d in pairs])

    def tokenize(self, pairs: Sequence[Pair], max_length: int) -> Features:
        """Features for the model-only workload: the padded ``input_ids`` + ``attention_mask`` shape the timing
        code inspects, and the ``llama_batch``es :meth:`forward` decodes (llama.cpp packs sequences unpadded, up
        to the token budget per call)."""
        encoded = self.encode(pairs, max_length)
        width = int(encoded.lengths.max()) if encoded.ids else 0
        ids = np.zeros((len(encoded.ids), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, seq in enumerate(encoded.ids):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        calls = pack_calls(encoded.lengths, range(len(encoded.ids)), MAX_SEQUENCES, self.tokens_per_call)
        return {"input_ids": ids, "attention_mask": mask,
                "llama_batches": [self.prepare([encoded.ids[i] for i in call]) for call in calls]}

    def token_lengths(self, pairs: Sequence[Pair], max_length: int) -> np.ndarray:
        return self.encode(pairs, max_length).lengths

    # -- inference

    def _ensure_context(self, tokens: int, sequences: int) -> None:
        import llama_cpp

        have_tokens, have_sequences = self._capacity
        if self._ctx and tokens <= have_tokens and sequences <= have_sequences:
            return
        if self._ctx:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        sequences = max(sequences, have_sequences)
        # llama.cpp splits n_ctx evenly across sequences: keep it a multiple so nothing is rounded away.
        tokens = -(-max(tokens, have_tokens) // sequences) * sequences
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = params.n_batch = params.n_ubatch = tokens
        params.n_seq_max = sequences
        params.embeddings = True
        params.pooling_type = llama_cpp.LLAMA_POOLING_TYPE_RANK
        params.n_threads = params.n_threads_batch = self.threads
        # Flash attention where the backend has the kernel (llama.cpp decides; what it chose is read from its log):
        # without it a long pair's attention scores are materialised, n_tokens^2 per head, and a context sized for
        # one 8,192-token pair needs gigabytes of compute buffer on a GPU.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
        if not self.device.startswith("cuda"):
            params.op_offload = False  # a CUDA build must not move a CPU variant's work to the GPU
        mark = LlamaLog.mark()
        ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not ctx:
            raise RuntimeError(f"llama.cpp could not create a context of {tokens} tokens x {sequences} sequences"
                               f"{LlamaLog.out_of_memory_note()}")
        self._ctx, self._capacity = ctx, (tokens, sequences)
        self._context_buffers = LlamaLog.buffers_since(mark)
        self.details["flash_attention"] = LlamaLog.flash_attention_since(mark)
        self.details["context_tokens"] = tokens
        self.details["context_sequences"] = sequences
        if self.encoder is not None:  # a decoder keeps K and V per token: llama.cpp's default cache type, as served
            self.details["kv_cache"] = (f"K {_ggml_type(params.type_k)}, V {_ggml_type(params.type_v)} "
                                        "(llama.cpp's default, as llama-server keeps them)")

    def reserve(self, pairs_per_call: int, max_length: int) -> None:
        """Size the context for one call: up to ``pairs_per_call`` pairs within the token budget, or one pair of
        ``max_length`` tokens where that is more."""
        if self.encoder is not None:  # an LLM reranker's template comes on top of max_length
            max_length += self.encoder.template_tokens()
        self._ensure_context(max(max_length, min(pairs_per_call * max_length, self.tokens_per_call)),
                             min(pairs_per_call, MAX_SEQUENCES))

    def prepare(self, sequences: Sequence[Sequence[int]]) -> "PreparedBatch":
        """A ``llama_batch`` holding ``sequences`` (each its own sequence id), filled in Python once."""
        import llama_cpp

        if len(sequences) > MAX_SEQUENCES:
            raise ValueError(f"{len(sequences)} pairs in one call; llama.cpp holds at most {MAX_SEQUENCES}")
        total = sum(len(s) for s in sequences)
        batch = PreparedBatch(llama_cpp.llama_batch_init(total, 0, 1), len(sequences), total,
                              max(len(s) for s in sequences))
        position = 0
        for seq_id, tokens in enumerate(sequences):
            for pos, token in enumerate(tokens):
                batch.batch.token[position] = token
                batch.batch.pos[position] = pos
                batch.batch.n_seq_id[position] = 1
                batch.batch.seq_id[position][0] = seq_id
                batch.batch.logits[position] = True
                position += 1
        batch.batch.n_tokens = total
        return batch

    def decode_prepared(self, prepared: "PreparedBatch") -> np.ndarray:
        """One ``llama_decode`` of a prepared batch; one logit per sequence."""
        import llama_cpp

        # llama.cpp's encoder needs the call's tokens in one micro-batch, not n_ctx / n_seq_max per sequence
        # (measured: a 100-token pair decodes with 3 others in a 144-token, 4-sequence context, scores unchanged).
        self._ensure_context(prepared.tokens, prepared.sequences)
        memory = llama_cpp.llama_get_memory(self._ctx)
        if memory:
            llama_cpp.llama_memory_clear(memory, True)
        self._largest_call = max(self._largest_call, prepared.tokens)
        status = llama_cpp.llama_decode(self._ctx, prepared.batch)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status} for {prepared.sequences} pairs, {prepared.tokens} tokens"
                               f"{LlamaLog.out_of_memory_note()}")
        scores = np.empty(prepared.sequences, dtype=np.float32)
        for seq_id in range(prepared.sequences):
            pointer = llama_cpp.llama_get_embeddings_seq(self._ctx, seq_id)
            if not pointer:
                raise RuntimeError(f"llama.cpp returned no rank output for sequence {seq_id}")
            if self.encoder is None:
                scores[seq_id] = pointer[0]
            else:  # softmax over (yes, no): the log-odds, the score every torch variant of the family gives
                scores[seq_id] = np.log(max(pointer[0], np.finfo(np.float32).tiny)) - np.log(
                    max(pointer[1], np.finfo(np.float32).tiny))
        return scores

    def decode(self, sequences: Sequence[Sequence[int]]) -> np.ndarray:
        """Prepare and decode ``sequences`` in one call (the end-to-end path)."""
        return self.decode_prepared(self.prepare(sequences))

    def forward(self, features: Features) -> np.ndarray:
        """Model only: ``llama_decode`` of the batches :meth:`tokenize` prepared (filling a ``llama_batch`` is a
        Python loop over every token: it belongs to tokenization, not to the model's time)."""
        scores = [self.decode_prepared(batch) for batch in features["llama_batches"]]
        return np.concatenate(scores) if scores else np.empty(0, dtype=np.float32)

    def score(self, pairs: Sequence[Pair], batch_size: int, max_length: int, length_sorted: bool = True,
              progress: Progress | None = None) -> Scores:
        """End to end: text in, scores out, up to ``batch_size`` pairs and ``tokens_per_call`` tokens per
        ``llama_decode`` call (:func:`pack_calls`). ``batch_seconds`` and ``batch_pairs`` are per group of
        ``batch_size`` pairs (consecutive calls summed until they reach it), so a latency sample means the same
        number of pairs as another backend's batch; ``details['pairs_per_call']`` says how calls were packed."""
        self.reserve(min(batch_size, MAX_SEQUENCES), max_length)
        encoded = self.encode(pairs, max_length)
        lengths = encoded.lengths
        order = np.argsort(-lengths, kind="stable") if length_sorted else np.arange(len(pairs))
        scores = np.empty(len(pairs), dtype=np.float32)
        seconds, sizes, done = [], [], 0
        group_seconds, group_pairs = 0.0, 0
        calls = pack_calls(lengths, order, min(batch_size, MAX_SEQUENCES), self.tokens_per_call)
        for call in calls:
            began = time.perf_counter()
            scores[call] = self.decode([encoded.ids[i] for i in call])
            group_seconds += time.perf_counter() - began
            group_pairs += len(call)
            if group_pairs >= batch_size or call is calls[-1]:
                seconds.append(group_seconds)
                sizes.append(group_pairs)
                group_seconds, group_pairs = 0.0, 0
            done += len(call)
            if progress:
                progress(done, len(pairs))
        self.details["pairs_per_call"] = round(len(pairs) / len(calls), 2) if calls else None
        total = int(lengths.sum())
        return Scores(scores, seconds, sizes, total, total)  # packed unpadded: padded = real tokens


def _ggml_type(value: int) -> str:
    import llama_cpp

    names = {getattr(llama_cpp, n): n.removeprefix("GGML_TYPE_").lower() for n in dir(llama_cpp)
             if n.startswith("GGML_TYPE_") and isinstance(getattr(llama_cpp, n), int)}
    return names.get(int(value), str(value))


def _model_desc(model: Any) -> str:
    import llama_cpp

    buffer = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(model, buffer, len(buffer))
    return buffer.value.decode()


def _file_type(model: Any) -> str:
    """What the file holds, as llama.cpp names it (e.g. ``Q4_K - Medium``), from its description."""
    desc = _model_desc(model)
    parts = desc.split(" ", 2)
    return parts[2] if len(parts) == 3 else desc
