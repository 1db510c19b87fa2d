"""Load on a served reranker: many requests at once, each one query with its candidates, as a RAG application
sends them. Two ways of offering load, per point of a sweep:

- **closed loop** at a concurrency C: C clients, each sending its next request when its last one is answered;
  what it shows is the throughput C users get and their latency;
- **open loop** at a rate R: requests arrive at Poisson times (seeded exponential gaps) whatever the server
  does, each latency counted from the request's *scheduled* arrival, so a client that fell behind cannot hide
  the server's queue (no coordinated omission). Past saturation the achieved rate stops following the offered
  one and latency grows with the run's length: where that starts is the server's capacity.

Per point: achieved requests/s and pairs/s, p50/p90/p99 latency, the error rate, goodput under a latency target
(requests answered within it, per second), the server process's peak resident set (reset before the point) and
the client's own CPU time (it shares the machine's cores with the server).

Why an asyncio client on httpx and not NVIDIA's aiperf (which has TEI- and Cohere-shaped ranking endpoints): the
requests must be the run's own candidates, cut to the run's ``max_length`` exactly as the quality rows scored
them, with the pairs per request counted, and the server's memory read per point; aiperf generates its own
inputs and runs as several processes of its own, which on a two-core machine would take the cores the server
is being measured on.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import httpx
import numpy as np

from runlocalai_bench.serving.client import parse_scores, rerank_body


@dataclass(frozen=True)
class RerankRequest:
    """One request: a query and its candidates' texts (already cut to the run's max_length)."""

    query: str
    documents: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    started: float  # scheduled arrival (open loop) or send time (closed loop), perf_counter seconds
    finished: float
    pairs: int
    error: str | None  # None when the server answered with a score per document


@dataclass(frozen=True)
class Target:
    """Where the server is and how it is asked (see :func:`client.rerank_body`)."""

    base_url: str
    path: str = "/v1/rerank"
    shape: str = "jina"
    model: str | None = None
    timeout_s: float = 600.0


async def _send(http: httpx.AsyncClient, target: Target, request: RerankRequest, started: float) -> Outcome:
    error = None
    try:
        response = await http.post(target.path, json=rerank_body(target.shape, request.query, request.documents,
                                                                  target.model))
        if response.status_code != 200:
            error = f"HTTP {response.status_code}: {response.text[:200]}"
        else:
            parse_scores(response.json(), len(request.documents))
    except Exception as exc:  # noqa: BLE001 - every failure of a request is a counted error, never a hung sweep
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    return Outcome(started, time.perf_counter(), len(request.documents), error)


def _client(target: Target, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=target.base_url, limits=limits,
                             timeout=httpx.Timeout(target.timeout_s, connect=10.0))


def _hopeless(outcomes: Sequence[Outcome], least: int) -> bool:
    """The last ``least`` requests all failed: the server is gone or refuses everything, and waiting for the rest
    of the point would only add timeouts."""
    return len(outcomes) >= least and all(o.error for o in outcomes[-least:])


async def _closed(target: Target, requests: Sequence[RerankRequest], concurrency: int, warmup: int,
                  min_requests: int, min_seconds: float) -> tuple[list[Outcome], float, float]:
    """``concurrency`` workers over the requests in turn. The window opens once ``max(warmup, concurrency)``
    answers came back (the cold first wave is not counted) and closes when at least ``max(min_requests,
    concurrency)`` requests finished inside it (one turn of every client) and ``min_seconds`` passed: the requests
    that finished inside it are counted, the drain after it is not. Returns (counted outcomes, window seconds,
    client CPU seconds in the window)."""
    outcomes: list[Outcome] = []
    issued = 0
    warm, need = max(warmup, concurrency), max(min_requests, concurrency)
    window: dict[str, float] = {}
    counted = 0

    def close() -> None:
        window.setdefault("start", outcomes[0].started if outcomes else time.perf_counter())
        window.setdefault("cpu", time.process_time())
        window["end"], window["cpu_end"] = time.perf_counter(), time.process_time()

    def done() -> bool:
        if "end" in window:
            return True
        if _hopeless(outcomes, max(concurrency, 4)):
            close()
            return True
        if "start" in window and counted >= need and time.perf_counter() - window["start"] >= min_seconds:
            close()
            return True
        return False

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal issued, counted
        while not done():
            request = requests[issued % len(requests)]
            issued += 1
            outcome = await _send(http, target, request, time.perf_counter())
            outcomes.append(outcome)
            if "start" in window and "end" not in window:
                counted += 1
            elif len(outcomes) == warm and "start" not in window:
                window["start"], window["cpu"] = time.perf_counter(), time.process_time()

    async with _client(target, concurrency) as http:
        if warm == 0:
            window["start"], window["cpu"] = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    inside = [o for o in outcomes if window["start"] < o.finished <= window["end"]]
    if not inside and _hopeless(outcomes, 1):
        inside = outcomes
    return inside, window["end"] - window["start"], window["cpu_end"] - window["cpu"]


async def _open(target: Target, requests: Sequence[RerankRequest], rate: float, count: int, seed: int,
                max_in_flight: int) -> tuple[list[Outcome], float, float]:
    """``count`` Poisson arrivals at ``rate`` per second; latency from each scheduled arrival. Arrivals stop early
    when the last requests all failed (a server that is gone). Returns (outcomes, seconds from the first arrival to
    the last answer, client CPU seconds). Cancelled (Ctrl-C), it cancels the requests in flight before returning."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=count)
    offsets = np.cumsum(gaps) - gaps[0]
    finished: list[Outcome] = []
    cpu = time.process_time()

    async def send(request: RerankRequest, scheduled: float) -> Outcome:
        outcome = await _send(http, target, request, scheduled)
        finished.append(outcome)
        return outcome

    async with _client(target, max_in_flight) as http:
        began = time.perf_counter()
        tasks: list[asyncio.Future] = []
        try:
            for index, offset in enumerate(offsets):
                if _hopeless(finished, 4):
                    break
                delay = began + float(offset) - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.ensure_future(send(requests[index % len(requests)], began + float(offset))))
            outcomes = list(await asyncio.gather(*tasks))
        finally:
            pending = [t for t in tasks if not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return outcomes, max(o.finished for o in outcomes) - began, time.process_time() - cpu


def summarize(outcomes: Sequence[Outcome], seconds: float, latency_target_s: float) -> dict[str, float | int | None]:
    """A point's figures from its requests (latencies of answered requests only; errors counted apart). The
    percentiles are raw: whether a tail percentile has enough samples to be reported is the caller's rule."""
    answered = [o for o in outcomes if o.error is None]
    latencies = np.array([o.finished - o.started for o in answered], dtype=np.float64)

    def pct(q: float) -> float | None:
        return float(np.percentile(latencies, q)) if latencies.size else None

    return {
        "requests": len(outcomes), "errors": len(outcomes) - len(answered), "latency_samples": len(answered),
        "error_rate": (len(outcomes) - len(answered)) / len(outcomes) if outcomes else None,
        "seconds": seconds,
        "requests_per_s": len(answered) / seconds if seconds > 0 else None,
        "pairs_per_s": sum(o.pairs for o in answered) / seconds if seconds > 0 else None,
        "p50_s": pct(50), "p90_s": pct(90), "p99_s": pct(99),
        "mean_pairs": float(np.mean([o.pairs for o in outcomes])) if outcomes else None,
        "goodput_per_s": float((latencies <= latency_target_s).sum()) / seconds if seconds > 0 else None,
        "first_error": next((o.error for o in outcomes if o.error), None),
    }


def _run_loop(coroutine):
    """Run ``coroutine`` to completion on a fresh event loop in a thread of its own: a notebook kernel (where
    the rerank stage runs) already has a loop running in this thread, and ``asyncio.run`` refuses to nest. A
    Ctrl-C (or any exception) while waiting cancels the point's requests at once instead of waiting them out."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="load-generator", daemon=True)
    thread.start()
    future = asyncio.run_coroutine_threadsafe(coroutine, loop)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        try:
            future.result(timeout=30)
        except BaseException:  # noqa: BLE001 - cancelled (or failed) as asked: the original error is raised below
            pass
        raise
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


@dataclass(frozen=True)
class Sweep:
    """What one sweep offers: closed-loop concurrencies, then open-loop rates as fractions of the best closed-loop
    throughput (so the open loop brackets the server's capacity whatever the model's speed)."""

    concurrencies: tuple[int, ...] = (1, 2, 4, 8, 16)
    rate_fractions: tuple[float, ...] = (0.5, 0.75, 0.9, 1.0, 1.2)
    warmup_requests: int = 2
    min_requests: int = 8
    min_seconds: float = 10.0
    open_requests: int = 32  # arrivals per open-loop point (at least): a longer point shows saturation better
    open_seconds: float = 20.0  # ... or as many as arrive in this long at the rate, whichever is more
    latency_target_s: float = 2.0
    seed: int = 0
    max_in_flight: int = 256


def run_sweep(target: Target, requests: Sequence[RerankRequest], sweep: Sweep,
              before_point: Callable[[], None] = lambda: None,
              after_point: Callable[[dict], dict] = lambda row: row) -> list[dict]:
    """Every point of ``sweep`` against ``target``, one after another: ``before_point`` runs before each (e.g.
    resetting the server's peak memory), ``after_point`` adds to each row (e.g. that peak). Rows carry
    ``mode`` (closed | open), ``concurrency`` or ``offered_rate``, the figures of :func:`summarize` and the
    client's CPU seconds per second of the point (``client_cpu``: 1.0 = one core busy)."""
    if not requests:
        raise ValueError("a load sweep needs at least one request")
    rows: list[dict] = []

    def point(mode: str, setting: dict, run) -> dict:
        before_point()
        outcomes, seconds, cpu = _run_loop(run)
        row = {"mode": mode, **setting, **summarize(outcomes, seconds, sweep.latency_target_s),
               "client_cpu": cpu / seconds if seconds > 0 else None, "latency_target_s": sweep.latency_target_s}
        rows.append(after_point(row))
        return row

    for concurrency in sweep.concurrencies:
        point("closed", {"concurrency": concurrency, "offered_rate": None},
              _closed(target, requests, concurrency, sweep.warmup_requests, sweep.min_requests, sweep.min_seconds))
    capacity = max((r["requests_per_s"] or 0.0) for r in rows)
    if capacity <= 0:
        return rows
    for fraction in sweep.rate_fractions:
        rate = capacity * fraction
        count = max(sweep.open_requests, math.ceil(rate * sweep.open_seconds))
        point("open", {"concurrency": None, "offered_rate": rate, "rate_fraction": fraction},
              _open(target, requests, rate, count, sweep.seed, sweep.max_in_flight))
    return rows
