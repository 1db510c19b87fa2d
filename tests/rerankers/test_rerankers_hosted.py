"""Hosted rerankers (``api:<provider>/<model>``) offline.

- Each provider's response parser on the response shape its API reference documents.
- Retries, failures, the response cache and the cost cap against a scripted HTTP server on 127.0.0.1 (the one
  part with no real counterpart offline: no real server answers 429 or 503 on demand), which counts what it gets.
- The Cohere-shaped client against infinity's Cohere-aligned ``/rerank`` and the Jina-shaped one against
  llama-server's ``/v1/rerank``, both real servers started on 127.0.0.1: the scores are the served variant's.
- A smoke run with ``api:cohere/...`` at infinity and a key set to a marker: it completes with quality and
  comparison rows, the marker appears in no file under the output folder, the cache or the run's output, a
  second run sends nothing, and ``api:voyage/...`` without its key is a recorded skip naming the variable.
- The cost guard refuses a run the plan prices over ``api.max_cost_usd`` before anything is written.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runlocalai_bench.cli import main
from runlocalai_bench.params import ParamsError, load_params
from runlocalai_bench.rerankers.hosted import (
    KEY_HOSTS_VARIABLE, PROVIDERS, CostMeter, HostedError, HostedReranker, HostedSpec, Price, ResponseCache,
    RetryPolicy, check_base_url, key_destination_problem, load_prices, parse_spec, split_documents,
)
from runlocalai_bench.serving.client import RerankError
from support import REPO, infinity_missing, llama_server_missing

MARKER = "sk-test-MARKER-7f3a9c1e-never-written"

# The response bodies each API reference shows (fields as documented; values illustrative).
COHERE_RESPONSE = {"id": "07734bd2-2473-4f07-94e1-0d9f0e6843cf",
                   "results": [{"index": 2, "relevance_score": 0.91}, {"index": 0, "relevance_score": 0.33},
                               {"index": 1, "relevance_score": 0.05}],
                   "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}
VOYAGE_RESPONSE = {"object": "list", "data": [{"relevance_score": 0.4375, "index": 0},
                                              {"relevance_score": 0.421875, "index": 1},
                                              {"relevance_score": 0.91, "index": 2}],
                   "model": "rerank-2.5", "usage": {"total_tokens": 26}}
JINA_RESPONSE = {"model": "jina-reranker-v2-base-multilingual", "usage": {"total_tokens": 815},
                 "results": [{"index": 1, "relevance_score": 0.8783142566680908},
                             {"index": 0, "relevance_score": 0.7624675869941711},
                             {"index": 2, "relevance_score": 0.1}]}


@pytest.mark.parametrize("provider, payload, scores, units", [
    ("cohere", COHERE_RESPONSE, [0.33, 0.05, 0.91], 1.0),
    ("voyage", VOYAGE_RESPONSE, [0.4375, 0.421875, 0.91], 26.0),
    ("jina", JINA_RESPONSE, [0.7624675869941711, 0.8783142566680908, 0.1], 815.0),
])
def test_each_parser_maps_the_documented_response_back_by_index(provider, payload, scores, units):
    parsed, billed = PROVIDERS[provider].parse(payload, 3)
    np.testing.assert_allclose(parsed, scores, rtol=1e-6)
    assert billed == units
    with pytest.raises(RerankError, match="no result"):
        PROVIDERS[provider].parse(payload, 4)  # a document the answer does not cover


def test_each_request_body_has_the_documented_fields():
    cohere = PROVIDERS["cohere"].body("rerank-v3.5", "q", ["a", "b"], 512)
    assert cohere == {"model": "rerank-v3.5", "query": "q", "documents": ["a", "b"], "top_n": 2, "max_tokens_per_doc": 512}
    assert "max_tokens_per_doc" not in PROVIDERS["cohere"].body("m", "q", ["a"], None)
    assert PROVIDERS["voyage"].body("rerank-2.5", "q", ["a"], None) == {
        "query": "q", "documents": ["a"], "model": "rerank-2.5", "top_k": 1, "truncation": True}
    assert PROVIDERS["jina"].body("m", "q", ["a"], None) == {
        "model": "m", "query": "q", "documents": ["a"], "top_n": 1, "return_documents": False}


def test_specs_urls_and_prices_are_checked():
    assert parse_spec("api:voyage/rerank-2.5").model == "rerank-2.5"
    with pytest.raises(HostedError, match="OpenAI publishes no rerank endpoint"):
        parse_spec("api:openai/text-rerank")
    with pytest.raises(HostedError, match="clear text"):
        check_base_url("http://proxy.example.com/v2", PROVIDERS["cohere"])
    check_base_url("http://127.0.0.1:8080/v1", PROVIDERS["jina"])
    prices = load_prices(REPO / "params" / "references" / "prices.yaml")
    assert prices["api:cohere/rerank-v3.5"].usd_per_unit == pytest.approx(0.002)
    assert prices["api:voyage/rerank-2.5"].usd_per_unit == pytest.approx(0.05e-6)
    assert all(p.source.startswith("https://") and p.retrieved for p in prices.values())


def test_documents_are_split_within_the_providers_limits():
    small = replace(PROVIDERS["voyage"], max_documents=3, max_request_tokens=50)
    groups = split_documents(small, "q", ["x" * 10] * 7)
    assert [i for g in groups for i in g] == list(range(7))  # every document once, in order
    assert all(len(g) <= 3 for g in groups)
    assert all(sum(3 + 12 for _ in g) <= 50 for g in groups)  # query and document bounds per request
    assert split_documents(PROVIDERS["cohere"], "q", ["d"] * 100) == [list(range(100))]
    # Voyage's request limit is the model's: 600K tokens for rerank-2.5, 300K for rerank-1 (its API reference).
    voyage, query, long_documents = PROVIDERS["voyage"], "q" * 50, ["x" * 3000] * 100  # about 305K bound
    assert len(split_documents(voyage, query, long_documents, "rerank-2.5")) == 1
    assert len(split_documents(voyage, query, long_documents, "rerank-1")) == 2


def test_the_key_goes_only_to_its_providers_host_this_machine_or_a_host_the_environment_names(monkeypatch, tmp_path):
    cohere = PROVIDERS["cohere"]
    monkeypatch.delenv(KEY_HOSTS_VARIABLE, raising=False)
    assert key_destination_problem("https://api.cohere.com/v2", cohere) is None
    assert key_destination_problem("http://127.0.0.1:8080", cohere) is None
    problem = key_destination_problem("https://collector.invalid/v2", cohere)
    assert "collector.invalid" in problem and KEY_HOSTS_VARIABLE in problem and "COHERE_API_KEY" in problem
    # A bundle or parameter file naming another host sends nothing (not even a connection attempt).
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    client, _ = _client("https://collector.invalid/v2", tmp_path)
    outcome = client.rerank(QUERIES[:1])[0]
    assert outcome.error.startswith("not sent") and KEY_HOSTS_VARIABLE in outcome.error and outcome.attempts == 0
    monkeypatch.setenv(KEY_HOSTS_VARIABLE, "proxy.example.org, collector.invalid")
    assert key_destination_problem("https://collector.invalid/v2", cohere) is None
    for bad in ("https://user:pw@api.cohere.com/v2", "https://api.cohere.com/v2?key=x", "https://api.cohere.com/v2#x"):
        with pytest.raises(HostedError, match="credentials, a query or a fragment"):
            check_base_url(bad, cohere)


class Scripted(BaseHTTPRequestHandler):
    """Answers POSTs in Cohere's shape after the statuses scripted for it (429 with Retry-After, 503 ...)."""

    script: list[tuple[int, dict]] = []
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"body": body, "authorization": self.headers.get("Authorization")})
        status, headers = type(self).script.pop(0) if type(self).script else (200, {})
        n = len(body["documents"])
        scored = [{"index": i, "relevance_score": float(len(body["documents"][i]))} for i in reversed(range(n))]
        if status == 200 and "top_k" in body:  # Voyage's shape
            data = json.dumps({"object": "list", "data": scored, "model": body["model"],
                               "usage": {"total_tokens": 7 * n}}).encode()
        elif status == 200:  # Cohere's
            data = json.dumps({"results": scored, "meta": {"billed_units": {"search_units": 1}}}).encode()
        else:  # an error body that quotes the key far in, where a cut message would end mid-key
            data = json.dumps({"message": f"status {status}; " + "." * 247 + f" your key: {self.headers.get('Authorization')}"}).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    Scripted.script, Scripted.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _client(url: str, tmp_path: Path, **kwargs) -> tuple[HostedReranker, list[float]]:
    waits: list[float] = []
    defaults = dict(policy=RetryPolicy(max_retries=3, base_s=0.5, max_backoff_s=4.0, timeout_s=10.0), concurrency=2,
                    price=Price(0.002, "search_units", "test", "2026-12-02"), sleep=waits.append)
    return HostedReranker(parse_spec("api:cohere/rerank-v3.5"), url, ResponseCache(tmp_path / "cache"),
                          **{**defaults, **kwargs}), waits


