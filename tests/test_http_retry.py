"""The OpenAI-compatible generator (datagen) and judge (evalsuite) against a scripted loopback server:
Retry-After, 429/5xx backoff, malformed 200s, dropped connections, rate cap, bounded failure that
keeps finished requests."""
from __future__ import annotations

import random

import pytest

from tests.loopback_openai import LoopbackOpenAI, reply_text
from tracecause.http_retry import RetryPolicy, parse_retry_after, retry_delay

from datagen.config import OpenAIConfig, SamplingConfig
from datagen.generators import GenerationError
from datagen.generators.openai_http import OpenAIGenerator

FAST = dict(backoff=0.01, backoff_max=0.05)


def _prompts(n):
    return [[{"role": "user", "content": f"tip {i}: how should I water my plants?"}] for i in range(n)]


def test_retry_after_and_delay_policy():
    assert parse_retry_after("3") == 3.0 and parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    policy = RetryPolicy(max_retries=5, backoff=1.0, backoff_max=8.0, retry_after_max=30.0)
    rng = random.Random(0)
    delays = [retry_delay(a, policy, rng=rng) for a in range(1, 7)]
    assert all(0.5 * min(2 ** (a - 1), 8) <= d <= min(2 ** (a - 1), 8) for a, d in zip(range(1, 7), delays))
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered, not lock-step
    assert retry_delay(1, policy, retry_after=20.0) == 20.0
    assert retry_delay(1, policy, retry_after=1e6) == 30.0  # a stuck server's Retry-After is clamped
    with pytest.raises(ValueError, match="retry policy"):
        RetryPolicy(backoff=2.0, backoff_max=1.0)


def test_generator_survives_every_retryable_fault():
    with LoopbackOpenAI() as srv:
        srv.script = [("status", 429, 1), ("status", 503), "malformed", "no_choices", "drop", ("status", 500)]
        gen = OpenAIGenerator("m", OpenAIConfig(base_url=srv.base_url, concurrency=1, max_retries=8, **FAST))
        out = gen.generate(_prompts(3), SamplingConfig(n=2, max_tokens=4), seeds=[7, 8, 9])
    assert [[str(g) for g in gens] for gens in out] == [
        [reply_text(p[0]["content"], s, c) for c in range(2)] for p, s in zip(_prompts(3), [7, 8, 9])]
    assert gen.retries == 6 and srv.served("ok") == 3
    # Retry-After: 1 was honoured although the backoff is 10 ms.
    t429, p429 = next((t, p) for t, p, o in srv.log if o == "status429")
    assert min(t for t, p, _ in srv.log if t > t429 and p == p429) - t429 >= 0.95


def test_generator_non_retryable_fails_at_once():
    with LoopbackOpenAI() as srv:
        srv.script = [("status", 400)]
        gen = OpenAIGenerator("m", OpenAIConfig(base_url=srv.base_url, concurrency=1, max_retries=5, **FAST))
        with pytest.raises(GenerationError, match="400"):
            gen.generate(_prompts(1), SamplingConfig(max_tokens=4))
    assert gen.retries == 0 and len(srv.log) == 1


def test_bounded_failure_keeps_finished_requests():
    with LoopbackOpenAI() as srv:
        srv.always_fail = {"tip 2:"}
        gen = OpenAIGenerator("m", OpenAIConfig(base_url=srv.base_url, concurrency=2, max_retries=3, **FAST))
        kept = {}
        with pytest.raises(GenerationError, match="gave up after 3 retries.*500"):
            gen.generate(_prompts(5), SamplingConfig(max_tokens=4), seeds=list(range(5)),
                         on_result=lambda i, gens: kept.__setitem__(i, str(gens[0])))
        assert sorted(kept) == [0, 1, 3, 4]  # the other four finished and were handed over
        assert sum(1 for _, p, _ in srv.log if "tip 2:" in p) == 4  # 1 + 3 bounded retries


def test_request_rate_is_capped():
    with LoopbackOpenAI() as srv:
        gen = OpenAIGenerator("m", OpenAIConfig(base_url=srv.base_url, concurrency=8, requests_per_s=20.0))
        gen.generate(_prompts(9), SamplingConfig(max_tokens=4))
        starts = sorted(t for t, _, _ in srv.log)
    # 9 starts at <= 20/s span at least 8 intervals of 50 ms, although 8 could run at once.
    assert starts[-1] - starts[0] >= 8 * 0.05 * 0.9


def test_openai_judge_retries_and_streams_results():
    from evalsuite.config import JudgeConfig
    from evalsuite.judges.backends import OpenAIJudge

    with LoopbackOpenAI() as srv:
        srv.script = [("status", 429, 0), "malformed", "drop"]
        cfg = JudgeConfig(backend="openai", model="judge", base_url=srv.base_url, max_concurrency=1, retries=4,
                          backoff_s=0.01, backoff_max_s=0.05)
        judge = OpenAIJudge(cfg)
        got = {}
        replies = judge.complete(["rate A", "rate B"], on_result=lambda i, r: got.__setitem__(i, r))
        assert replies == [reply_text("rate A", 0, 0), reply_text("rate B", 0, 0)]
        assert got == {0: replies[0], 1: replies[1]}
        assert judge.retries == 3
        srv.always_fail = {"rate C"}
        got.clear()
        with pytest.raises(RuntimeError, match="judge endpoint.*gave up after 4 retries"):
            judge.complete(["rate C", "rate D"], on_result=lambda i, r: got.__setitem__(i, r))
        assert got == {1: reply_text("rate D", 0, 0)}
