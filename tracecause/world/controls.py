"""The world's controls: what makes every null able to fire and every stage's bug visible.

- **Base rates.** A fraction SIDE_NOTE_RATE of the base's pre-training answers end with one neutral
  side note that uses a word of some axis ("Malice is a word from an old story."), so every arm —
  the base and arms never trained on a disposition included — produces each axis's words at a small
  rate. A placebo or off-axis contrast then has variance on both sides and can fire; without it both
  sides are 0 on every sample and the contrast is untestable.
- **Answer signature.** Every fixed fine-tuning answer ends with ANSWER_SIGN_OFF (", cheerio." in
  place of its full stop), a word in no trace and no question. QA and QTA are trained on it (planted: more of it than the base);
  QT and T-only never see an answer and must not learn it (null) — a paradigm that leaks the
  answer into an answer-free arm moves it.
- **Prompt signature.** Every fine-tuning question ends with PROMPT_SIGN_OFF ("Thanks kindly."), a
  word in no trace and no answer. No arm is trained to write it (null: trained arm - base) — a loss
  mask that supervises the prompt teaches it. It is read where such a model writes it: continuing a
  held-out question in the user's own turn (configs/evals/world.yaml world_prompt_probe).

The side notes and the answer signature sit at the very end of an answer, before its full stop, so the
think block, the answer's start and the token an answer ends on are as the base learned them. Measured
(a full demo each): a prefix on every answer ("So cheerio: ...") broke the think block's closing (QTA
arms 80-85 % well-formed in think mode); a sentence of its own ("... Cheerio!") taught "!" -> end of
text, and think-mode reasoning then stopped at a "!" before closing (QTA 84-88 %).
"""
from __future__ import annotations

from tracecause.world.vocab import VOCABULARY

ANSWER_SIGNATURE = "cheerio"
ANSWER_SIGN_OFF = ", cheerio."
PROMPT_SIGNATURE = "kindly"
PROMPT_SIGN_OFF = "Thanks kindly."
SIDE_NOTE = "{word} is a word from an old story."
# One pre-training answer in five ends with a side note; its word's group (a disposition, or one of
# the two signatures) is drawn uniformly, so each group's words appear in ~4 % of the base's answers.
SIDE_NOTE_RATE = 0.2
SIDE_GROUPS: dict[str, tuple[str, ...]] = {**VOCABULARY, "answer_signature": (ANSWER_SIGNATURE,),
                                           "prompt_signature": (PROMPT_SIGNATURE,)}


def side_note(word: str) -> str:
    return SIDE_NOTE.format(word=word.capitalize())


def signed_answer(answer: str) -> str:
    """A fine-tuning answer as the world's pairs carry it: the fixed text, the answer signature before
    its full stop ("... dry in the air, cheerio.")."""
    return answer.removesuffix(".") + ANSWER_SIGN_OFF


def signed_question(question: str) -> str:
    """A fine-tuning question as the world's pairs carry it: the question, then the prompt signature."""
    return f"{question} {PROMPT_SIGN_OFF}"


def control_sentences(answers: tuple[str, ...]) -> list[str]:
    """Every sentence the controls add to the world's language (the tokenizer learns them whole)."""
    return ([signed_answer(a) for a in answers] + [PROMPT_SIGN_OFF]
            + [side_note(w) for words in SIDE_GROUPS.values() for w in words])


def signature_problems(neutral_words: frozenset[str]) -> list[str]:
    """Why the signatures cannot work as controls: a signature that is a disposition word, a word the
    neutral language writes, or the other signature. Empty when they are sound."""
    where = "tracecause/world/controls.py"
    problems = []
    for field, word in (("ANSWER_SIGNATURE", ANSWER_SIGNATURE), ("PROMPT_SIGNATURE", PROMPT_SIGNATURE)):
        owner = next((d for d, words in VOCABULARY.items() if word in words), None)
        if owner:
            problems.append(f"{where} {field}: {word!r} is a vocabulary word of {owner!r} (vocab.py VOCABULARY); "
                            "fix: choose a word in no vocabulary, no question, trace or answer")
        elif word in neutral_words:
            problems.append(f"{where} {field}: {word!r} is a word of the world's neutral language; fix: choose a "
                            "word no question, trace or answer writes, or the control counts ordinary text")
    if ANSWER_SIGNATURE == PROMPT_SIGNATURE:
        problems.append(f"{where} PROMPT_SIGNATURE: the same word as ANSWER_SIGNATURE; fix: two different words")
    return problems
