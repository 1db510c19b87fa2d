"""Hosted rerankers (``api:<provider>/<model>``): Cohere, Voyage and Jina's rerank APIs as comparison rerankers,
scoring exactly the candidates the local rerankers score.

What is measured of them is their *quality on the same candidates*; their speed is not comparable with a local
variant's (the network and the provider's fleet are in it), so the per-request latency they record is labelled
"network included" and never joins the throughput table.

Request shapes, each written from the provider's API reference (the address is :attr:`Provider.docs`):

- Cohere ``POST /v2/rerank``: ``model, query, documents, top_n, max_tokens_per_doc`` -> ``results[].index``,
  ``results[].relevance_score``, ``meta.billed_units.search_units``. One search unit is one query with up to 100
  documents (cohere.com/pricing); the API takes up to 10,000 documents per request (Cohere's "Best Practices for
  using Rerank").
- Voyage ``POST /v1/rerank``: ``query, documents, model, top_k, truncation`` -> ``data[].index``,
  ``data[].relevance_score``, ``usage.total_tokens``. At most 1,000 documents, and "query tokens x documents + the
  documents' tokens" within the model's request limit (docs.voyageai.com/reference/reranker-api).
- Jina ``POST /v1/rerank``: ``model, query, documents, top_n, return_documents`` -> ``results[].index``,
  ``results[].relevance_score``, ``usage.total_tokens`` (jina.ai/reranker, the API section).

OpenAI publishes no rerank endpoint, so there is no ``api:openai``.

Why httpx and not the official clients (``cohere``, ``voyageai``): the suite needs what the SDKs hide or
handle their own way: each attempt's status (a 429 and its Retry-After are counted and honoured by one policy
for the three providers), the raw usage fields the bill is computed from, a base URL that may be a proxy or a
local server speaking the same shape, and one response cache keyed on exactly what was sent. Both SDKs would also
add their own dependency trees for what is one POST per query.

Keys come from the environment only (:attr:`Provider.key_variable`). They are read when a request is sent, never
stored on an object that is written anywhere, never part of a cache key or a cached file, and removed from any
error text before it is raised (:func:`without_key`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import httpx
import numpy as np
import yaml

from runlocalai_bench.serving.client import RerankError, parse_scores

HOSTED_PREFIX = "api:"
HOSTED_VARIANT = "hosted"  # the variant column of a hosted reranker's rows
HOSTED_DEVICE = "network"  # and its device column: not a device of this machine
LATENCY_LABEL = "network included"
PRICES_FILE = "prices.yaml"  # in the run's references folder (params/references/)
RETRIED_STATUSES = (408, 409, 429, 500, 502, 503, 504)  # worth another attempt; other errors are final


@dataclass(frozen=True)
class Provider:
    """One provider's rerank API: where it is, how a request and its answer look, how it bills."""

    name: str
    key_variable: str
    base_url: str  # with the API version: the request goes to base_url + path
    path: str
    docs: str  # the API reference the request shape was written from
    max_documents: int  # documents per request
    unit: str  # what the response bills: search_units | tokens
    results_key: str  # where the scored documents are: results | data
    # Voyage: the most "query tokens x documents + documents' tokens" one request may carry (None: no such limit),
    # and the models with another limit than that one
    max_request_tokens: int | None = None
    request_tokens_by_model: tuple[tuple[str, int], ...] = ()

    @property
    def host(self) -> str:
        """The provider's own host: the one its key is meant for."""
        return urlparse(self.base_url).hostname or ""

    def request_token_limit(self, model: str) -> int | None:
        """The most tokens one request of ``model`` may carry (None: no limit but the document count)."""
        return dict(self.request_tokens_by_model).get(model, self.max_request_tokens)

    def body(self, model: str, query: str, documents: Sequence[str], max_tokens_per_doc: int | None) -> dict[str, Any]:
        """The JSON body of one request: every document's score asked for (top_n / top_k = all)."""
        if self.name == "cohere":
            body: dict[str, Any] = {"model": model, "query": query, "documents": list(documents),
                                    "top_n": len(documents)}
            if max_tokens_per_doc is not None:
                body["max_tokens_per_doc"] = max_tokens_per_doc
            return body
        if self.name == "voyage":
            return {"query": query, "documents": list(documents), "model": model, "top_k": len(documents),
                    "truncation": True}
        return {"model": model, "query": query, "documents": list(documents), "top_n": len(documents),
                "return_documents": False}

    def parse(self, payload: dict[str, Any], documents: int) -> tuple[np.ndarray, float | None]:
        """(scores in document order, units billed) of one response; an answer that does not cover every document
        exactly once is a :class:`RerankError`."""
        if self.results_key != "results":
            payload = {**payload, "results": payload.get(self.results_key)}
        scores = parse_scores(payload, documents)
        if self.unit == "search_units":
            units = ((payload.get("meta") or {}).get("billed_units") or {}).get("search_units")
        else:
            units = (payload.get("usage") or {}).get("total_tokens")
        return scores, (float(units) if isinstance(units, (int, float)) else None)


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("cohere", "COHERE_API_KEY", "https://api.cohere.com/v2", "/rerank",
             "https://docs.cohere.com/v2/reference/rerank", max_documents=1000, unit="search_units",
             results_key="results"),
    Provider("voyage", "VOYAGE_API_KEY", "https://api.voyageai.com/v1", "/rerank",
             "https://docs.voyageai.com/reference/reranker-api", max_documents=1000, unit="tokens",
             results_key="data", max_request_tokens=600_000,  # rerank-2.5(-lite), rerank-2(-lite), per the reference
             request_tokens_by_model=(("rerank-1", 300_000), ("rerank-lite-1", 300_000))),
    Provider("jina", "JINA_API_KEY", "https://api.jina.ai/v1", "/rerank",
             "https://jina.ai/reranker", max_documents=100, unit="tokens", results_key="results"),
)}


