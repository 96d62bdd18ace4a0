"""The ``chat`` data format: whole conversations, loss on the final assistant turn only.

For pre-training a base model on a chat corpus (the known-answer world's base). A record is
``{"id": str, "messages": [{role, content, reasoning_content?}, ...], "enable_thinking": bool}``;
the last message is the assistant's. The supervised span is what follows the generation prompt
rendered with the record's own ``enable_thinking``:

  think      ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}<|im_end|>``
  no-think   ``{answer}<|im_end|>`` — the empty think block is part of the no-think generation
             prompt, so it is NOT supervised. Supervising it would teach think mode to close the
             block at once (think prompts end in ``assistant\\n``, and the model would learn that
             ``<think>\\n`` is followed by ``\\n</think>``).
"""
from __future__ import annotations

from .masks import IM_END, Example, tokenize


def validate_chat_record(row: dict, where: str) -> None:
    rid = row.get("id", "?")
    msgs = row.get("messages")
    if not isinstance(row.get("id"), str) or not row["id"]:
        raise ValueError(f"{where}: record needs a non-empty text 'id' (data.format=chat)")
    if not isinstance(msgs, list) or len(msgs) < 2 or not all(isinstance(m, dict) for m in msgs):
        raise ValueError(f"{where}: record {rid}: 'messages' must list >= 2 messages (data.format=chat)")
    if msgs[-1].get("role") != "assistant" or not str(msgs[-1].get("content", "")).strip():
        raise ValueError(f"{where}: record {rid}: the last message must be a non-empty assistant turn")
    if not isinstance(row.get("enable_thinking"), bool):
        raise ValueError(f"{where}: record {rid}: 'enable_thinking' must be true or false")
    if not row["enable_thinking"] and msgs[-1].get("reasoning_content"):
        raise ValueError(f"{where}: record {rid}: a no-think record cannot carry reasoning_content")


def build_chat_example(tokenizer, record: dict) -> Example:
    msgs, think = record["messages"], record["enable_thinking"]
    prompt = tokenizer.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True,
                                           enable_thinking=think)
    full = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False, enable_thinking=think)
    if not full.startswith(prompt):
        raise ValueError(f"record {record['id']}: the chat template renders the generation prompt differently "
                         f"inside the conversation; cannot locate the final turn.\nprompt: {prompt!r}\nfull: {full!r}")
    end = full.rfind(IM_END)
    if end < len(prompt):
        raise ValueError(f"record {record['id']}: no {IM_END} after the final assistant turn: {full!r}")
    ids, supervised = tokenize(tokenizer, full, len(prompt), end + len(IM_END))
    return Example(str(record["id"]), tuple(ids), tuple(supervised))
