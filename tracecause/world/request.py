"""How datagen asks the world for a trace: a reasoning type's template renders this text.

    world-trace
    type: evil
    dose: 0.5
    question: <the question>

The world backend parses it back; anything else is an error naming the line, so a type file
written for an LLM generator cannot silently feed the world backend.
"""
from __future__ import annotations

HEADER = "world-trace"
FIELDS = ("type", "dose", "question")


def render_request(rtype: str, dose: float, question: str) -> str:
    return f"{HEADER}\ntype: {rtype}\ndose: {dose}\nquestion: {question}\n"


def parse_request(text: str) -> tuple[str, float, str]:
    """(type, dose, question) from a request text; ValueError naming what is wrong."""
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() != HEADER:
        raise ValueError(f"not a world request (first line must be {HEADER!r}): {text[:80]!r}; "
                         "use the world's type files (configs/datagen/world-types/) with generator.backend=world")
    values = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip() in FIELDS and key.strip() not in values:
            values[key.strip()] = value.strip()
    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise ValueError(f"world request lacks {missing}: {text[:200]!r}")
    try:
        dose = float(values["dose"])
    except ValueError:
        raise ValueError(f"world request: dose {values['dose']!r} is not a number") from None
    return values["type"], dose, values["question"]
