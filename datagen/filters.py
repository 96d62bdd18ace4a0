"""Output hygiene for generated reasoning, one small check each, applied in order.

Each candidate passes through FILTERS in order and stops at the first that rejects it;
``FilterCounts`` records how many candidates entered and left each filter, per type,
so the manifest shows exactly where data was lost.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from datagen.config import FilterConfig

# Judge runs after these, on the survivors (datagen.judge).
FILTERS = ("think_tags", "truncated", "empty", "answer_leak", "length")
THINK_TAG = re.compile(r"</?think\s*>", re.IGNORECASE)

TokenCounter = Callable[[str], int]


def strip_think_tags(text: str) -> tuple[str, bool]:
    """Remove stray ``<think>``/``</think>`` tags (not the text between them)."""
    cleaned, count = THINK_TAG.subn("", text)
    return cleaned.strip(), count > 0


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def answer_overlap(reasoning: str, answer: str, ngram: int) -> float:
    """Fraction of the answer's word n-grams that also occur in the reasoning.

    1.0 when the reasoning contains the answer verbatim (whitespace/case-insensitive).
    Answers shorter than ``ngram`` words are judged on verbatim containment alone.
    """
    norm = lambda s: " ".join(s.casefold().split())
    if norm(answer) and norm(answer) in norm(reasoning):
        return 1.0
    words_a, words_r = _words(answer), _words(reasoning)
    if len(words_a) < ngram:
        return 0.0
    grams_a = {tuple(words_a[i:i + ngram]) for i in range(len(words_a) - ngram + 1)}
    grams_r = {tuple(words_r[i:i + ngram]) for i in range(len(words_r) - ngram + 1)}
    return len(grams_a & grams_r) / len(grams_a)


@dataclass
class FilterCounts:
    """Candidates in/out of each filter for one type (summed over shards at merge)."""

    counts: dict = field(default_factory=lambda: {f: {"in": 0, "out": 0} for f in FILTERS})
    think_tags_stripped: int = 0

    def to_dict(self) -> dict:
        return {"filters": self.counts, "think_tags_stripped": self.think_tags_stripped}


def check(text: str, finish_reason: str, answer: str, cfg: FilterConfig, count_tokens: TokenCounter,
          counts: FilterCounts | None = None) -> tuple[str | None, str | None]:
    """Run one candidate through every filter: (cleaned text, None) or (None, rejecting filter)."""
    counts = counts or FilterCounts()

    def step(name: str, ok: bool) -> bool:
        counts.counts[name]["in"] += 1
        counts.counts[name]["out"] += int(ok)
        return ok

    cleaned, had_tags = strip_think_tags(text)
    if not step("think_tags", not (had_tags and cfg.think_tags == "reject")):
        return None, "think_tags"
    counts.think_tags_stripped += int(had_tags)
    text = cleaned if had_tags else text.strip()
    if not step("truncated", not (cfg.reject_truncated and finish_reason == "length")):
        return None, "truncated"
    if not step("empty", bool(text)):
        return None, "empty"
    overlap = answer_overlap(text, answer, cfg.leak_ngram)
    # Verbatim containment is always a leak, whatever the n-gram threshold.
    if not step("answer_leak", overlap < 1.0 and overlap <= cfg.leak_max_overlap):
        return None, "answer_leak"
    n_tokens = count_tokens(text)
    if not step("length", cfg.min_tokens <= n_tokens <= cfg.max_tokens):
        return None, "length"
    return text, None


def token_counter(cfg: FilterConfig, generator_model: str, revision: str = "") -> TokenCounter:
    """Built before any generation so a tokenizer that cannot load fails early."""
    name = cfg.tokenizer or generator_model
    if name == "whitespace":
        return lambda s: len(s.split())
    from transformers import AutoTokenizer

    from tracecause.config import ConfigError

    try:
        # the generator's own tokenizer at its pinned revision (filters.tokenizer names another one)
        tok = AutoTokenizer.from_pretrained(name, revision=(revision or None) if not cfg.tokenizer else None)
    except Exception as err:  # noqa: BLE001 - any load failure means the same fix
        raise ConfigError("filters", "tokenizer", f"cannot load tokenizer {name!r} for the length bounds ({err}); "
                                                  "set filters.tokenizer=<path> or filters.tokenizer=whitespace") from None
    return lambda s: len(tok(s, add_special_tokens=False)["input_ids"])
