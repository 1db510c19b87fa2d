"""The reranker behind every served backend: a server this process started on 127.0.0.1, called over HTTP the way
a RAG application calls it (one request = one query with its candidates, scores mapped back by ``index``).

What the servers share lives here: cutting each pair to the run's ``max_length`` before the server sees it,
sending one request per query, the load generator's requests, and failing with the server's log when it has
died. What differs is the backend's (``backends/llama_server.py``, ``backends/infinity.py``): whose tokenizer
counts the tokens (llama-server's own ``/tokenize``; infinity's is the checkpoint's Hugging Face tokenizer, read
here from the same folder), how a kept token list becomes text again, and what the server's memory and
precision are.

Truncation: a server takes text, not tokens, and either refuses a pair longer than it can batch (llama-server)
or cuts it at the tokenizer's own limit, not the run's (infinity). So the client cuts each pair to the run's
``max_length`` as the in-process variants do: Hugging Face's ``longest_first`` rule over the query and document
tokens (:func:`base.truncate_pair`, the function the in-process GGUF variants use), then, for the side that was
cut, the backend's text for the kept tokens, or where that does not give them back, a prefix of the text's own
characters within the count (:meth:`ServedReranker._cut_text`). A prefix of a text does not always tokenize to a
prefix of its tokens (a word cut in two is split otherwise), so the client counts the cut pairs whose tokens came
back exactly (``details['truncation']``). The cutting is cached per pair: a timed round after the warm-up sends
requests only.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Sequence, TypeVar

import httpx
import numpy as np

from runlocalai_bench.rerankers.base import Features, Pair, Progress, Reranker, Scores, truncate_pair
from runlocalai_bench.serving.client import RerankClient, RerankError
from runlocalai_bench.serving.load import RerankRequest, Target
from runlocalai_bench.serving.process import ServerFailed, ServerProcess

R = TypeVar("R")


@dataclass(eq=False, kw_only=True)
class ServedReranker(Reranker):
    """A reranker behind an HTTP server this process started; scores come back over loopback."""

    server: ServerProcess
    client: RerankClient
    specials: int  # tokens the server lays around a pair (BOS, EOS, SEP ...)
    _fitted: dict[tuple[str, str, int], tuple[str, str, int]] = field(default_factory=dict, repr=False)
    inexact: set[tuple[str, str, int]] = field(default_factory=set, repr=False)  # cut pairs whose tokens differ
    # Token ids of recent texts (a query's, reused for each of its candidates); bounded: a large run's documents
    # as Python int lists would take gigabytes of the client's memory. _fitted keeps only texts and lengths.
    _tokens: OrderedDict = field(default_factory=OrderedDict, repr=False)
    TOKEN_CACHE: ClassVar[int] = 1024

    # -- the server's tokenizer, for cutting pairs to max_length (the backend's)

    @abstractmethod
    def _count(self, text: str) -> list[int]:
        """The server's tokens of ``text``, no specials (uncached: the cut's probes would only crowd the cache)."""

    @abstractmethod
    def _kept_text(self, text: str, keep: list[int]) -> str:
        """The backend's best text for the first ``len(keep)`` tokens of ``text`` (checked by the caller)."""

    def tokenize_text(self, text: str) -> list[int]:
        cached = self._tokens.get(text)
        if cached is None:
            cached = self._count(text)
            self._tokens[text] = cached
            if len(self._tokens) > self.TOKEN_CACHE:
                self._tokens.popitem(last=False)
        else:
            self._tokens.move_to_end(text)
        return cached

    def _cut_text(self, text: str, keep: list[int]) -> tuple[str, int, bool]:
        """A cut of ``text`` that the server tokenizes to at most ``len(keep)`` tokens, as close to ``keep`` as it
        can be; with its token count and whether its tokens are exactly ``keep``. Tried in turn, the first exact one
        taken, else the one sharing the longest prefix with ``keep``:

        - the backend's text for ``keep`` (:meth:`_kept_text`; exact for most text: one count to check it);
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

        if judge(self._call(lambda: self._kept_text(text, keep))):
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

    def _call(self, request: Callable[[], R]) -> R:
        """Run one exchange with the server; if it fails and the server has exited, say so with the server's log."""
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
        server's business: it batches candidates itself). ``batch_seconds``/``batch_pairs`` are per request: a
        latency sample is one query's candidates."""
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

    # -- the server's process

    def memory_pid(self) -> int | None:
        return self.server.pid

    def check_alive(self) -> None:
        self.server.check(grace_s=0.5)

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            self.details["server_exit_code"] = self.server.stop()


def while_serving(server: ServerProcess, build: Callable[[], R]) -> R:
    """``build()`` (the reranker around a started server, with its first requests); if it fails, the server is
    stopped, and a server that died on its first requests says why (its log) before it is cleaned up."""
    try:
        return build()
    except BaseException as exc:
        try:
            server.check()
        except ServerFailed as dead:
            server.stop()
            raise ServerFailed(f"while loading: {dead}") from exc
        server.stop()
        raise
