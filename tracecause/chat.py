"""Qwen3 chat conventions shared by every stage: think tags, rendering, splitting outputs."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# What Qwen3's template writes for a turn without reasoning, and pre-fills in no-think mode.
EMPTY_THINK = f"{THINK_OPEN}\n\n{THINK_CLOSE}\n\n"


def render(tokenizer: Any, messages: Sequence[Mapping[str, Any]], *, enable_thinking: bool,
           add_generation_prompt: bool) -> str:
    """The conversation as text, exactly as the tokenizer's (Qwen3) chat template renders it."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False, enable_thinking=enable_thinking,
                                         add_generation_prompt=add_generation_prompt)


def split_reasoning(text: str) -> tuple[str, str, bool]:
    """Split a generated assistant continuation into ``(reasoning, answer, think_closed)``.

    Works on what follows the generation prompt: in think mode the model writes
    ``<think>\\nR\\n</think>\\n\\nA``; in no-think mode the empty think block is part of the
    prompt, so the output is just ``A``. Reasoning loses the newlines around it and the answer
    its leading newlines (as Qwen3's template does); nothing else is touched. A think block that never closes (the model ran out of tokens)
    gives ``(everything after <think>, "", False)``: there is no answer. Text with no think
    tag at all is all answer (``think_closed`` is True: nothing is left open).
    """
    head, sep, tail = text.partition(THINK_CLOSE)
    if not sep:
        stripped = text.lstrip()
        if stripped.startswith(THINK_OPEN):
            return stripped[len(THINK_OPEN):].strip("\n"), "", False
        return "", text.lstrip("\n"), True
    reasoning = head.split(THINK_OPEN, 1)[-1] if THINK_OPEN in head else head
    return reasoning.strip("\n"), tail.lstrip("\n"), True


def assistant_message(answer: str, reasoning: str | None = None) -> dict:
    """An assistant turn in the shape Qwen3's template expects (reasoning in ``reasoning_content``)."""
    msg = {"role": "assistant", "content": answer}
    if reasoning is not None:
        msg["reasoning_content"] = reasoning
    return msg