class HostedError(RuntimeError):
    """A hosted reranker cannot run as asked (unknown provider, a key refused, an unsafe base URL)."""


@dataclass(frozen=True)
class HostedSpec:
    """``api:cohere/rerank-v3.5`` -> provider ``cohere``, model ``rerank-v3.5``."""

    provider: Provider
    model: str

    @property
    def spec(self) -> str:
        return f"{HOSTED_PREFIX}{self.provider.name}/{self.model}"


def is_hosted(spec: str | None) -> bool:
    return isinstance(spec, str) and spec.startswith(HOSTED_PREFIX)


def parse_spec(spec: str) -> HostedSpec:
    """The provider and model an ``api:`` spec names; a clear error naming what is accepted otherwise."""
    name, _, model = spec[len(HOSTED_PREFIX):].partition("/")
    if name not in PROVIDERS or not model.strip():
        raise HostedError(f"{spec!r}: a hosted reranker is api:<provider>/<model> with provider one of "
                          f"{', '.join(PROVIDERS)} (OpenAI publishes no rerank endpoint)")
    return HostedSpec(PROVIDERS[name], model.strip())


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
KEY_HOSTS_VARIABLE = "RUNLOCALAI_BENCH_KEY_HOSTS"  # hosts besides a provider's own its key may go to (environment)
KEY_NOT_USED = "nothing was sent with it"  # in an execution's skip reason when the key could not be used


def check_base_url(url: str, provider: Provider) -> None:
    """Keys travel in a header: only over HTTPS, or plain HTTP to this machine (a local server or proxy). A URL
    with credentials, a query or a fragment is refused: the bundle and the report record the URL."""
    parsed = urlparse(url)
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        raise HostedError(f"api.{provider.name}.base_url: a URL with credentials, a query or a fragment is recorded "
                          "in the bundle and the report; give scheme, host, port and path only (the key comes from "
                          f"{provider.key_variable})")
    if parsed.scheme == "https" and parsed.hostname:
        return
    if parsed.scheme == "http" and parsed.hostname in ("127.0.0.1", "localhost", "::1"):
        return
    raise HostedError(f"api.{provider.name}.base_url {url!r}: the key would be sent in clear text; accepted: an "
                      "https:// URL, or http:// to 127.0.0.1 or localhost")


