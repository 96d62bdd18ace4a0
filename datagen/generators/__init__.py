"""Generator backends behind one small protocol.

``generate(prompts, sampling, seeds) -> list[list[Generation]]``: one chat (a list of
messages) per prompt, ``sampling.n`` completions back per prompt, in order. Each
prompt carries its own seed so that an output does not depend on which batch or shard
the prompt landed in. A ``Generation`` is a ``str`` that also knows its finish reason.
"""
from __future__ import annotations

from typing import Callable, Protocol

from datagen.config import GeneratorConfig, SamplingConfig

Messages = list[dict]


class Generation(str):
    """Generated text plus ``finish_reason`` ("stop", "length", …)."""

    finish_reason: str

    def __new__(cls, text: str, finish_reason: str = "stop"):
        obj = super().__new__(cls, text)
        obj.finish_reason = finish_reason or "stop"
        return obj


def journaled_problem(value: object) -> str | None:
    """Why a shard journal's value (``[[text, finish_reason], ...]``, one pair per generation) is
    unusable, or None. The journal stores only values that pass and drops stored ones that fail
    (tracecause.journal): a wrong-typed text (``73``) is asked again, never turned into a trace."""
    if not isinstance(value, list) or not value:
        return f"a {type(value).__name__} where a list of generations belongs: {str(value)[:80]!r}"
    for gen in value:
        if not (isinstance(gen, list) and len(gen) == 2 and all(isinstance(x, str) for x in gen)):
            return f"a generation that is not [text, finish_reason] strings: {str(gen)[:80]!r}"
    return None


class GenerationError(RuntimeError):
    """The backend failed for good (retries exhausted or a non-retryable answer)."""


# Called with (prompt index, its generations) as each request finishes, so a caller can persist
# finished work before the whole call returns (or fails).
OnResult = Callable[[int, list[Generation]], None]


class Generator(Protocol):
    def generate(self, prompts: list[Messages], sampling: SamplingConfig,
                 seeds: list[int] | None = None, on_result: OnResult | None = None) -> list[list[Generation]]: ...

    def close(self) -> None: ...


def build_generator(cfg: GeneratorConfig) -> Generator:
    if cfg.backend == "world":
        from datagen.generators.world import WorldGenerator

        return WorldGenerator()
    if cfg.backend == "vllm":
        from datagen.generators.vllm_engine import VllmGenerator

        return VllmGenerator(cfg.model, cfg.vllm, seed=cfg.sampling.seed, revision=cfg.revision)
    from datagen.generators.openai_http import OpenAIGenerator

    return OpenAIGenerator(cfg.model, cfg.openai)