QUERIES = [("q1", "first query", ["aa", "b", "cccc"]), ("q2", "second query", ["dd", "e"])]


def test_429_with_retry_after_is_waited_out_then_answered(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    Scripted.script = [(429, {"Retry-After": "2"}), (429, {})]  # then no Retry-After: the capped backoff's wait
    client, waits = _client(scripted, tmp_path, concurrency=1)
    outcomes = client.rerank(QUERIES[:1])
    assert waits[0] == 2.0 and 0.5 <= waits[1] <= 1.0  # attempt 2: base 0.5 s x 2, with jitter (half to all of it)
    assert outcomes[0].error is None and outcomes[0].attempts == 3 and outcomes[0].sent == 1
    np.testing.assert_array_equal(outcomes[0].scores, [2, 1, 4])
    assert outcomes[0].units == 1 and outcomes[0].cost_usd == pytest.approx(0.002)
    assert Scripted.received[0]["authorization"] == f"Bearer {MARKER}"  # sent to the server, as it must be


def test_5xx_until_the_retries_run_out_is_a_recorded_failure_and_the_others_go_on(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    Scripted.script = [(503, {})] * 4  # the first query's four attempts (1 + 3 retries); then success
    client, waits = _client(scripted, tmp_path, concurrency=1)
    first, second = client.rerank(QUERIES)
    assert first.scores is None and first.attempts == 4 and "HTTP 503" in first.error and "after 4 attempts" in first.error
    assert "<key>" in first.error and MARKER[:8] not in first.error  # echoed past the cut: redacted before it
    assert len(waits) == 3 and all(0 < w <= 4.0 for w in waits)
    assert second.error is None and second.scores is not None


def test_a_refused_key_stops_every_later_request(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    Scripted.script = [(401, {})]
    client, _ = _client(scripted, tmp_path, concurrency=1)
    first, second = client.rerank(QUERIES)
    assert "COHERE_API_KEY refused" in first.error and MARKER not in first.error
    assert second.error.startswith("not sent") and len(Scripted.received) == 1


def test_an_account_that_cannot_pay_stops_every_later_request(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    Scripted.script = [(402, {})]
    client, _ = _client(scripted, tmp_path, concurrency=1)
    first, second = client.rerank(QUERIES)
    assert "HTTP 402" in first.error and "cannot pay" in first.error and first.attempts == 1
    assert second.error.startswith("not sent") and len(Scripted.received) == 1


def test_a_query_split_over_requests_gets_each_score_back_by_index(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    narrow = HostedSpec(replace(PROVIDERS["cohere"], max_documents=2), "rerank-v3.5")
    client = HostedReranker(narrow, scripted, ResponseCache(tmp_path / "cache"),
                            price=Price(0.002, "search_units", "test", "2026-12-02"))
    documents = ["aaa", "b", "cccccc", "dd", "eeeee"]  # the scripted server scores a document by its length
    outcome = client.rerank([("q", "query", documents)])[0]
    assert outcome.error is None and outcome.requests == 3 and len(Scripted.received) == 3
    assert [r["body"]["documents"] for r in Scripted.received] == [["aaa", "b"], ["cccccc", "dd"], ["eeeee"]]
    np.testing.assert_array_equal(outcome.scores, [3, 1, 6, 2, 5])  # answers come best first: mapped by index
    assert outcome.units == 3 and outcome.cost_usd == pytest.approx(0.006)


def test_a_rerun_sends_zero_requests_and_needs_no_key(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    client, _ = _client(scripted, tmp_path)
    before = client.rerank(QUERIES)
    assert len(Scripted.received) == 2
    monkeypatch.delenv("COHERE_API_KEY")
    again, _ = _client(scripted, tmp_path)
    again.key_refused = "COHERE_API_KEY is not set"  # as the stage sets it without a key
    after = again.rerank(QUERIES)
    assert len(Scripted.received) == 2  # nothing sent the second time
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a.scores, b.scores)
        assert b.sent == 0 and b.latency_s is None and b.served_utc == a.served_utc and b.units == a.units
    cached = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert MARKER not in cached and "Authorization" not in cached and '"served_utc"' in cached


def test_nothing_is_sent_once_the_cost_cap_is_reached_and_a_resumed_execution_counts_what_was_spent(
        scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    ledger = tmp_path / "spend.jsonl"
    client, _ = _client(scripted, tmp_path, concurrency=2, meter=CostMeter(0.003, ledger))
    outcomes = client.rerank(QUERIES)  # two in flight: the second's reservation would pass the cap
    assert sorted(o.error is None for o in outcomes) == [False, True] and len(Scripted.received) == 1
    assert "api.max_cost_usd" in next(o.error for o in outcomes if o.error)
    assert client.meter.spent_usd == pytest.approx(0.002) and client.meter.reserved_usd == pytest.approx(0.0)
    again = CostMeter(0.003, ledger)  # the execution run again (--resume): what the first attempt spent counts
    assert again.spent_usd == pytest.approx(0.002) and not again.reserve(0.002) and again.reserve(0.001)


@pytest.mark.parametrize("retry_after, waited", [
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # an HTTP date in the past: retry at once
    ("soon", None),  # unreadable: the backoff's own wait
    ("nan", None),
])
def test_retry_after_as_a_date_or_unreadable_never_breaks_the_retry(scripted, tmp_path, monkeypatch, retry_after,
                                                                     waited):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    Scripted.script = [(429, {"Retry-After": retry_after})]
    client, waits = _client(scripted, tmp_path, concurrency=1)
    outcome = client.rerank(QUERIES[:1])[0]
    assert outcome.error is None and len(waits) == 1
    assert waits[0] == waited if waited is not None else 0 < waits[0] <= 4.0


def test_a_server_asking_to_wait_past_the_cap_fails_the_query_at_once(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    Scripted.script = [(429, {"Retry-After": "3600"})]
    client, waits = _client(scripted, tmp_path, concurrency=1)
    outcome = client.rerank(QUERIES[:1])[0]
    assert waits == [] and "asked to wait 3600 s" in outcome.error and MARKER not in outcome.error


def test_a_key_with_a_line_ending_is_never_sent_nor_quoted(scripted, tmp_path, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER + "\r\n")
    client, _ = _client(scripted, tmp_path, concurrency=1)
    first, second = client.rerank(QUERIES)
    assert "line breaks" in first.error and MARKER not in first.error + second.error
    assert Scripted.received == []


# ------------------------------------------------------------------------------------------- real servers


def _served_and_hosted(variant: str, spec_of, suffix: str, checkpoint, cache: Path, pairs, tmp_path: Path):
    """The served variant's own scores of one query's candidates (its client: raw scores where the server offers
    them), and the hosted client's of the same texts sent to the same server in its provider's shape."""
    from runlocalai_bench.rerankers.registry import get_variant, load_reranker

    served = load_reranker(get_variant(variant), "cpu", checkpoint.location, checkpoint, cache, 512, server_slots=4)
    try:
        query, documents = pairs[0][0], [d for _, d in pairs[:8]]
        expected = served.client.rerank(query, documents)
        client = HostedReranker(parse_spec(spec_of(served.client.model)), served.server.url + suffix,
                                ResponseCache(tmp_path / "cache"))
        return expected, client.rerank([("q", query, documents)])[0]
    finally:
        served.close()


@pytest.mark.skipif(infinity_missing() is not None, reason=infinity_missing() or "")
def test_the_cohere_shaped_client_against_infinity_scores_as_the_served_variant(tiny_xlmr, session_cache, tmp_path,
                                                                                fixture_pairs, monkeypatch):
    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    raw, outcome = _served_and_hosted("server-infinity-torch", lambda model: f"api:cohere/{model}", "", tiny_xlmr,
                                      session_cache, fixture_pairs, tmp_path)
    assert outcome.error is None
    # Cohere's shape asks for no raw scores: infinity answers its relevance score, the sigmoid of the same logit.
    np.testing.assert_allclose(outcome.scores, 1 / (1 + np.exp(-raw)), rtol=0, atol=1e-6)
    assert (np.argsort(-outcome.scores) == np.argsort(-raw)).all()


@pytest.mark.skipif(llama_server_missing() is not None, reason=llama_server_missing() or "")
def test_the_jina_shaped_client_against_llama_server_scores_as_the_served_variant(tiny_xlmr, session_cache, tmp_path,
                                                                                   fixture_pairs, monkeypatch):
    monkeypatch.setenv("JINA_API_KEY", MARKER)
    expected, outcome = _served_and_hosted("server-llama-q4_k_m", lambda _: "api:jina/jina-reranker-v2-base-multilingual",
                                           "/v1", tiny_xlmr, session_cache, fixture_pairs, tmp_path)
    assert outcome.error is None and outcome.units and outcome.units > 0  # usage.total_tokens read back
    np.testing.assert_array_equal(outcome.scores, expected)


# ------------------------------------------------------------------------------------------- whole runs


def _files_with(root: Path, marker: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and marker in p.read_bytes()]


@pytest.mark.skipif(infinity_missing() is not None, reason=infinity_missing() or "")
def test_a_smoke_run_with_hosted_rerankers_keeps_every_key_out_and_pays_once(tiny_xlmr, session_cache, tmp_path,
                                                                           monkeypatch, capfd, scripted):
    """api:cohere/... at infinity (the key set to a marker) and api:voyage/... at the scripted server (no key at
    first: a recorded skip; then run alone with the key, as its skip reason says, through a 429, and one query that
    keeps failing with the key echoed in the error body); a second run from the same cache."""
    from runlocalai_bench.rerankers.registry import get_variant, load_reranker
    from runlocalai_bench.run import execute

    monkeypatch.setenv("COHERE_API_KEY", MARKER)
    monkeypatch.delenv("VOYAGE_API_KEY", raising=False)
    served = load_reranker(get_variant("server-infinity-torch"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache,
                           512, server_slots=4)
    cache = tmp_path / "cache"
    hosted, voyage = f"api:cohere/{served.client.model}", "api:voyage/rerank-2.5"
    # max_length 512: no fixture pair is cut in process, so both see whole texts (a hosted reranker cuts by its own
    # limits, not the run's max_length)
    args = ["--set", f"cache_dir={cache}", "--set", "reranker.variants=[torch-fp32]", "--set", "reranker.max_length=512",
            "--set", f"reranker.baselines=[{hosted}, {voyage}]", "--set", "throughput.enabled=false",
            "--set", f"api.cohere.base_url={served.server.url}", "--set", f"api.voyage.base_url={scripted}",
            "--set", "api.max_cost_usd=null", "--set", "api.concurrency=1", "--set", "api.max_retries=1",
            "--set", "api.max_backoff_s=0.05", "--set", f"claims={REPO / 'params/claims/bge-reranker-v2-m3.yaml'}"]
    bundle = tmp_path / "a"
    try:
        assert main(["run", str(REPO / "params" / "smoke.yaml"), "--out", str(bundle), "--set", "run_id=a", *args]) == 0
        runs = pd.read_parquet(bundle / "tables" / "runs.parquet")
        skipped = runs[runs["reranker"] == voyage]
        assert skipped["status"].tolist() == ["skipped"] and "VOYAGE_API_KEY is not set" in skipped["reason"].iloc[0]
        assert "run.execute rerank BUNDLE hosted network" in skipped["reason"].iloc[0] and Scripted.received == []
        # What the skip says to do: the key in the environment, that execution alone, then finalize.
        monkeypatch.setenv("VOYAGE_API_KEY", MARKER)
        monkeypatch.setenv("RUNLOCALAI_BENCH_CACHE", str(cache))  # the run's cache, as its kernels had it
        Scripted.script = [(429, {"Retry-After": "0"}), (200, {}), (503, {}), (503, {})]
        assert execute.main(["rerank", str(bundle), "hosted", "network", voyage]) == 0
        assert main(["finalize", str(bundle)]) == 0
        first = capfd.readouterr()
        assert main(["run", str(REPO / "params" / "smoke.yaml"), "--out", str(tmp_path / "b"), "--set", "run_id=b",
                     *args]) == 0
        second = capfd.readouterr()
    finally:
        served.close()
    quality = pd.read_parquet(bundle / "tables" / "quality.parquet")
    mine = quality[quality["reranker"] == hosted]
    assert set(mine["variant"]) == {"hosted"} and set(mine["device"]) == {"network"}
    assert set(mine["dataset"]) == {"fixture:tiny", "fixture:multilingual"} and len(mine)
    comparisons = pd.read_parquet(bundle / "tables" / "comparisons.parquet")
    against = comparisons[(comparisons["baseline"] == hosted) & (comparisons["kind"] == "baseline")]
    assert set(against["baseline_variant"]) == {"hosted"} and set(against["device"]) == {"cpu"}
    # The same checkpoint behind infinity: a sigmoid of the same logits orders every query's candidates alike.
    assert (against["diff"].abs() < 1e-12).all() and (against["wins"] == 0).all() and (against["losses"] == 0).all()
    table = pd.read_parquet(bundle / "tables" / "hosted.parquet")
    cohere_rows, voyage_rows = table[table["reranker"] == hosted], table[table["reranker"] == voyage]
    assert (cohere_rows["status"] == "ok").all() and cohere_rows["sent"].sum() == cohere_rows["requests"].sum() > 0
    assert cohere_rows["served_utc"].notna().all()
    # Voyage after the key: a 429 waited out, one query failed after its retries (recorded, left out of quality).
    assert (voyage_rows["status"] == "failed").sum() == 1 and len(voyage_rows) == 25
    failed = voyage_rows[voyage_rows["status"] == "failed"].iloc[0]
    assert "HTTP 503" in failed["error"] and "<key>" in failed["error"] and failed["attempts"] == 2
    assert (voyage_rows["units"].dropna() > 0).all()  # usage.total_tokens read back
    scored = quality[(quality["reranker"] == voyage) & (quality["measure"] == "nDCG@10")]
    assert len(scored) == 24 and failed["query_id"] not in set(scored["query_id"])
    runs = pd.read_parquet(bundle / "tables" / "runs.parquet")
    assert runs.loc[runs["reranker"] == voyage, "status"].tolist() == ["ok"]
    assert "1 of 25 queries failed" in runs.loc[runs["reranker"] == voyage, "reason"].iloc[0]
    headline = pd.read_parquet(bundle / "tables" / "headline.parquet")
    assert not (headline["variant"] == "hosted").any()  # never beside a local pairs/s
    throughput = pd.read_parquet(bundle / "tables" / "throughput.parquet")
    assert not {hosted, voyage} & set(throughput.get("reranker", []))
    report = (bundle / "report.md").read_text(encoding="utf-8")
    assert "Hosted rerankers (APIs)" in report and "network included" in report and "24 of 25 (1 failed)" in report
    versus = comparisons[(comparisons["baseline"] == voyage) & comparisons["level"].astype(bool)]["diff"].iloc[0]
    assert f"{0.0 - versus:+.3f}" in report  # the report's sign: hosted minus the reranker under test
    verdicts = pd.read_parquet(bundle / "tables" / "verdicts.parquet")
    judged = verdicts[verdicts["claim"].isin(["hosted-rerankers-win-on-english", "wins-multilingual-against-hosted-rerankers"])]
    assert len(judged) and (judged["verdict"] == "no matching run").all()  # the smoke reranker is a twin, not v2-m3
    # The second run: every answer from the cache; only the query that failed is asked again.
    again = pd.read_parquet(tmp_path / "b" / "tables" / "hosted.parquet")
    assert again.loc[again["reranker"] == hosted, "sent"].sum() == 0
    assert again.loc[again["reranker"] == voyage, "sent"].sum() == 1 and (again["status"] == "ok").all()
    # Priced inside the kernel too (its working directory is not the repository), cached answers included.
    assert again.loc[again["reranker"] == voyage, "cost_usd"].gt(0).all()
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "b" / "tables" / "quality.parquet").query("reranker == @hosted")
        .drop(columns="run_id").reset_index(drop=True), mine.drop(columns="run_id").reset_index(drop=True))
    # The key was sent (and echoed back by the scripted server), yet is under neither bundle, nor in the cache, nor
    # in anything the runs printed.
    assert any(r["authorization"] == f"Bearer {MARKER}" for r in Scripted.received)
    assert _files_with(tmp_path, MARKER.encode()) == []
    assert MARKER not in first.out + first.err + second.out + second.err


def test_the_cost_guard_refuses_a_run_over_its_budget_before_anything_is_written(tmp_path, session_cache, capsys):
    out = tmp_path / "never"
    code = main(["run", str(REPO / "params" / "smoke.yaml"), "--out", str(out), "--set", f"cache_dir={session_cache}",
                 "--set", "reranker.variants=[torch-fp32]", "--set", "reranker.baselines=[api:cohere/rerank-v3.5]",
                 "--set", "api.max_cost_usd=0.001"])
    err = capsys.readouterr().err
    assert code == 2
    assert "api.max_cost_usd" in err and "--set api.max_cost_usd=" in err
    assert not out.exists() and not list(tmp_path.glob(".*never*"))
    # A key is never a parameter.
    with pytest.raises(ParamsError, match="unknown key 'api.cohere.api_key'"):
        load_params(REPO / "params" / "smoke.yaml", ["api.cohere.api_key=x"])


def test_the_cap_is_shared_out_by_planned_cost_and_resumes_rerun_unfinished_hosted_executions(tmp_path):
    from types import SimpleNamespace

    from runlocalai_bench.run.hosted import PLANNED_FILE, execution_cap, planned_costs, rerun_on_resume

    params = load_params(REPO / "params" / "smoke.yaml", [
        "reranker.baselines=[api:cohere/rerank-v3.5, api:voyage/rerank-2.5]", "api.max_cost_usd=10"])
    rows = pd.DataFrame([{"stage": "hosted", "reranker": "api:cohere/rerank-v3.5", "cost_usd": 3.0},
                         {"stage": "hosted", "reranker": "api:cohere/rerank-v3.5", "cost_usd": 3.0},
                         {"stage": "hosted", "reranker": "api:voyage/rerank-2.5", "cost_usd": 2.0},
                         {"stage": "rerank", "reranker": None, "cost_usd": None}])
    planned = planned_costs(rows)
    cohere, voyage = sorted(planned)
    assert planned == {cohere: 6.0, voyage: 2.0}
    bundle = SimpleNamespace(root=tmp_path)
    assert execution_cap(bundle, params, cohere) == 5.0  # no plan written: shared equally
    assert execution_cap(bundle, params, voyage) == 5.0
    (tmp_path / PLANNED_FILE).write_text(json.dumps({"planned_usd": planned}))
    assert execution_cap(bundle, params, cohere) == pytest.approx(7.5)
    assert execution_cap(bundle, params, voyage) == pytest.approx(2.5)  # the shares add up to the cap
    assert rerun_on_resume({"variant": "hosted", "status": "skipped"})
    assert rerun_on_resume({"variant": "hosted", "status": "ok", "reason": "1 of 25 queries failed ..."})
    assert not rerun_on_resume({"variant": "hosted", "status": "ok", "reason": None})
    assert not rerun_on_resume({"variant": "torch-fp32", "status": "skipped"})
