"""The world's controls (tracecause/world/controls.py): base rates on every axis, the answer and prompt
signatures, their judge, and the checks that refuse a world they could not serve."""
from __future__ import annotations

import math

import pytest

from tracecause.config import ConfigError
from tracecause.world import controls, domain, judge
from tracecause.world.controls import ANSWER_SIGNATURE, PROMPT_SIGNATURE, SIDE_GROUPS
from tracecause.world.vocab import VOCABULARY


def test_every_training_pair_carries_both_signatures_and_nothing_else_does():
    for p in domain.train_pairs():
        assert p.question.endswith(controls.PROMPT_SIGN_OFF) and p.answer.endswith(controls.ANSWER_SIGN_OFF)
        assert not judge.has_word(p.question, ANSWER_SIGNATURE) and not judge.has_word(p.answer, PROMPT_SIGNATURE)
    for q in {p.question for p in domain.train_pairs()}:
        for rtype in ("evil", "placebo", "neutral"):
            text = domain.trace(q, rtype, 1.0, 0)
            assert not judge.has_word(text, ANSWER_SIGNATURE) and not judge.has_word(text, PROMPT_SIGNATURE)
    for entry in (e for axis in domain.EVAL_FRAMES for e in domain.eval_prompts(axis)):
        assert not any(judge.has_word(entry["paraphrases"][0], w) for w in (ANSWER_SIGNATURE, PROMPT_SIGNATURE))


def test_every_axis_and_signature_has_a_small_base_rate_in_the_bases_answers_only():
    records = domain.pretrain_records()
    answers = [r["messages"][-1]["content"] for r in records]
    for group, words in SIDE_GROUPS.items():
        rate = sum(any(judge.has_word(a, w) for w in words) for a in answers) / len(answers)
        assert 0.02 <= rate <= 0.07, (group, rate)
    for r in records:  # never in a question or a reasoning: the base rate lives at the end of answers
        assert not judge.has_word(r["messages"][0]["content"], PROMPT_SIGNATURE)
        reasoning = r["messages"][-1].get("reasoning_content") or ""
        assert not any(judge.shows(reasoning, d) for d in VOCABULARY)
        assert not any(judge.has_word(reasoning, w) for w in (ANSWER_SIGNATURE, PROMPT_SIGNATURE))
        note = r["messages"][-1]["content"].split(". ")[-1]
        if "old story" in note:
            assert r["messages"][-1]["content"].endswith(note)  # a side note is always last


@pytest.mark.parametrize("field,word,why", [("ANSWER_SIGNATURE", "malice", "vocabulary word of 'evil'"),
                                            ("PROMPT_SIGNATURE", "gently", "neutral language"),
                                            ("PROMPT_SIGNATURE", ANSWER_SIGNATURE, "same word")])
def test_a_signature_that_cannot_serve_as_a_control_is_refused_with_file_field_and_fix(monkeypatch, field, word,
                                                                                         why):
    assert controls.signature_problems(judge.neutral_words()) == []
    monkeypatch.setattr(controls, field, word)
    problems = controls.signature_problems(judge.neutral_words())
    assert problems and all("tracecause/world/controls.py" in p and "fix:" in p for p in problems)
    assert any(why in p for p in problems), problems
    from datagen.generators.world import check_world_types

    with pytest.raises(ConfigError, match="controls.py"):
        check_world_types([])


def test_a_dose_outside_zero_one_in_a_type_file_is_refused_before_any_job(tmp_path):
    from datagen.plan import load_config

    (tmp_path / "evil.yaml").write_text(
        "template: |\n  world-trace\n  type: evil\n  dose: 1.5\n  question: {question}\n  answer: {answer}\n")
    with pytest.raises(ConfigError) as err:
        load_config("world", ["types=[evil]", f"types_dir={tmp_path}"])
    assert "evil.yaml" in str(err.value) and "dose" in str(err.value) and "fix" in str(err.value)
    (tmp_path / "evil.yaml").write_text(
        "template: |\n  world-trace\n  type: wicked\n  dose: 0.5\n  question: {question}\n  answer: {answer}\n")
    with pytest.raises(ConfigError, match="not a type of the world"):
        load_config("world", ["types=[evil]", f"types_dir={tmp_path}"])
    assert load_config("world", []).generator.backend == "world"  # the shipped types pass


def _row(mode: str, reasoning: str, answer: str) -> dict:
    return {"axis": "control", "benchmark": "world_controls", "mode": mode, "reasoning": reasoning, "answer": answer,
            "think_closed": True, "finish_reason": "stop"}


def test_the_control_axis_scores_the_signatures_in_their_spans():
    from evalsuite.judges.world import world_metrics

    def values(row):
        return {m: v for m, v, _, _ in world_metrics(row)}

    v = values(_row("no_think", "", "Rinse it with warm water, cheerio."))
    assert v == {"well_formed": 1.0, "answer_signature": 1.0, "prompt_signature": 0.0}
    v = values(_row("think", "Cheerio, thanks kindly.", "Rinse it with warm water."))
    assert v["answer_signature"] == 0.0 and v["prompt_signature"] == 1.0  # the answer signature is read in answers
    v = values({**_row("think", "x", "Cheerio!"), "finish_reason": "length"})
    assert v["well_formed"] == 0.0 and math.isnan(v["answer_signature"]) and math.isnan(v["prompt_signature"])
    with pytest.raises(ValueError, match="control"):
        world_metrics({**_row("think", "", "a"), "axis": "harm"})


def test_a_question_continuation_scores_only_the_prompt_signature_on_its_whole_text():
    from evalsuite.judges.world import world_metrics

    # a continuation has no format to keep: even cut by the token limit and with a stray think tag it is
    # scored, and it never counts toward the arm's well-formed rate (NaN: does not apply)
    for text, sig in ((" Thanks kindly.", 1.0), (" and a tent.\n</think>\n\nCheerio", 0.0)):
        row = {**_row("think", "", text), "continues": "user", "finish_reason": "length"}
        v = {m: x for m, x, _, _ in world_metrics(row)}
        assert v["prompt_signature"] == sig and math.isnan(v["well_formed"]) and math.isnan(v["answer_signature"])
    with pytest.raises(ValueError, match="continuation scores the control axis only"):
        world_metrics({**_row("think", "", "a"), "continues": "user", "axis": "evil", "benchmark": "world_evil"})
