"""Any OpenAI-compatible chat endpoint (a vLLM server or a hosted API) over httpx.

Bounded concurrency, a timeout per request, and retries with exponential backoff on
transport errors, 408/409/429 and 5xx; any other status fails at once with the body.
The API key is read from the environment variable named in the config and is never
written anywhere.
"""
from __future__ import annotations

import asyncio
import os
import random
import sys

import httpx

from tracecause.config import ConfigError

from datagen.config import OpenAIConfig, SamplingConfig
from datagen.generators import Generation, GenerationError, Messages

RETRYABLE_STATUS = {408, 409, 429}


class OpenAIGenerator:
    def __init__(self, model: str, cfg: OpenAIConfig):
        self.model, self.cfg = model, cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self._headers = {}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ConfigError("environment", cfg.api_key_env,
                                  f"generator.openai.api_key_env names {cfg.api_key_env!r}, which is not set")
            self._headers["Authorization"] = f"Bearer {key}"
        self.retries = 0  # retried requests so far (reported in the shard stats)

    def generate(self, prompts: list[Messages], sampling: SamplingConfig,
                 seeds: list[int] | None = None) -> list[list[Generation]]:
        if not prompts:
            return []
        seeds = seeds if seeds is not None else [sampling.seed + i for i in range(len(prompts))]
        return asyncio.run(self._generate_all(prompts, sampling, seeds))

    async def _generate_all(self, prompts, sampling, seeds):
        sem = asyncio.Semaphore(self.cfg.concurrency)
        limits = httpx.Limits(max_connections=self.cfg.concurrency)
        async with httpx.AsyncClient(timeout=self.cfg.timeout, limits=limits, headers=self._headers) as client:
            return await asyncio.gather(*(self._one(client, sem, p, sampling, s) for p, s in zip(prompts, seeds)))

    async def _one(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, messages: Messages,
                   sampling: SamplingConfig, seed: int) -> list[Generation]:
        body = {"model": self.model, "messages": messages, "temperature": sampling.temperature,
                "top_p": sampling.top_p, "max_tokens": sampling.max_tokens, "n": sampling.n,
                "seed": seed, **self.cfg.extra_body}
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self.retries += 1
                delay = min(self.cfg.backoff * 2 ** (attempt - 1), self.cfg.backoff_max)
                print(f"[datagen] {last}; retry {attempt}/{self.cfg.max_retries} in {delay:.1f}s",
                      file=sys.stderr, flush=True)
                await asyncio.sleep(delay * (1 + 0.1 * random.random()))
            try:
                async with sem:
                    resp = await client.post(self.url, json=body)
            except httpx.TransportError as err:  # connect refused/reset, timeouts
                last = f"{self.url}: {type(err).__name__}: {err}"
                continue
            if resp.status_code == 200:
                return self._parse(resp.json(), sampling.n)
            last = f"{self.url} answered {resp.status_code}: {resp.text[:300]}"
            if resp.status_code not in RETRYABLE_STATUS and resp.status_code < 500:
                raise GenerationError(last)
        raise GenerationError(f"gave up after {self.cfg.max_retries} retries: {last}")

    def _parse(self, payload: dict, n: int) -> list[Generation]:
        choices = sorted(payload.get("choices") or [], key=lambda c: c.get("index", 0))
        if len(choices) != n:
            raise GenerationError(f"{self.url} returned {len(choices)} choices, asked for n={n}")
        return [Generation((c.get("message") or {}).get("content") or "", c.get("finish_reason") or "stop")
                for c in choices]

    def close(self) -> None:
        pass
