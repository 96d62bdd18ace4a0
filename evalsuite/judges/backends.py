"""Judge LLM backends: vLLM offline engine or an OpenAI-compatible HTTP endpoint.

Both take user-message texts and return the judge's raw reply texts, in order, handing each to
``on_result`` as it lands. A call that fails after the bounded retries raises, after the others
finished: the task fails (or is requeued) and every finished judgement stays in the cache.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

from evalsuite.config import JudgeConfig


class VllmJudge:
    def __init__(self, cfg: JudgeConfig, llm: Any = None):
        if not cfg.model and llm is None:
            raise ValueError("judge.model is required for backend 'vllm' (a local folder or hub id)")
        if llm is None:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            from vllm import LLM

            e = cfg.engine
            llm = LLM(model=cfg.model, revision=cfg.revision or None, dtype=e.dtype, max_model_len=e.max_model_len,
                      gpu_memory_utilization=e.gpu_memory_utilization, enforce_eager=e.enforce_eager, seed=e.seed,
                      tensor_parallel_size=e.tensor_parallel_size, max_num_seqs=e.max_num_seqs,
                      quantization=e.quantization or None)
        self.cfg, self.llm = cfg, llm
        try:
            self.max_model_len = int(llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            self.max_model_len = cfg.engine.max_model_len
        self.tokenizer = llm.get_tokenizer()
        self.requests_run = 0

    def identity(self) -> dict:
        from evalsuite.generation_key import engine_settings

        # a cached verdict is reused only from the same judge under the same numerics
        return {"backend": "vllm", "model": self.cfg.model, "revision": self.cfg.revision,
                "engine": engine_settings(self.cfg.engine)}

    def complete(self, texts: Sequence[str], on_result: Callable[[int, str], None] | None = None) -> list[str]:
        from vllm import SamplingParams

        if not texts:
            return []
        s = self.cfg.sampling
        # The prompt is cut, not the engine crashed, when a sample is longer than the judge's window.
        budget = max(16, self.max_model_len - s.max_tokens)
        prompts = []
        for t in texts:
            ids = self.tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=True,
                                                     add_generation_prompt=True, enable_thinking=self.cfg.enable_thinking)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            if len(ids) > budget:
                ids = ids[:budget // 2] + ids[-(budget - budget // 2):]
            prompts.append({"prompt_token_ids": list(ids)})
        sp = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed)
        outs = self.llm.generate(prompts, sp, use_tqdm=False)
        self.requests_run += len(texts)
        replies = [o.outputs[0].text for o in outs]
        for i, reply in enumerate(replies if on_result else ()):  # an offline batch finishes all at once
            on_result(i, reply)
        return replies


class OpenAIJudge:
    """An OpenAI-compatible endpoint over httpx, with tracecause.http_retry's bounded policy:
    Retry-After, 429/5xx backoff with jitter, a malformed 200 retried, concurrency and rate capped.
    Each reply is handed to ``on_result`` as it lands, so a failing call loses no finished one."""

    def __init__(self, cfg: JudgeConfig):
        from tracecause.http_retry import RetryPolicy

        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if cfg.api_key_env and not key:
            raise ValueError(f"judge.api_key_env names ${cfg.api_key_env}, which is not set")
        if not cfg.model:
            raise ValueError("judge.model is required for backend 'openai' (the served model name)")
        if not cfg.base_url:
            raise ValueError("judge.base_url is required for backend 'openai' (e.g. http://127.0.0.1:8000/v1)")
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.policy = RetryPolicy(cfg.retries, cfg.backoff_s, max(cfg.backoff_s, cfg.backoff_max_s), cfg.retry_after_max_s)
        self.requests_run = 0
        self.retries = 0

    def identity(self) -> dict:
        return {"backend": "openai", "model": self.cfg.model, "base_url": self.cfg.base_url}

    def _body(self, text: str) -> dict:
        s = self.cfg.sampling
        return {"model": self.cfg.model, "messages": [{"role": "user", "content": text}], "temperature": s.temperature,
                "top_p": s.top_p, "max_tokens": s.max_tokens, "seed": s.seed,
                "chat_template_kwargs": {"enable_thinking": self.cfg.enable_thinking}}

    @staticmethod
    def _parse(payload: Any) -> str:
        from tracecause.http_retry import completion_choices

        # wrong-typed content or an error finish raises MalformedReply: retried, never cached
        return completion_choices(payload)[0][0]

    def complete(self, texts: Sequence[str], on_result: Callable[[int, str], None] | None = None) -> list[str]:
        import asyncio

        from tracecause.http_retry import RequestFailed

        if not texts:
            return []
        try:
            out = asyncio.run(self._complete_all(list(texts), on_result))
        except RequestFailed as err:
            raise RuntimeError(f"judge endpoint: {err}") from None
        self.requests_run += len(texts)
        return out

    async def _complete_all(self, texts: list[str], on_result) -> list[str]:
        import asyncio

        import httpx

        from tracecause.http_retry import RateLimiter, gather_keeping_results, post_with_retries

        gate, limiter = asyncio.Semaphore(self.cfg.max_concurrency), RateLimiter(self.cfg.requests_per_s)

        def log(message: str) -> None:
            print(f"[judge] {message}", file=sys.stderr, flush=True)

        def count_retry() -> None:
            self.retries += 1

        limits = httpx.Limits(max_connections=self.cfg.max_concurrency)
        async with httpx.AsyncClient(timeout=self.cfg.timeout_s, limits=limits, headers=self._headers) as client:
            return await gather_keeping_results(
                [post_with_retries(client, self.url, self._body(t), self._parse, self.policy, limiter, gate,
                                   log=log, on_retry=count_retry) for t in texts], on_result)


def make_backend(cfg: JudgeConfig, llm: Any = None):
    return OpenAIJudge(cfg) if cfg.backend == "openai" else VllmJudge(cfg, llm=llm)