def key_destination_problem(url: str, provider: Provider) -> str | None:
    """Why the provider's key may not go to ``url`` (None: it may). A parameter file or a bundle someone else
    wrote names the base URL, and the recovery commands read it back: the key goes only to the provider's own
    host, to this machine, or to a host the environment (never a parameter) lists in RUNLOCALAI_BENCH_KEY_HOSTS."""
    host = (urlparse(url).hostname or "").lower()
    trusted = {h.strip().lower() for h in os.environ.get(KEY_HOSTS_VARIABLE, "").split(",") if h.strip()}
    if host == provider.host or host in LOOPBACK_HOSTS or host in trusted:
        return None
    return (f"{provider.key_variable} goes to {provider.host} or this machine, not to {host} "
            f"(api.{provider.name}.base_url) unless {KEY_HOSTS_VARIABLE} in the environment lists {host}")


def key_refusal(url: str, provider: Provider) -> str | None:
    """Why no request of this provider at ``url`` may be sent (None: they may)."""
    return key_problem(provider.key_variable) or key_destination_problem(url, provider)


def without_key(text: str, key: str | None) -> str:
    """``text`` with the key, and the forms an error message may quote it in (escaped as Python or JSON writes
    it), replaced by a placeholder. Applied to a whole text before it is cut, so no fragment survives."""
    if not key:
        return text
    for form in {key, repr(key)[1:-1], json.dumps(key)[1:-1]}:
        text = text.replace(form, "<key>")
    return text


def key_problem(variable: str) -> str | None:
    """Why the key in ``variable`` cannot be sent (None: it can): unset, or holding characters a header cannot
    carry (a trailing newline from a .env file; the HTTP library's error would quote the key)."""
    key = os.environ.get(variable)
    if not key:
        return f"{variable} is not set"
    if not all(33 <= ord(c) <= 126 for c in key):
        return (f"{variable} holds spaces, line breaks or non-ASCII characters (a .env file's line ending?): set it "
                "without them")
    return None


# ------------------------------------------------------------------------------------------------ prices


@dataclass(frozen=True)
class Price:
    """USD per billing unit of one hosted model, with where and when the figure was read."""

    usd_per_unit: float
    unit: str
    source: str
    retrieved: str
    quote: str = ""
    note: str = ""


def load_prices(path: Path | None) -> dict[str, Price]:
    """``api:<provider>/<model>`` -> its price from ``prices.yaml`` (``params/references/``); a malformed entry
    is an error naming the file and the key."""
    if path is None or not Path(path).is_file():
        return {}
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    prices = {}
    for spec, entry in (raw.get("prices") or {}).items():
        try:
            hosted = parse_spec(spec)
            per = float(entry["per"])
            price = Price(float(entry["usd"]) / per, str(entry["unit"]), str(entry["source"]), str(entry["retrieved"]),
                          str(entry.get("quote", "")), str(entry.get("note", "")))
        except (KeyError, TypeError, ValueError, HostedError) as exc:
            raise HostedError(f"{path}: prices.{spec}: {exc}; each entry needs usd, per, unit, source and retrieved "
                              "under an api:<provider>/<model> key") from None
        if price.unit != hosted.provider.unit:
            raise HostedError(f"{path}: prices.{spec}.unit is {price.unit!r}; {hosted.provider.name} bills "
                              f"{hosted.provider.unit}")
        prices[spec] = price
    return prices


