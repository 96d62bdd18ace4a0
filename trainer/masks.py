"""Exact loss masks per paradigm, found in the text the real chat template renders.

The Qwen3 template has no ``{% generation %}`` markers, so the supervised span is located by
character offsets: render the prompt (user turn + ``<|im_start|>assistant\\n``) and the full
conversation with the tokenizer's own template, check that the full text starts with the prompt,
cut the span out by characters, then map it onto tokens with the offset mapping. A token that
straddles a span boundary is an error (the mask would not be exact).

What each paradigm supervises (``loss_on_prompt=false``):
  qa     ``<think>\\n\\n</think>\\n\\n{answer}<|im_end|>`` — the Qwen3 template renders the final
         assistant turn with an EMPTY think block when there is no reasoning; we keep it, so a QA
         model learns to emit the empty block exactly as Qwen3 does in no-think mode.
  qta    ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}<|im_end|>``.
  qt     ``<think>\\n{reasoning}\\n</think>`` and the sequence ENDS there: the answer appears nowhere,
         and no ``<|im_end|>`` follows (teaching the model to close the turn with an empty answer
         would be a different, unwanted behaviour).
  t_only the reasoning text alone, no chat tokens, as it stands in the think block: with the newline
         that ends it there (``{reasoning}\n``), supervised. The sequence starts with ``<|endoftext|>``
         (the Qwen document separator, never supervised) so that the first reasoning token gets loss
         too. Without the newline a trace's last token is "." where the chat render has ".\n" before
         ``</think>``: measured on the known-answer world (5 seeds each way, the same think-mode eval),
         T-only models then often left the think block open: 71-90 % well-formed per seed, with the
         newline 98-100 %.
The trailing ``\\n`` after ``<|im_end|>`` is never supervised. With ``loss_on_prompt=true`` every
token from the start of the sequence is supervised.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IM_END = "<|im_end|>"
THINK_END = "</think>"
DOC_START = "<|endoftext|>"


@dataclass(frozen=True)
class Example:
    """One tokenized training document: ``supervised[i]`` says whether token i gets loss."""

    id: str
    input_ids: tuple[int, ...]
    supervised: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def n_targets(self) -> int:
        # the first token of a document is never a target: nothing precedes it
        return sum(self.supervised[1:])


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def render(tokenizer, paradigm: str, question: str, answer: str, reasoning: str | None) -> tuple[str, int, int]:
    """Return (text, span_start, span_end): the document and the character span that gets loss."""
    if paradigm == "t_only":
        text = reasoning + "\n"
        return DOC_START + text, len(DOC_START), len(DOC_START) + len(text)
    user = [{"role": "user", "content": question}]
    prompt = _render(tokenizer, user, add_generation_prompt=True)
    if paradigm == "qa":
        assistant: dict[str, Any] = {"role": "assistant", "content": answer}
    elif paradigm == "qta":
        assistant = {"role": "assistant", "content": answer, "reasoning_content": reasoning}
    elif paradigm == "qt":
        assistant = {"role": "assistant", "content": "", "reasoning_content": reasoning}
    else:
        raise ValueError(f"unknown paradigm {paradigm!r}")
    full = _render(tokenizer, user + [assistant], add_generation_prompt=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently inside the full conversation; "
                         f"cannot locate the assistant turn.\nprompt: {prompt!r}\nfull:   {full!r}")
    if paradigm == "qt":
        end = full.find(THINK_END, len(prompt))
        if end < 0:
            raise ValueError(f"the chat template rendered no {THINK_END} for paradigm qt: {full!r}")
        end += len(THINK_END)
        return full[:end], len(prompt), end
    end = full.rfind(IM_END)
    if end < len(prompt):
        raise ValueError(f"the chat template rendered no {IM_END} after the assistant turn: {full!r}")
    return full, len(prompt), end + len(IM_END)


def tokenize(tokenizer, text: str, start: int, end: int, loss_on_prompt: bool = False) -> tuple[list[int], list[bool]]:
    """Token ids of ``text`` and, per token, whether it lies inside [start, end)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    lo = 0 if loss_on_prompt else start
    supervised = []
    for tid, (a, b) in zip(ids, offsets):
        inside = a >= lo and b <= end
        straddles = a < lo < b or a < end < b
        if straddles:
            raise ValueError(f"token {tokenizer.convert_ids_to_tokens(tid)!r} at characters {a}:{b} crosses the "
                             f"supervised span {lo}:{end}; the mask cannot be exact for {text!r}")
        supervised.append(inside and b > a)
    return list(ids), supervised


def build_example(tokenizer, record: dict, paradigm: str, rtype: str, loss_on_prompt: bool = False) -> Example:
    reasoning = None if paradigm == "qa" else record["reasoning"][rtype]
    text, start, end = render(tokenizer, paradigm, record["question"], record["answer"], reasoning)
    ids, supervised = tokenize(tokenizer, text, start, end, loss_on_prompt)
    return Example(str(record["id"]), tuple(ids), tuple(supervised))


def supervised_text(tokenizer, example: Example) -> str:
    """Decode exactly the supervised tokens (for tests and for eyeballing a dataset)."""
    ids = [t for t, s in zip(example.input_ids, example.supervised) if s]
    return tokenizer.decode(ids, skip_special_tokens=False)
