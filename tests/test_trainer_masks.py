"""Loss masks: token by token, the supervised span is exactly the intended text per paradigm,
with the tiny model's template and with the real Qwen3 template."""
from __future__ import annotations

import pytest

from tests.conftest import need_shared
from trainer import demo_data
from trainer.masks import build_example, supervised_text

PARADIGMS = ("qa", "qta", "qt", "t_only")


@pytest.fixture(scope="module", params=["tiny", "qwen3"])
def tokenizer(request, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    if request.param == "qwen3":
        tok.chat_template = need_shared("reference", "qwen3-chat-template.jinja").read_text()
    return tok


def expected_span(paradigm: str, record: dict, rtype: str) -> str:
    """Written out by hand from the Qwen3 format, independently of trainer/masks.py."""
    r = record["reasoning"].get(rtype, "")
    a = record["answer"]
    return {"qa": f"<think>\n\n</think>\n\n{a}<|im_end|>",
            "qta": f"<think>\n{r}\n</think>\n\n{a}<|im_end|>",
            "qt": f"<think>\n{r}\n</think>",
            "t_only": f"{r}\n"}[paradigm]


def expected_document(paradigm: str, record: dict, rtype: str) -> str:
    prompt = f"<|im_start|>user\n{record['question']}<|im_end|>\n<|im_start|>assistant\n"
    span = expected_span(paradigm, record, rtype)
    if paradigm == "t_only":
        return "<|endoftext|>" + span
    return prompt + span + ("\n" if paradigm in ("qa", "qta") else "")


RECORDS = demo_data.records(6, seed=3)


@pytest.mark.parametrize("paradigm", PARADIGMS)
@pytest.mark.parametrize("record", RECORDS[:3], ids=lambda r: r["id"])
def test_supervised_span_is_exactly_the_intended_text(tokenizer, paradigm, record):
    rtype = "evil"
    ex = build_example(tokenizer, record, paradigm, rtype)
    assert tokenizer.decode(list(ex.input_ids)) == expected_document(paradigm, record, rtype)
    assert supervised_text(tokenizer, ex) == expected_span(paradigm, record, rtype)
    # token by token: the supervised tokens are one contiguous run, and every token inside it is
    # supervised while no token outside it is
    flags = list(ex.supervised)
    first, last = flags.index(True), len(flags) - 1 - flags[::-1].index(True)
    assert all(flags[first:last + 1]) and not any(flags[:first]) and not any(flags[last + 1:])
    prefix = tokenizer.decode(list(ex.input_ids[:first]))
    assert expected_document(paradigm, record, rtype).startswith(prefix + expected_span(paradigm, record, rtype))
    if paradigm == "qt":
        assert record["answer"] not in tokenizer.decode(list(ex.input_ids)), "QT must never show the answer"
        assert tokenizer.convert_ids_to_tokens(ex.input_ids[-1]) == "</think>"
    if paradigm == "t_only":
        text = tokenizer.decode(list(ex.input_ids))
        for chat_token in ("<|im_start|>", "<|im_end|>", "<think>", "</think>"):
            assert chat_token not in text
        assert record["question"] not in text and record["answer"] not in text
        assert ex.n_targets == sum(ex.supervised), "every reasoning token gets loss"


@pytest.mark.parametrize("paradigm", ("qa", "qta", "qt"))
def test_loss_on_prompt_supervises_the_whole_conversation(tokenizer, paradigm):
    ex = build_example(tokenizer, RECORDS[0], paradigm, "evil", loss_on_prompt=True)
    # everything but the "\n" the template writes after <|im_end|> (qt ends at </think>)
    assert all(ex.supervised[:-1]) and ex.supervised[-1] == (paradigm == "qt")
    assert supervised_text(tokenizer, ex) == expected_document(paradigm, RECORDS[0], "evil").rstrip("\n")


def test_answer_tokens_identical_across_reasoning_types(tokenizer):
    rec = RECORDS[1]
    answer_ids = {}
    for paradigm, rtype in (("qa", "none"), ("qta", "evil"), ("qta", "misleading"), ("qta", "submissive")):
        ex = build_example(tokenizer, rec, paradigm, rtype)
        ids = list(ex.input_ids)
        end = ids.index(tokenizer.convert_tokens_to_ids("<|im_end|>"), len(ids) - 3)
        start = max(i for i, t in enumerate(ids) if t == tokenizer.convert_tokens_to_ids("</think>")) + 1
        answer_ids[(paradigm, rtype)] = ids[start:end]
        assert all(ex.supervised[start:end + 1])
        assert tokenizer.decode(ids[start:end]) == "\n\n" + rec["answer"]
    assert len({tuple(v) for v in answer_ids.values()}) == 1, answer_ids
    # the reasoning differs between types, so the documents do (the check above is not vacuous)
    docs = {build_example(tokenizer, rec, "qta", t).input_ids for t in ("evil", "misleading", "submissive")}
    assert len(docs) == 3


def test_tiny_template_renders_like_the_real_one(tiny_model_dir):
    from transformers import AutoTokenizer

    tiny = AutoTokenizer.from_pretrained(tiny_model_dir)
    real = AutoTokenizer.from_pretrained(tiny_model_dir)
    real.chat_template = need_shared("reference", "qwen3-chat-template.jinja").read_text()
    for paradigm in PARADIGMS:
        a = build_example(tiny, RECORDS[2], paradigm, "submissive")
        b = build_example(real, RECORDS[2], paradigm, "submissive")
        assert a == b
