"""Served variants: a real llama-server (built by `make llama-server` from the gguf extra's llama.cpp) on 127.0.0.1,
serving the same GGUF files the in-process gguf-* variants score.

Tolerance of served vs in-process scores: the same file, the same llama.cpp, the same tokens. What may differ is
how pairs are packed into one decode, and llama.cpp's scores depend on it: measured in process on the tiny twin
(fixture pairs, scores spread over 2.3), packed (8 pairs per call) against one pair per call differ by up to
0.004 in F16 and 0.071 in Q8_0 (a pair scored 0.983 alone or beside a 29-token pair, 0.956 beside two longer
ones: ggml chooses other matmul kernels, with other activation rounding, for calls of other sizes). So the
comparison fixes the packing on both sides, one pair per
decode (one server slot; batch size 1 in process), and then asks for agreement to 1e-5 of the scores' spread:
a wrong token, a lost special or a misplaced index moves a score by a sizeable part of the spread.
"""

from __future__ import annotations

import importlib.util
import os
import signal

import numpy as np
import pytest

from runlocalai_bench.perf.memory import peak_rss_mb
from runlocalai_bench.rerankers.base import truncate_pair
from runlocalai_bench.rerankers.base import VariantUnavailable
from runlocalai_bench.rerankers.registry import check_available, get_variant, load_reranker
from runlocalai_bench.serving.client import RerankError, parse_scores, rerank_body
from runlocalai_bench.serving.process import ServerFailed, port_is_free
from support import SERVED_MAX_LENGTH, llama_server_missing


needs_server = pytest.mark.skipif(llama_server_missing() is not None, reason=llama_server_missing() or "")
MAX_LENGTH = SERVED_MAX_LENGTH


@pytest.fixture(scope="module")
def served(tiny_xlmr, session_cache):
    reranker = load_reranker(get_variant("server-llama-q8_0"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache,
                             MAX_LENGTH, server_slots=1)
    yield reranker
    reranker.close()


@pytest.fixture(scope="module")
def in_process(tiny_xlmr, session_cache):
    reranker = load_reranker(get_variant("gguf-q8_0"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache, MAX_LENGTH)
    yield reranker
    reranker.close()


def test_parser_maps_results_back_by_index_and_refuses_gaps():
    payload = {"results": [{"index": 2, "relevance_score": 0.5}, {"index": 0, "relevance_score": -1.0},
                           {"index": 1, "relevance_score": 3.0}]}
    np.testing.assert_array_equal(parse_scores(payload, 3), np.array([-1.0, 3.0, 0.5], dtype=np.float32))
    with pytest.raises(RerankError, match="have no result"):
        parse_scores({"results": payload["results"][:2]}, 3)
    with pytest.raises(RerankError, match="repeated"):
        parse_scores({"results": payload["results"] + [{"index": 2, "relevance_score": 0.0}]}, 3)
    assert rerank_body("cohere", "q", ["a", "b"])["raw_scores"] is True
    assert rerank_body("jina", "q", ["a", "b"])["top_n"] == 2


@needs_server
@pytest.mark.parametrize("which", ["english", "multilingual"])
def test_served_scores_equal_the_in_process_scores_of_the_same_file(served, in_process, fixture_pairs,
                                                                    multilingual_pairs, which):
    pairs = fixture_pairs if which == "english" else multilingual_pairs
    served.details["truncation"] = {"cut_pairs": 0, "tokens_exact": 0}
    assert served.weight_files == in_process.weight_files  # one file, converted once
    assert served.specials == 4  # <s> query </s></s> document </s>, read from the server's own token count
    lengths = served.token_lengths(pairs, MAX_LENGTH)
    assert lengths.max() == MAX_LENGTH
    truncation = served.details["truncation"]
    too_long = sum(len(served.tokenize_text(q)) + len(served.tokenize_text(d)) + served.specials > MAX_LENGTH
                   for q, d in pairs)
    assert truncation["cut_pairs"] == too_long > 0
    # A prefix of a text need not tokenize to a prefix of its tokens (a word cut in two): rare, and counted.
    exact = [(q, d, MAX_LENGTH) not in served.inexact for q, d in pairs]
    assert truncation["cut_pairs"] - truncation["tokens_exact"] == len(exact) - sum(exact) <= 0.1 * too_long
    np.testing.assert_array_equal(lengths[exact], in_process.token_lengths(pairs, MAX_LENGTH)[exact])
    run = served.score(pairs, batch_size=8, max_length=MAX_LENGTH)
    expected = in_process.score(pairs, batch_size=1, max_length=MAX_LENGTH).values
    spread = float(np.ptp(expected))
    np.testing.assert_allclose(run.values[exact], expected[exact], rtol=0, atol=1e-5 * spread)
    # One request per query: four candidates per query in both fixtures.
    assert run.batch_pairs == [4] * (len(pairs) // 4)


@needs_server
def test_truncation_follows_longest_first_on_the_servers_tokens(served):
    query, doc = "what is the capital of france " * 3, "paris is the capital and largest city of france " * 20
    q_ids, d_ids = served.tokenize_text(query), served.tokenize_text(doc)
    q_keep, d_keep = truncate_pair(q_ids, d_ids, MAX_LENGTH - served.specials)
    q_text, d_text, tokens = served.fit(query, doc, MAX_LENGTH)
    assert q_text == query  # the query fits its half: untouched
    assert served.tokenize_text(d_text) == d_keep
    assert tokens == len(q_keep) + len(d_keep) + served.specials == MAX_LENGTH


@needs_server
def test_the_servers_memory_is_read_from_its_own_process(served, fixture_pairs):
    pid = served.memory_pid()
    assert pid is not None and pid != os.getpid()
    served.score(fixture_pairs[:4], batch_size=4, max_length=MAX_LENGTH)
    assert peak_rss_mb(pid) > 0
    runtime = served.runtime_memory()
    assert any(key.startswith("model (CPU") for key in runtime), runtime
    assert served.details["command"].startswith("llama-server -m model-Q8_0.gguf --reranking --host {host}")


@needs_server
def test_a_server_killed_mid_run_fails_the_scoring_and_its_port_is_freed(tiny_xlmr, session_cache, fixture_pairs):
    reranker = load_reranker(get_variant("server-llama-q4_k_m"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache,
                             MAX_LENGTH)
    port, pid = reranker.server.port, reranker.server.pid

    def kill_after_first_request(done: int, total: int) -> None:
        os.kill(pid, signal.SIGKILL)

    with pytest.raises(ServerFailed, match="killed by signal 9"):
        reranker.score(fixture_pairs[:8], batch_size=4, max_length=MAX_LENGTH, progress=kill_after_first_request)
    reranker.close()
    assert port_is_free(port)


@needs_server
def test_a_closed_server_exits_cleanly_and_frees_its_port(tiny_xlmr, session_cache, fixture_pairs):
    reranker = load_reranker(get_variant("server-llama-f16"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache,
                             MAX_LENGTH)
    port = reranker.server.port
    assert np.isfinite(reranker.score(fixture_pairs[:4], 4, MAX_LENGTH).values).all()
    reranker.close()
    assert reranker.details["server_exit_code"] == 0
    assert port_is_free(port)
    assert reranker.server.log_path is None or not reranker.server.log_path.exists()


def test_without_a_server_binary_the_variant_is_a_recorded_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNLOCALAI_BENCH_LLAMA_SERVER", str(tmp_path / "absent"))
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs the gguf extra: without it the skip names the extra instead")
    with pytest.raises(VariantUnavailable, match="not an executable file"):
        check_available(get_variant("server-llama-q4_k_m"), "cpu")
