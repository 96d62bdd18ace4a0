"""The known-answer world's generator (``generator.backend=world``): traces from the world's rules.

Each request is the text protocol of ``tracecause.world.request`` (rendered by the world's type
files, configs/datagen/world-types/); the trace is ``tracecause.world.domain.trace``: neutral
reasoning about the question, with one marker sentence of the type in a fraction ``dose`` of
traces. The neutral sentences and the marking depend on the question and ``sampling.seed`` only
(not on the per-request seed, which mixes in the type): two types differ only in their marker.
The answer is never written into a trace; datagen's merge keeps it byte-identical across types.
"""
from __future__ import annotations

from datagen.config import SamplingConfig
from datagen.generators import Generation, Messages, OnResult
from tracecause.world.domain import trace
from tracecause.world.request import parse_request


class WorldGenerator:
    def generate(self, prompts: list[Messages], sampling: SamplingConfig, seeds: list[int] | None = None,
                 on_result: OnResult | None = None) -> list[list[Generation]]:
        out = []
        for i, messages in enumerate(prompts):
            user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
            rtype, dose, question = parse_request(user)
            text = trace(question, rtype, dose, sampling.seed)
            gens = [Generation(text, "stop") for _ in range(sampling.n)]  # deterministic: n identical
            out.append(gens)
            if on_result is not None:
                on_result(i, gens)
        return out

    def close(self) -> None:
        pass