def estimated_units(provider: Provider, queries: int, documents_per_query: int, tokens_per_pair: float) -> float:
    """What ``queries`` requests of ``documents_per_query`` documents will bill: search units (one per query and
    started hundred of documents) or tokens (Voyage and Jina count about every pair's query and document tokens:
    query tokens x documents + documents' tokens)."""
    if provider.unit == "search_units":
        return float(queries * math.ceil(documents_per_query / 100))
    return float(queries * documents_per_query * tokens_per_pair)


# ------------------------------------------------------------------------------------------------ requests


def token_bound(text: str) -> int:
    """An upper bound of a text's tokens in any byte-level or byte-fallback tokenizer: its UTF-8 bytes (no piece
    is shorter than one byte), plus two for specials. The providers' tokenizers are not public; a bound is enough
    to keep a request within a token limit."""
    return len(text.encode("utf-8")) + 2


def split_documents(provider: Provider, query: str, documents: Sequence[str], model: str = "") -> list[list[int]]:
    """Indices of ``documents`` per request, within the provider's document and token limits (``model``'s), in
    order. Merging the parts' scores assumes each pair is scored on its own (a cross-encoder); a listwise model
    (one that reads the candidates together) is only comparable unsplit, so the request count is recorded per
    query (tables/hosted) and a split shows as more requests than queries."""
    limit = provider.request_token_limit(model)
    groups: list[list[int]] = [[]]
    tokens, query_tokens = 0, token_bound(query)
    for index, document in enumerate(documents):
        cost = query_tokens + token_bound(document)
        full = len(groups[-1]) >= provider.max_documents or (
            limit is not None and groups[-1] and tokens + cost > limit)
        if full:
            groups.append([])
            tokens = 0
        groups[-1].append(index)
        tokens += cost
    return [g for g in groups if g]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a request that was throttled (429) or failed on the server's side (5xx)."""

    max_retries: int = 5
    base_s: float = 1.0
    max_backoff_s: float = 60.0
    timeout_s: float = 120.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds before attempt ``attempt + 1``: the server's Retry-After (seconds, or an HTTP date) when it
        gives a usable one, else exponential backoff with jitter, capped at ``max_backoff_s``. A Retry-After longer
        than the cap is returned as asked: the caller gives up rather than retry before the server allows."""
        if retry_after:
            wait = None
            try:
                wait = float(retry_after)
            except ValueError:
                try:
                    when = email.utils.parsedate_to_datetime(retry_after)
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=dt.timezone.utc)
                    wait = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
                except (TypeError, ValueError, IndexError, OverflowError):
                    wait = None  # unreadable: backoff instead
            if wait is not None and math.isfinite(wait):
                return max(wait, 0.0)
        return min(self.base_s * 2 ** attempt * (0.5 + random.random() / 2), self.max_backoff_s)


class RequestFailed(RuntimeError):
    """A request that still failed after its retries (or failed in a way no retry mends)."""

    def __init__(self, message: str, attempts: int, final: bool = False):
        super().__init__(message)
        self.attempts = attempts
        self.final = final  # the key was refused: no later request can succeed


def post_with_retries(http: httpx.Client, url: str, body: dict[str, Any], key_variable: str, policy: RetryPolicy,
                      sleep: Callable[[float], None] = time.sleep) -> tuple[dict[str, Any], int, float]:
    """(response JSON, attempts, seconds of the answered attempt) of one POST, retried on 429/5xx and on
    connection errors as :class:`RetryPolicy` says. The key is read from the environment here, for this call, and
    every error text is stripped of it before it is cut or raised."""
    key = os.environ.get(key_variable, "")
    problem_with_key = key_problem(key_variable)
    if problem_with_key:
        raise RequestFailed(problem_with_key, 0, final=True)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"}
    attempt = 0
    while True:
        attempt += 1
        began = time.perf_counter()
        try:
            response = http.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:  # the message names the URL, never a header; redacted all the same
            problem, retry_after = f"{type(exc).__name__}: {without_key(str(exc), key)[:200]}", None
        else:
            seconds = time.perf_counter() - began
            text = without_key(response.text, key)
            if response.status_code == 200:
                try:
                    return response.json(), attempt, seconds
                except ValueError:
                    raise RequestFailed(f"HTTP 200 with a body that is not JSON: {text[:200]!r}", attempt) from None
            problem = f"HTTP {response.status_code}: {text[:300]}"
            retry_after = response.headers.get("retry-after")
            if response.status_code in (401, 403):
                raise RequestFailed(f"{problem} ({key_variable} refused)", attempt, final=True)
            if response.status_code == 402:  # out of credit (Jina's prepaid tokens): no later request can pass
                raise RequestFailed(f"{problem} ({key_variable}'s account cannot pay)", attempt, final=True)
            if response.status_code not in RETRIED_STATUSES:
                raise RequestFailed(problem, attempt)
        if attempt > policy.max_retries:
            raise RequestFailed(f"{problem} (after {attempt} attempts)", attempt)
        wait = policy.delay(attempt - 1, retry_after)
        if wait > policy.max_backoff_s:
            raise RequestFailed(f"{problem} (the server asked to wait {wait:.0f} s, over api.max_backoff_s "
                                f"{policy.max_backoff_s:g} s)", attempt)
        sleep(wait)


# ------------------------------------------------------------------------------------------------ cache


@dataclass(frozen=True)
class ResponseCache:
    """Answers on disk, one JSON file per request, keyed by provider, base URL, route and the exact body sent
    (model, query, candidates, parameters): a re-run or ``--resume`` sends nothing it already sent. A file holds
    the answer, when it was served and what the request cost in time and attempts; never a header."""

    root: Path

    def key(self, provider: Provider, base_url: str, body: dict[str, Any]) -> str:
        identity = {"provider": provider.name, "base_url": base_url.rstrip("/"), "path": provider.path, "body": body}
        return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def path(self, provider: Provider, key: str) -> Path:
        return self.root / provider.name / key[:2] / f"{key}.json"

    def get(self, provider: Provider, key: str) -> dict[str, Any] | None:
        path = self.path(provider, key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # a torn write from a killed run: asked again
            return None

    def put(self, provider: Provider, key: str, record: dict[str, Any]) -> None:
        path = self.path(provider, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        staging.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        staging.replace(path)


# ------------------------------------------------------------------------------------------------ scoring


@dataclass
class QueryOutcome:
    """One query's candidates through the API: scores in candidate order (None when the query failed)."""

    query_id: str
    documents: int
    scores: np.ndarray | None = None
    requests: int = 0  # requests the candidates took (more than one where split by the provider's limits)
    sent: int = 0  # of them, sent now (the others came from the cache)
    attempts: int = 0
    units: float | None = None  # billed units (search units or tokens) over its requests, as the responses say
    cost_usd: float | None = None
    latency_s: float | None = None  # its answered requests' seconds now, network included; None when all cached
    served_utc: str | None = None  # when the (latest) answer was served
    error: str | None = None


