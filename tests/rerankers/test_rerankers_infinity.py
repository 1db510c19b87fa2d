"""The infinity variant: a real infinity server (``make infinity``, its own virtualenv) on 127.0.0.1 serving the
tiny twin's checkpoint with its torch engine, against torch-fp32 in process on the same folder.

Tolerance: the same weights and eager fp32 arithmetic, the same tokens (the client cuts pairs with the checkpoint's
tokenizer before the server sees them). What may differ is the batching: infinity batches the pairs of a request as
its queue gives them, the in-process variant by length, and a pair's score in fp32 moves with the padded length of
its batch by rounding only (the attention mask keeps padding out). So the scores must agree to 1e-5 of their
spread (measured: at most 2.1e-6 on a spread of 2.29): a lost special token, a different cut or a misplaced index moves a score by a sizeable part of it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal

import numpy as np
import pytest

from runlocalai_bench.perf.memory import peak_rss_mb, reset_peak_rss
from runlocalai_bench.rerankers.backends import infinity
from runlocalai_bench.rerankers.base import LoadRequest, VariantUnavailable, truncate_pair
from runlocalai_bench.rerankers.registry import check_available, get_variant, load_reranker
from runlocalai_bench.serving.load import Sweep, run_sweep
from runlocalai_bench.serving.process import ServerFailed, port_is_free
from support import SERVED_MAX_LENGTH as MAX_LENGTH, infinity_missing

needs_infinity = pytest.mark.skipif(infinity_missing() is not None, reason=infinity_missing() or "")


@pytest.fixture(scope="module")
def served(tiny_xlmr, session_cache):
    reranker = load_reranker(get_variant("server-infinity-torch"), "cpu", tiny_xlmr.location, tiny_xlmr,
                             session_cache, MAX_LENGTH, server_slots=8)
    yield reranker
    reranker.close()


@pytest.fixture(scope="module")
def in_process(tiny_xlmr, session_cache):
    reranker = load_reranker(get_variant("torch-fp32"), "cpu", tiny_xlmr.location, tiny_xlmr, session_cache,
                             MAX_LENGTH)
    yield reranker
    reranker.close()


@needs_infinity
@pytest.mark.parametrize("which", ["english", "multilingual"])
def test_served_scores_equal_torch_fp32_in_process(served, in_process, fixture_pairs, multilingual_pairs, which):
    pairs = fixture_pairs if which == "english" else multilingual_pairs
    served._fitted.clear()  # counted afresh, whichever test cut these pairs before
    served.inexact.clear()
    served.details["truncation"] = {"cut_pairs": 0, "tokens_exact": 0}
    assert served.weight_files == in_process.weight_files  # the same checkpoint
    assert served.specials == 4  # <s> query </s></s> document </s>
    lengths = served.token_lengths(pairs, MAX_LENGTH)
    assert lengths.max() == MAX_LENGTH
    truncation = served.details["truncation"]
    too_long = sum(len(served.tokenize_text(q.strip())) + len(served.tokenize_text(d.strip())) + 4 > MAX_LENGTH
                   for q, d in pairs)
    assert truncation["cut_pairs"] == too_long > 0
    # Cut at the end of the last kept token's characters: every cut tokenizes back exactly on these fixtures.
    assert truncation["tokens_exact"] == too_long and not served.inexact
    np.testing.assert_array_equal(lengths, in_process.token_lengths(pairs, MAX_LENGTH))
    run = served.score(pairs, batch_size=8, max_length=MAX_LENGTH)
    expected = in_process.score(pairs, batch_size=8, max_length=MAX_LENGTH).values
    spread = float(np.ptp(expected))
    assert spread > 0
    np.testing.assert_allclose(run.values, expected, rtol=0, atol=1e-5 * spread)
    assert run.batch_pairs == [4] * (len(pairs) // 4)  # one request per query


@needs_infinity
@pytest.mark.parametrize("query, doc", [
    ("what is the capital of france " * 3, "paris is the capital and largest city of france " * 20),  # doc cut
    ("paris is the capital and largest city of france " * 20, "the capital of france"),  # query cut
    ("  what is the capital of france and its largest city " * 4, "paris is the capital  \n" * 12),  # both, spaces
])
def test_truncation_follows_longest_first_on_the_checkpoints_tokens(served, in_process, query, doc):
    q_ids, d_ids = served.tokenize_text(query.strip()), served.tokenize_text(doc.strip())
    q_keep, d_keep = truncate_pair(q_ids, d_ids, MAX_LENGTH - served.specials)
    q_text, d_text, tokens = served.fit(query, doc, MAX_LENGTH)
    assert query.strip().startswith(q_text) and doc.strip().startswith(d_text)
    assert served.tokenize_text(q_text.strip()) == q_keep and served.tokenize_text(d_text.strip()) == d_keep
    assert tokens == len(q_keep) + len(d_keep) + served.specials == MAX_LENGTH
    assert in_process.token_lengths([(query, doc)], MAX_LENGTH).tolist() == [tokens]
    np.testing.assert_allclose(served.score([(query, doc)], 1, MAX_LENGTH).values,
                               in_process.score([(query, doc)], 1, MAX_LENGTH).values, rtol=0, atol=1e-5)


@needs_infinity
def test_memory_is_the_servers_and_a_sweep_runs_against_it(served, fixture_pairs):
    pid = served.memory_pid()
    assert pid is not None and pid != os.getpid()
    queries = [fixture_pairs[i:i + 4] for i in range(0, 16, 4)]
    requests = served.load_requests(queries, MAX_LENGTH)
    sweep = Sweep(concurrencies=(1, 2), rate_fractions=(0.5,), warmup_requests=1, min_requests=4, min_seconds=0.0,
                  open_requests=4, open_seconds=0.0, latency_target_s=60.0)
    rows = run_sweep(served.load_target(), requests, sweep, before_point=lambda: reset_peak_rss(pid),
                     after_point=lambda row: {**row, "peak_rss_mb": peak_rss_mb(pid)})
    assert [(r["mode"], r["concurrency"]) for r in rows] == [("closed", 1), ("closed", 2), ("open", None)]
    for row in rows:
        assert row["errors"] == 0 and row["requests"] >= 4
        assert row["pairs_per_s"] == pytest.approx(4 * row["requests_per_s"])
        assert row["peak_rss_mb"] > 0
    command = served.details["command"]
    assert command.startswith("python -I -c <TF32 off, then infinity_emb> v2 --model-id") and "--no-compile" in command
    assert "--no-vector-disk-cache" in command and "--batch-size 8" in command
    assert served.details["versions"]["infinity_emb"] == "0.0.78"
    assert infinity.TF32_LINE in served.server.log_text()  # started through the wrapper that turns TF32 off


@needs_infinity
def test_a_server_killed_mid_run_fails_the_scoring_and_its_port_is_freed(tiny_xlmr, session_cache, fixture_pairs,
                                                                         monkeypatch):
    monkeypatch.setenv("INFINITY_API_KEY", "not-the-suites")  # the user's infinity settings never reach its server
    reranker = load_reranker(get_variant("server-infinity-torch"), "cpu", tiny_xlmr.location, tiny_xlmr,
                             session_cache, MAX_LENGTH)
    try:
        port, pid, home = reranker.server.port, reranker.server.pid, reranker.home.name
        assert np.isfinite(reranker.score(fixture_pairs[:4], 4, MAX_LENGTH).values).all()

        def kill_after_first_request(done: int, total: int) -> None:
            os.kill(pid, signal.SIGKILL)

        with pytest.raises(ServerFailed, match="killed by signal 9"):
            reranker.score(fixture_pairs[4:12], batch_size=4, max_length=MAX_LENGTH, progress=kill_after_first_request)
    finally:
        reranker.close()
    assert port_is_free(port) and not os.path.exists(home)


@needs_infinity
def test_a_two_label_checkpoint_is_refused_before_a_server_starts(tiny_xlmr, session_cache, tmp_path):
    folder = tmp_path / "two-labels"
    shutil.copytree(tiny_xlmr.location, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(id2label={"0": "no", "1": "yes"}, label2id={"no": 0, "yes": 1})
    (folder / "config.json").write_text(json.dumps(config))
    request = LoadRequest(get_variant("server-infinity-torch"), "cpu", folder, tiny_xlmr, tmp_path / "exports",
                          MAX_LENGTH)
    with pytest.raises(VariantUnavailable, match="2 output labels"):
        infinity.load(request)


def test_without_infinity_the_variant_is_a_recorded_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNLOCALAI_BENCH_INFINITY", str(tmp_path / "absent"))
    with pytest.raises(VariantUnavailable, match="not an executable file"):
        check_available(get_variant("server-infinity-torch"), "cpu")
