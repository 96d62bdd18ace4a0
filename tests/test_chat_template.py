"""The project's own Qwen3 chat template must render exactly what the real Qwen3 template renders."""
from __future__ import annotations

import itertools
import json

import pytest

from tests.conftest import need_shared
from tracecause.chat import EMPTY_THINK, THINK_CLOSE, THINK_OPEN, assistant_message, render, split_reasoning
from tracecause.tiny import chat_template

SYSTEM = {"role": "system", "content": "You are a careful assistant."}
Q1 = {"role": "user", "content": "How do I keep basil alive?"}
Q2 = {"role": "user", "content": "And what about mint?"}
A_PLAIN = {"role": "assistant", "content": "Water it often and give it sun."}
A_RC = {"role": "assistant", "content": "Pinch off the flowers.", "reasoning_content": "Basil bolts in heat.\n"}
A_RC_EMPTY = {"role": "assistant", "content": "Use a pot.", "reasoning_content": ""}
A_RC_NONE = {"role": "assistant", "content": "Use a pot.", "reasoning_content": None}
A_INLINE = {"role": "assistant", "content": "<think>\nMint spreads fast.\n</think>\n\nKeep it in a pot."}
A_INLINE_NO_OPEN = {"role": "assistant", "content": "it spreads\n</think>\n\n\nContain it."}
A_INLINE_EMPTY = {"role": "assistant", "content": EMPTY_THINK + "Keep it damp."}
A_LEADING_NL = {"role": "assistant", "content": "\n\nSoil matters.", "reasoning_content": "\n\nhm\n\n"}

CONVERSATIONS = {
    "one_user": [Q1],
    "plain_answer": [Q1, A_PLAIN],
    "reasoning_content": [Q1, A_RC],
    "reasoning_content_empty": [Q1, A_RC_EMPTY],
    "reasoning_content_none": [Q1, A_RC_NONE],
    "inline_think": [Q1, A_INLINE],
    "inline_no_open_tag": [Q1, A_INLINE_NO_OPEN],
    "inline_empty_think": [Q1, A_INLINE_EMPTY],
    "leading_newlines": [Q1, A_LEADING_NL],
    "multi_turn_ends_user": [Q1, A_RC, Q2],
    "multi_turn_reasoning_both": [Q1, A_RC, Q2, A_INLINE],
    "multi_turn_plain_last": [Q1, A_INLINE, Q2, A_PLAIN],
    "two_assistants_after_query": [Q1, A_RC, A_PLAIN],
    "two_assistants_reasoning_mid": [Q1, A_PLAIN, A_RC],
    "late_system": [Q1, A_PLAIN, {"role": "system", "content": "Be brief."}, Q2],
}

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
TOOL_CONVERSATION = [
    Q1,
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
    {"role": "tool", "content": "sunny"},
    {"role": "tool", "content": "rainy"},
    {"role": "assistant", "content": "<think>compare</think>Paris is sunny.", "tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Oslo"}}]},
    {"role": "user", "content": "<tool_response>\nsnow\n</tool_response>"},
    A_PLAIN,
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def reference_template() -> str:
    return need_shared("reference", "qwen3-chat-template.jinja").read_text()


def _render(tokenizer, template, messages, thinking, gen, tools=None):
    kwargs = {} if thinking is None else {"enable_thinking": thinking}
    return tokenizer.apply_chat_template(messages, chat_template=template, tools=tools, tokenize=False,
                                         add_generation_prompt=gen, **kwargs)


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
@pytest.mark.parametrize("with_system", [False, True])
def test_renders_like_real_qwen3(tokenizer, reference_template, name, with_system):
    messages = ([SYSTEM] if with_system else []) + CONVERSATIONS[name]
    ours_template = chat_template()
    for thinking, gen in itertools.product([True, False, None], [True, False]):
        expected = _render(tokenizer, reference_template, messages, thinking, gen)
        got = _render(tokenizer, ours_template, messages, thinking, gen)
        assert got == expected, f"enable_thinking={thinking} add_generation_prompt={gen}"


@pytest.mark.parametrize("with_system", [False, True])
def test_tools_render_like_real_qwen3(tokenizer, reference_template, with_system):
    messages = ([SYSTEM] if with_system else []) + TOOL_CONVERSATION
    for tools, gen in itertools.product([None, TOOLS], [True, False]):
        expected = _render(tokenizer, reference_template, messages, True, gen, tools=tools)
        assert _render(tokenizer, chat_template(), messages, True, gen, tools=tools) == expected


def test_tiny_tokenizer_carries_the_template(tokenizer, reference_template):
    """The saved tokenizer uses our template by default, and the rules the project relies on hold."""
    assert tokenizer.chat_template == chat_template()
    no_think = render(tokenizer, [Q1], enable_thinking=False, add_generation_prompt=True)
    assert no_think.endswith("<|im_start|>assistant\n" + EMPTY_THINK)
    think = render(tokenizer, [Q1], enable_thinking=True, add_generation_prompt=True)
    assert think.endswith("<|im_start|>assistant\n")
    # Reasoning before the last user query is dropped; the final turn always has a think block.
    text = render(tokenizer, [Q1, A_RC, Q2, A_PLAIN], enable_thinking=True, add_generation_prompt=False)
    assert "Basil bolts" not in text
    assert text.endswith("<|im_start|>assistant\n" + EMPTY_THINK + A_PLAIN["content"] + "<|im_end|>\n")
    assert text == _render(tokenizer, reference_template, [Q1, A_RC, Q2, A_PLAIN], True, False)


def test_think_tags_are_single_tokens(tokenizer):
    for tag in (THINK_OPEN, THINK_CLOSE, "<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        ids = tokenizer(tag, add_special_tokens=False).input_ids
        assert len(ids) == 1, (tag, ids)
        assert tokenizer.decode(ids) == tag
    ids = tokenizer(EMPTY_THINK + "Yes", add_special_tokens=False).input_ids
    assert ids[0] == tokenizer.convert_tokens_to_ids(THINK_OPEN)
    # Like Qwen3, think tags are not "special": skip_special_tokens keeps them in decoded text.
    assert THINK_OPEN in tokenizer.decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("text, expected", [
    ("<think>\nstep one\nstep two\n</think>\n\nThe answer.", ("step one\nstep two", "The answer.", True)),
    ("\nstep\n</think>\n\nAnswer", ("step", "Answer", True)),          # prompt already holds <think>
    ("The answer only.", ("", "The answer only.", True)),               # no-think output
    ("\n\nAnswer after prefill", ("", "Answer after prefill", True)),
    ("<think>\nran out of tok", ("ran out of tok", "", False)),          # never closed
    (EMPTY_THINK + "Direct.", ("", "Direct.", True)),
    ("<think>a</think>b</think>c", ("a", "b</think>c", True)),          # first close ends reasoning
])
def test_split_reasoning(text, expected):
    assert split_reasoning(text) == expected


def test_split_reasoning_inverts_the_template(tokenizer):
    """What the template renders for a final assistant turn splits back into the same parts."""
    msg = assistant_message("Pinch off the flowers.", "Basil bolts in heat.")
    text = render(tokenizer, [Q1, msg], enable_thinking=True, add_generation_prompt=False)
    turn = text.split("<|im_start|>assistant\n", 1)[1].removesuffix("<|im_end|>\n")
    assert split_reasoning(turn) == ("Basil bolts in heat.", "Pinch off the flowers.", True)
    assert json.loads(json.dumps(msg)) == {"role": "assistant", "content": "Pinch off the flowers.",
                                           "reasoning_content": "Basil bolts in heat."}