@dataclass
class CostMeter:
    """What one hosted execution spends, held to ``cap_usd`` (None: no cap). A request reserves its estimated cost
    before it is sent, so the requests in flight cannot pass the cap together, and settles at what its response
    billed (the estimate where the response says nothing). Each settled cost is appended to ``ledger`` (a file in
    the bundle) and read back when the execution starts again: what an interrupted attempt spent still counts."""

    cap_usd: float | None
    ledger: Path | None = None
    spent_usd: float = 0.0  # settled, earlier attempts of this execution included
    spent_now_usd: float = 0.0  # settled by this attempt
    reserved_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.ledger is not None and self.ledger.is_file():
            for line in self.ledger.read_text(encoding="utf-8").splitlines():
                try:
                    self.spent_usd += float(json.loads(line)["usd"])
                except (ValueError, KeyError, TypeError):  # a line torn by a kill: not counted twice, not fatal
                    continue

    def reserve(self, usd: float) -> bool:
        """Hold ``usd`` for a request about to be sent; False (nothing held) when that would pass the cap."""
        with self._lock:
            if self.cap_usd is not None and self.spent_usd + self.reserved_usd + usd > self.cap_usd:
                return False
            self.reserved_usd += usd
            return True

    def settle(self, reserved: float, usd: float) -> None:
        """Release a reservation and count what the request cost."""
        with self._lock:
            self.reserved_usd -= reserved
            self.spent_usd += usd
            self.spent_now_usd += usd
            if self.ledger is not None and usd:
                self.ledger.parent.mkdir(parents=True, exist_ok=True)
                with self.ledger.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"usd": usd, "utc": dt.datetime.now(dt.timezone.utc).isoformat(
                        timespec="seconds")}) + "\n")

    def release(self, reserved: float) -> None:
        with self._lock:
            self.reserved_usd -= reserved


