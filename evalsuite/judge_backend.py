"""Judge LLM backends: vLLM offline engine or an OpenAI-compatible HTTP endpoint.

Both take user-message texts and return the judge's raw reply texts, in order. Transport errors
(after ``retries``) raise: the task fails and its finished judgements stay in the cache.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

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
                      tensor_parallel_size=e.tensor_parallel_size, max_num_seqs=e.max_num_seqs)
        self.cfg, self.llm = cfg, llm
        try:
            self.max_model_len = int(llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            self.max_model_len = cfg.engine.max_model_len
        self.tokenizer = llm.get_tokenizer()
        self.requests_run = 0

    def identity(self) -> dict:
        return {"backend": "vllm", "model": self.cfg.model, "revision": self.cfg.revision}

    def complete(self, texts: Sequence[str]) -> list[str]:
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
        return [o.outputs[0].text for o in outs]


class OpenAIJudge:
    def __init__(self, cfg: JudgeConfig):
        from openai import OpenAI

        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if cfg.api_key_env and not key:
            raise ValueError(f"judge.api_key_env names ${cfg.api_key_env}, which is not set")
        if not cfg.model:
            raise ValueError("judge.model is required for backend 'openai' (the served model name)")
        if not cfg.base_url:
            raise ValueError("judge.base_url is required for backend 'openai' (e.g. http://127.0.0.1:8000/v1)")
        self.cfg = cfg
        self.client = OpenAI(base_url=cfg.base_url, api_key=key or "EMPTY", timeout=cfg.timeout_s, max_retries=cfg.retries)
        self.requests_run = 0

    def identity(self) -> dict:
        return {"backend": "openai", "model": self.cfg.model, "base_url": self.cfg.base_url}

    def _one(self, text: str) -> str:
        s = self.cfg.sampling
        resp = self.client.chat.completions.create(
            model=self.cfg.model, messages=[{"role": "user", "content": text}], temperature=s.temperature,
            top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed,
            extra_body={"chat_template_kwargs": {"enable_thinking": self.cfg.enable_thinking}})
        return resp.choices[0].message.content or ""

    def complete(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        with ThreadPoolExecutor(max_workers=self.cfg.max_concurrency) as pool:
            out = list(pool.map(self._one, texts))
        self.requests_run += len(texts)
        return out


def make_backend(cfg: JudgeConfig, llm: Any = None):
    return OpenAIJudge(cfg) if cfg.backend == "openai" else VllmJudge(cfg, llm=llm)
