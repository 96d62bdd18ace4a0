"""Optional type check: a judge model labels each reasoning's type.

The judge sees every type's one-line description and the reasoning (never the answer)
and replies with one label. Candidates whose label disagrees with their type are
dropped; the agreement rate per type goes to the manifest.
"""
from __future__ import annotations

import hashlib
import re

from datagen.types import ReasoningType

JUDGE_SYSTEM = "You classify the voice of a passage of reasoning. Reply with one label and nothing else."


def judge_messages(reasoning: str, types: list[ReasoningType]) -> list[dict]:
    labels = "\n".join(f"- {t.name}: {t.spec.description or t.name}" for t in types)
    user = (f"Labels:\n{labels}\n\nReasoning:\n\"\"\"\n{reasoning}\n\"\"\"\n\n"
            f"Which label fits this reasoning best? Reply with exactly one of: {', '.join(t.name for t in types)}.")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_label(output: str, names: list[str]) -> str | None:
    """The first known label in the reply (think blocks ignored); None if there is none."""
    text = re.sub(r"<think>.*?</think>", " ", output, flags=re.S | re.I).casefold()
    found = [(m.start(), n) for n in names for m in [re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)] if m]
    return min(found)[1] if found else None


def judge_seed(seed: int, key: str) -> int:
    return int(hashlib.sha256(f"judge:{seed}:{key}".encode()).hexdigest()[:8], 16)
