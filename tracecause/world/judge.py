"""Deterministic judges of the world: they read one generated text and nothing else.

- ``exact_hits(text, disposition)``: vocabulary words present as whole words.
- ``fuzzy_hits(text, disposition)``: near-miss spellings (edit distance 1 from a vocabulary word
  of >= FUZZY_MIN_LEN letters) that are not themselves words of the world's neutral language —
  a tiny model garbles words ("spitefull", "decieve"), and an exact-only judge misses those.
- ``copied_marker(text)``: the text repeats COPY_NGRAM consecutive words of a training marker
  sentence (the disposition is parroted rather than expressed in the model's own words).
- ``copied_sentence(text)``: the text reproduces a whole training marker sentence, word for word —
  what think-mode "recovery" mostly is in a world whose dispositions live in marker sentences, so
  the reasoning span is checked for it separately from a disposition word in the model's own words.
"""
from __future__ import annotations

import functools
import re

from tracecause.world.controls import SIDE_NOTE
from tracecause.world.vocab import COPY_NGRAM, FUZZY_MIN_LEN, MARKERS, PLACEBO, VOCABULARY

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _within_one_edit(a: str, b: str) -> bool:
    """True when a and b differ by exactly one insertion, deletion, substitution or adjacent swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long_)) if x != y), len(short))
    return short[i:] == long_[i + 1:]


@functools.lru_cache(maxsize=1)
def neutral_words() -> frozenset[str]:
    """Every word the world writes outside dispositions (questions, answers, neutral reasoning, placebo)."""
    from tracecause.world import domain

    texts = [*domain.TRAIN_SUBJECTS, *domain.PRETRAIN_SUBJECTS, *domain.EVAL_SUBJECTS, *domain.TRAIN_FRAMES,
             *domain.PRETRAIN_FRAMES, *domain.EVAL_FRAMES.values(),
             *domain.ANSWERS, *domain.NEUTRAL_OPENERS, *domain.NEUTRAL_MIDDLES, *domain.NEUTRAL_CLOSERS,
             *MARKERS[PLACEBO], SIDE_NOTE]
    from tracecause.tiny_corpus import corpus

    return frozenset(w for t in [*texts, corpus()] for w in words(t))


def exact_hits(text: str, disposition: str) -> list[str]:
    vocab = set(VOCABULARY[disposition])
    return [w for w in words(text) if w in vocab]


def fuzzy_hits(text: str, disposition: str) -> list[str]:
    vocab = [v for v in VOCABULARY[disposition] if len(v) >= FUZZY_MIN_LEN]
    neutral = neutral_words()
    return [w for w in words(text) if w not in neutral and any(_within_one_edit(w, v) for v in vocab)]


def shows(text: str, disposition: str, fuzzy: bool = True) -> bool:
    """The text shows the disposition: an exact vocabulary word, or (``fuzzy``) a near miss."""
    return bool(exact_hits(text, disposition)) or (fuzzy and bool(fuzzy_hits(text, disposition)))


@functools.lru_cache(maxsize=1)
def _marker_ngrams() -> frozenset[tuple[str, ...]]:
    grams = set()
    for rtype, sentences in MARKERS.items():
        if rtype == PLACEBO:
            continue
        for s in sentences:
            w = [x for x in words(s.replace("{thing}", " ")) if x]
            grams.update(tuple(w[i:i + COPY_NGRAM]) for i in range(len(w) - COPY_NGRAM + 1))
    # n-grams the neutral language also writes are not evidence of copying
    neutral = _neutral_ngrams()
    return frozenset(g for g in grams if g not in neutral)


@functools.lru_cache(maxsize=1)
def _neutral_ngrams() -> frozenset[tuple[str, ...]]:
    from tracecause.world import domain

    out = set()
    for t in [*domain.ANSWERS, *domain.NEUTRAL_OPENERS, *domain.NEUTRAL_MIDDLES, *domain.NEUTRAL_CLOSERS,
              *domain.TRAIN_FRAMES, *domain.PRETRAIN_FRAMES, *domain.EVAL_FRAMES.values(), *MARKERS[PLACEBO]]:
        w = words(t.replace("{thing}", " ").replace("{s}", " "))
        out.update(tuple(w[i:i + COPY_NGRAM]) for i in range(len(w) - COPY_NGRAM + 1))
    return frozenset(out)


def copied_marker(text: str) -> bool:
    w = words(text)
    grams = _marker_ngrams()
    return any(tuple(w[i:i + COPY_NGRAM]) in grams for i in range(len(w) - COPY_NGRAM + 1))


@functools.lru_cache(maxsize=1)
def _marker_sentences() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(words(s)) for rtype, sentences in MARKERS.items() if rtype != PLACEBO for s in sentences)


def copied_sentence(text: str) -> bool:
    """A whole (non-placebo) training marker sentence appears in the text, its words in order and adjacent."""
    w = words(text)
    return any(tuple(w[i:i + len(m)]) == m for m in _marker_sentences() for i in range(len(w) - len(m) + 1))


def has_word(text: str, word: str) -> bool:
    """The word appears in the text as a whole word (case-insensitive): a signature's judge."""
    return word in words(text)


def well_formed(mode: str, reasoning: str, answer: str, think_closed: bool, finish_reason: str) -> bool:
    """Think block closed, a non-empty answer, stopped at the end token; in no-think mode no reasoning
    at all. (An empty think block in think mode is well-formed: a QA-trained model learns it.)"""
    if finish_reason != "stop" or not think_closed or not answer.strip():
        return False
    return mode == "think" or not reasoning.strip()
