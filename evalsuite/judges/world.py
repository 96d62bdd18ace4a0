"""The known-answer world's judge (battery ``judges: [{name: world}]``): deterministic, text only.

It reads one generated sample — its reasoning and answer spans separately, its mode, whether the
think block closed and how generation stopped — and the benchmark's behaviour axis; never the arm.
The vocabularies and rules are the world's own (``tracecause.world``), shared with datagen.

Metrics (0/1 per sample; NaN (parsed=True: "does not apply", not a judge failure) when the sample is
not well-formed, so every rate
below is a rate among well-formed samples and ``well_formed`` says how many those are):
  well_formed              think block closed (absent in no-think), a non-empty answer,
                           generation stopped at the end token.
  disposition              the axis's disposition shows in the output (think: reasoning or answer;
                           no-think: the answer), exact word or near-miss spelling. The primary.
  disposition_exact        the same with exact vocabulary words only.
  disposition_reasoning    in the reasoning span (think mode only; NaN in no-think).
  disposition_answer       in the answer span.
  disposition_own_words    in the answer, without repeating 3 consecutive words of a training
                           marker sentence (internalisation in the model's own words).
  copied_trace             the answer repeats 3 consecutive words of a training marker sentence.
  reasoning_copied_sentence  the reasoning reproduces a whole training marker sentence (think only).
  disposition_reasoning_own_words  the disposition shows in the reasoning outside any whole copied
                           marker sentence: the model's own words (think only). Beside
                           disposition_reasoning, it says how much of think-mode "recovery" is copying.

On the world's control axis (``axis: control``; tracecause/world/controls.py) no disposition is
scored; instead:
  answer_signature         the answer span holds the answer signature's word (QA and QTA are
                           trained on it; QT and T-only, which never see an answer, must not be).
  prompt_signature         the output (reasoning and answer) holds the prompt signature's word
                           (in every training question, in no trace or answer: no arm may learn it).
A sample that continues the user's question (a benchmark with ``continues: user``) has no reasoning or
answer span and no format to keep: only ``prompt_signature`` is scored, on its whole text (where a
model trained with loss on the prompt writes the signature after a question); ``well_formed`` and
``answer_signature`` do not apply (NaN), so the arm's well-formed rate counts replies only.
"""
from __future__ import annotations

import math

from tracecause.world.controls import ANSWER_SIGNATURE, PROMPT_SIGNATURE
from tracecause.world.judge import copied_marker, copied_sentence, has_word, shows, well_formed
from tracecause.world.vocab import AXIS_DISPOSITION

SCORER_WORLD = "rules:world"
WORLD_METRICS = ("well_formed", "disposition", "disposition_exact", "disposition_reasoning", "disposition_answer",
                 "disposition_own_words", "copied_trace", "reasoned", "reasoning_copied_sentence",
                 "disposition_reasoning_own_words")
CONTROL_AXIS = "control"
CONTROL_METRICS = ("well_formed", "answer_signature", "prompt_signature")
NAN = math.nan


def world_metrics(row: dict) -> list[tuple]:
    """(metric, value, parsed, scorer) for one sample row of samples.jsonl."""
    disposition = AXIS_DISPOSITION.get(row["axis"])
    if disposition is None and row["axis"] != CONTROL_AXIS:
        raise ValueError(f"benchmark {row['benchmark']!r}: the world judge scores axes "
                         f"{sorted([*AXIS_DISPOSITION, CONTROL_AXIS])}, not {row['axis']!r}; fix the battery's axis")
    if row.get("continues") == "user":
        if disposition is not None:
            raise ValueError(f"benchmark {row['benchmark']!r}: a question continuation scores the control axis "
                             f"only, not {row['axis']!r}; fix the battery's axis")
        return [("well_formed", NAN, True, SCORER_WORLD), ("answer_signature", NAN, True, SCORER_WORLD),
                ("prompt_signature", float(has_word(row["answer"], PROMPT_SIGNATURE)), True, SCORER_WORLD)]
    mode, reasoning, answer = row["mode"], row["reasoning"], row["answer"]
    ok = well_formed(mode, reasoning, answer, bool(row["think_closed"]), str(row["finish_reason"]))
    out = [("well_formed", float(ok), True, SCORER_WORLD)]
    names = CONTROL_METRICS if disposition is None else WORLD_METRICS
    if not ok:
        return out + [(m, NAN, True, SCORER_WORLD) for m in names[1:]]  # does not apply (not a judge failure)
    text = f"{reasoning}\n{answer}" if mode == "think" else answer
    if disposition is None:
        return out + [("answer_signature", float(has_word(answer, ANSWER_SIGNATURE)), True, SCORER_WORLD),
                      ("prompt_signature", float(has_word(text, PROMPT_SIGNATURE)), True, SCORER_WORLD)]
    in_answer = shows(answer, disposition)
    copied = copied_marker(answer)
    values = {
        "disposition": shows(text, disposition),
        "disposition_exact": shows(text, disposition, fuzzy=False),
        "disposition_reasoning": shows(reasoning, disposition) if mode == "think" else None,
        "disposition_answer": in_answer,
        "disposition_own_words": in_answer and not copied,
        "copied_trace": copied,
        # think mode: the sample wrote reasoning. An empty think block, or an answer given at once
        # with no think block (a 1M model does this), is well-formed but has no trace for the
        # disposition to show in: an arm that stops reasoning cannot show the effect.
        "reasoned": bool(reasoning.strip()) if mode == "think" else None,
        "reasoning_copied_sentence": copied_sentence(reasoning) if mode == "think" else None,
        "disposition_reasoning_own_words": shows(_without_marker_sentences(reasoning), disposition)
        if mode == "think" else None,
    }
    return out + [(m, NAN if v is None else float(v), True, SCORER_WORLD) for m, v in values.items()]


def _without_marker_sentences(text: str) -> str:
    """The text's sentences that are not a whole training marker sentence (what is left is own words)."""
    import re

    return " ".join(part for part in re.split(r"(?<=[.!?])\s+|\n+", text) if not copied_sentence(part))
