"""Any OpenAI-compatible chat endpoint (a vLLM server or a hosted API) over httpx.

Concurrency and request rate are both capped; every request retries on its own
(``tracecause.http_retry``: transport errors, 429/5xx with ``Retry-After`` and jitter, a
malformed 200 or an error dressed as a completion), and fails for good only after the bounded
retries. Each finished request is handed to ``on_result`` as it lands, so a shard keeps what
finished even when another request fails. The API key is read from the environment variable named
in the config and is never written anywhere.
"""
from __future__ import annotations

import asyncio
import os
import sys
from typing import Callable

import httpx

from tracecause.config import ConfigError
from tracecause.http_retry import (RateLimiter, RequestFailed, RetryPolicy, completion_choices, gather_keeping_results,
                                   post_with_retries)

from datagen.config import OpenAIConfig, SamplingConfig
from datagen.generators import Generation, GenerationError, Messages


def _log(message: str) -> None:
    print(f"[datagen] {message}", file=sys.stderr, flush=True)


class OpenAIGenerator:
    def __init__(self, model: str, cfg: OpenAIConfig):
        self.model, self.cfg = model, cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.policy = RetryPolicy(cfg.max_retries, cfg.backoff, max(cfg.backoff, cfg.backoff_max), cfg.retry_after_max)
        self._headers = {}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ConfigError("environment", cfg.api_key_env,
                                  f"generator.openai.api_key_env names {cfg.api_key_env!r}, which is not set")
            self._headers["Authorization"] = f"Bearer {key}"
        self.retries = 0  # retried requests so far (reported in the shard stats)

    def generate(self, prompts: list[Messages], sampling: SamplingConfig, seeds: list[int] | None = None,
                 on_result: Callable[[int, list[Generation]], None] | None = None) -> list[list[Generation]]:
        if not prompts:
            return []
        seeds = seeds if seeds is not None else [sampling.seed + i for i in range(len(prompts))]
        try:
            return asyncio.run(self._generate_all(prompts, sampling, seeds, on_result))
        except RequestFailed as err:
            raise GenerationError(str(err)) from None

    async def _generate_all(self, prompts, sampling, seeds, on_result):
        gate = asyncio.Semaphore(self.cfg.concurrency)
        limiter = RateLimiter(self.cfg.requests_per_s)
        limits = httpx.Limits(max_connections=self.cfg.concurrency)
        async with httpx.AsyncClient(timeout=self.cfg.timeout, limits=limits, headers=self._headers) as client:
            return await gather_keeping_results(
                [self._one(client, gate, limiter, p, sampling, s) for p, s in zip(prompts, seeds)], on_result)

    async def _one(self, client, gate, limiter, messages: Messages, sampling: SamplingConfig, seed: int):
        body = {"model": self.model, "messages": messages, "temperature": sampling.temperature,
                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens, "n": sampling.n,
                "seed": seed, **self.cfg.extra_body}
        return await post_with_retries(client, self.url, body, lambda payload: self._parse(payload, sampling.n),
                                       self.policy, limiter, gate, log=_log, on_retry=self._count_retry)

    def _count_retry(self) -> None:
        self.retries += 1

    def _parse(self, payload: dict, n: int) -> list[Generation]:
        # an error dressed as a completion (wrong-typed content, an error finish) is a MalformedReply:
        # retried, and never handed to on_result, so it never reaches the shard's journal
        return [Generation(text, reason) for text, reason in completion_choices(payload, n)]

    def close(self) -> None:
        pass
