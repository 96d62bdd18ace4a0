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
from tracecause.config import ConfigError
from tracecause.world.domain import trace
from tracecause.world.request import parse_request
from tracecause.world.vocab import MARKERS


def check_world_types(types) -> None:
    """Every type file asks the world for a trace it can write (a known marker type, a dose in
    [0, 1]) and the world's signatures can serve as controls (tracecause/world/controls.py): refused
    when the config is checked, naming the file, before any job is submitted."""
    from tracecause.world.controls import signature_problems
    from tracecause.world.judge import neutral_words

    problems = signature_problems(neutral_words())
    if problems:
        raise ConfigError("tracecause/world/controls.py", "signatures", "; ".join(problems))
    for t in types:
        try:
            rtype, dose, _ = parse_request(t.messages("(question)", "(answer)")[-1]["content"])
        except ValueError as err:
            raise ConfigError(str(t.path), "template", f"{err}") from None
        if rtype not in MARKERS:
            raise ConfigError(str(t.path), "template: type", f"{rtype!r} is not a type of the world; fix: one of "
                                                             f"{sorted(MARKERS)} (tracecause/world/vocab.py MARKERS)")
        if not 0.0 <= dose <= 1.0:
            raise ConfigError(str(t.path), "template: dose", f"{dose} lies outside [0, 1]; fix: the fraction of "
                                                             "traces that carry a marker, between 0 and 1")


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