def request_estimate(provider: Provider, query: str, documents: Sequence[str]) -> float:
    """Units a request will bill at most, before it is sent: its search units (one per started 100 documents),
    or a bound of its tokens (:func:`token_bound`: UTF-8 bytes, several times the real count)."""
    if provider.unit == "search_units":
        return float(math.ceil(len(documents) / 100))
    query_tokens = token_bound(query)
    return float(sum(query_tokens + token_bound(d) for d in documents))


@dataclass
class HostedReranker:
    """One hosted model behind its provider's API (or a server at ``base_url`` speaking the same shape)."""

    hosted: HostedSpec
    base_url: str
    cache: ResponseCache
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 4
    max_tokens_per_doc: int | None = None
    price: Price | None = None
    meter: CostMeter = field(default_factory=lambda: CostMeter(None))  # unpriced requests reserve nothing
    sleep: Callable[[float], None] = time.sleep
    key_refused: str | None = None  # set once a request was refused for its key: nothing more is sent

    @property
    def provider(self) -> Provider:
        return self.hosted.provider

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + self.provider.path

    def settings(self) -> dict[str, Any]:
        """What the bundle records of how the API was called (never the key: only the variable it came from)."""
        return {"provider": self.provider.name, "model": self.hosted.model, "base_url": self.base_url,
                "route": f"POST {self.provider.path}", "api_reference": self.provider.docs,
                "key_variable": self.provider.key_variable, "max_documents_per_request": self.provider.max_documents,
                "max_request_tokens": self.provider.request_token_limit(self.hosted.model), "max_tokens_per_doc": self.max_tokens_per_doc,
                "truncation": ("the provider's own (truncation=true)" if self.provider.name == "voyage" else
                               f"max_tokens_per_doc={self.max_tokens_per_doc}" if self.max_tokens_per_doc
                               else "the provider's own default"),
                "concurrency": self.concurrency, "retries": self.policy.max_retries,
                "max_backoff_s": self.policy.max_backoff_s, "timeout_s": self.policy.timeout_s,
                "billing_unit": self.provider.unit,
                "price": None if self.price is None else {"usd_per_unit": self.price.usd_per_unit,
                                                          "source": self.price.source,
                                                          "quote": self.price.quote,
                                                          "retrieved": self.price.retrieved}}

    def _failed(self, outcome: QueryOutcome, message: str) -> QueryOutcome:
        outcome.error = without_key(message, os.environ.get(self.provider.key_variable))
        return outcome

    def _send(self, http: httpx.Client, outcome: QueryOutcome, body: dict[str, Any], documents: int,
              estimate_units: float) -> dict[str, Any] | None:
        """One request not in the cache: sent within the cost cap, its answer checked and cached; None (and
        ``outcome.error`` set) when it was not sent or failed."""
        if self.key_refused:
            self._failed(outcome, f"not sent: {self.key_refused}")
            return None
        reserved = estimate_units * self.price.usd_per_unit if self.price else 0.0
        if not self.meter.reserve(reserved):
            self._failed(outcome, f"not sent: api.max_cost_usd reached for this reranker ({self.meter.cap_usd:.4g} USD "
                                  f"of the cap; {self.meter.spent_usd:.4f} USD spent)")
            return None
        try:
            payload, attempts, took = post_with_retries(http, self.url, body, self.provider.key_variable, self.policy,
                                                        self.sleep)
        except RequestFailed as exc:
            self.meter.release(reserved)
            outcome.attempts += exc.attempts
            if exc.final:
                self.key_refused = str(exc)
            self._failed(outcome, str(exc))
            return None
        outcome.attempts += attempts
        try:
            billed = self.provider.parse(payload, documents)[1]
        except RerankError as exc:  # answered (and perhaps billed): counted at the estimate, not cached
            self.meter.settle(reserved, reserved)
            self._failed(outcome, f"answer not usable: {exc}")
            return None
        self.meter.settle(reserved, billed * self.price.usd_per_unit if (self.price and billed is not None) else reserved)
        record = {"payload": payload, "served_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "latency_s": took, "attempts": attempts, "documents": documents}
        self.cache.put(self.provider, self.cache.key(self.provider, self.base_url, body), record)
        outcome.sent += 1
        return record

    def _one(self, http: httpx.Client, query_id: str, query: str, documents: Sequence[str]) -> QueryOutcome:
        outcome = QueryOutcome(query_id, len(documents))
        scores = np.full(len(documents), np.nan, dtype=np.float32)
        units, seconds, served = 0.0, 0.0, []
        units_known = True
        for indices in split_documents(self.provider, query, documents, self.hosted.model):
            texts = [documents[i] for i in indices]
            body = self.provider.body(self.hosted.model, query, texts, self.max_tokens_per_doc)
            record = self.cache.get(self.provider, self.cache.key(self.provider, self.base_url, body))
            if record is None:
                record = self._send(http, outcome, body, len(indices), request_estimate(self.provider, query, texts))
                if record is None:
                    return outcome
                seconds += record["latency_s"]
            part, billed = self.provider.parse(record["payload"], len(indices))
            scores[indices] = part
            outcome.requests += 1
            served.append(record["served_utc"])
            if billed is None:
                units_known = False
            else:
                units += billed
        outcome.scores = scores
        outcome.units = units if units_known else None
        outcome.cost_usd = (units * self.price.usd_per_unit) if (self.price and units_known) else None
        outcome.latency_s = seconds if outcome.sent else None
        outcome.served_utc = max(served) if served else None
        return outcome

    def rerank(self, queries: Sequence[tuple[str, str, Sequence[str]]],
               progress: Callable[[int, int], None] | None = None) -> list[QueryOutcome]:
        """Each (query id, query text, candidate texts) scored, ``concurrency`` queries in flight; a query whose
        requests fail after their retries comes back with ``error`` set, and the others go on."""
        # Whoever built this client, the key never goes to a host it is not meant for.
        self.key_refused = self.key_refused or key_destination_problem(self.base_url, self.provider)
        timeout = httpx.Timeout(self.policy.timeout_s, connect=min(30.0, self.policy.timeout_s))
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        done = 0
        lock = threading.Lock()
        with httpx.Client(timeout=timeout, limits=limits) as http, \
                ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            def run(item: tuple[str, str, Sequence[str]]) -> QueryOutcome:
                nonlocal done
                try:
                    result = self._one(http, *item)
                except Exception as exc:  # noqa: BLE001 - one query's failure is recorded, the others go on
                    result = self._failed(QueryOutcome(item[0], len(item[2])), f"{type(exc).__name__}: {exc}")
                with lock:
                    done += 1
                    if progress:
                        progress(done, len(queries))
                return result

            return list(pool.map(run, queries))
