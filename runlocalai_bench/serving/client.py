"""The client side of a served reranker: one request = one query with its candidates, scores mapped back to the
candidates by the ``index`` each result carries (servers return results sorted by score, not in input order).

Two request shapes cover the servers the suite starts:

- Jina's, which llama-server's ``/v1/rerank`` speaks: ``{"query", "documents", "top_n"}`` -> ``results[].index``,
  ``results[].relevance_score`` and ``usage.prompt_tokens`` (llama.cpp ``tools/server``: ``post_rerank``,
  ``format_response_rerank``).
- Cohere's, which infinity's ``/rerank`` speaks: ``{"query", "documents", "return_documents", "raw_scores"}`` ->
  ``results[].index``, ``results[].relevance_score``.

httpx (sync here; the load generator drives the same requests concurrently) and not each server's own SDK: the
suite talks to several servers with one parser, and a raw HTTP client shows exactly what is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import httpx
import numpy as np


class RerankError(RuntimeError):
    """The server answered a rerank request with an error, or with results that do not cover the documents."""


def rerank_body(shape: str, query: str, documents: Sequence[str], model: str | None = None) -> dict[str, Any]:
    """The JSON body of one request in ``shape`` (``jina`` or ``cohere``). Every document's result is asked for
    (``top_n`` = all), and raw scores, not a sigmoid of them, where the server offers the choice: the in-process
    variants' scores are the model's logits."""
    if shape == "jina":
        body: dict[str, Any] = {"query": query, "documents": list(documents), "top_n": len(documents)}
    elif shape == "cohere":
        body = {"query": query, "documents": list(documents), "return_documents": False, "raw_scores": True,
                "top_n": len(documents)}
    else:
        raise ValueError(f"unknown request shape {shape!r}; accepted: jina, cohere")
    if model:
        body["model"] = model
    return body


def parse_scores(payload: dict[str, Any], documents: int) -> np.ndarray:
    """float32 scores in document order from a response's ``results`` (each with ``index`` and
    ``relevance_score``); every index must appear exactly once."""
    results = payload.get("results")
    if not isinstance(results, list):
        raise RerankError(f"response has no results list: {str(payload)[:300]}")
    scores = np.full(documents, np.nan, dtype=np.float32)
    for result in results:
        index = result.get("index")
        if not isinstance(index, int) or not 0 <= index < documents or not np.isnan(scores[index]):
            raise RerankError(f"result index {index!r} out of range or repeated ({documents} documents sent)")
        scores[index] = float(result["relevance_score"])
    missing = np.flatnonzero(np.isnan(scores))
    if missing.size:
        raise RerankError(f"{missing.size} of {documents} documents have no result (first index {int(missing[0])})")
    return scores


@dataclass
class RerankClient:
    """Requests to one server. ``path``: the rerank route; ``shape``: its request format (:func:`rerank_body`)."""

    base_url: str
    path: str = "/v1/rerank"
    shape: str = "jina"
    model: str | None = None
    timeout_s: float = 1800.0  # one request of a query's candidates on a slow CPU; a dead server fails at once
    _http: httpx.Client | None = field(default=None, repr=False)
    last_usage: dict[str, Any] = field(default_factory=dict)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(self.timeout_s, connect=10.0))
        return self._http

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        if response.status_code != 200:
            raise RerankError(f"POST {path} answered HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    def rerank(self, query: str, documents: Sequence[str]) -> np.ndarray:
        """Scores of ``documents`` for ``query``, in their order."""
        payload = self.post(self.path, rerank_body(self.shape, query, documents, self.model))
        self.last_usage = payload.get("usage") or {}
        return parse_scores(payload, len(documents))

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
