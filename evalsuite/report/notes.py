"""The analysis's notes (skipped and not-estimable effects, gaps), grouped by kind and counted.

They belong at the end of the report: each is a line about what could not be computed, and a
sweep with gaps has dozens. The first screen gets the count ("30 notes: 24 effect not estimable
(…), 6 no base eval (…)"); the end of the report gets every line, under its kind.
"""
from __future__ import annotations

# (kind shown, what it means, text that marks it), first match wins; unmatched notes are "other"
NOTE_KINDS = (
    ("effect not estimable", "no prompt has every series the effect needs", "effect not estimable"),
    ("no base eval", "training and answer-free vs base effects skipped", "no base eval for"),
    ("no QA eval", "amplification skipped", "no QA eval for"),
    ("specificity skipped", "fewer than 2 reasoning types with a matching axis", "needs ≥2 types"),
    ("parameter count unknown", "left out of the scale trend", "parameter count unknown"),
    ("evals outside sweep.yaml", "used although sweep.yaml does not list the arm", "not in sweep.yaml"),
)
OTHER = ("other", "see the lines")


def group_notes(notes: list[str]) -> list[tuple[str, str, list[str]]]:
    """[(kind, meaning, lines)], largest group first (ties in NOTE_KINDS order)."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for note in notes:
        kind, meaning = next(((k, m) for k, m, marker in NOTE_KINDS if marker in note), OTHER)
        groups.setdefault(kind, (meaning, []))[1].append(note)
    rank = {k: i for i, (k, _, _) in enumerate(NOTE_KINDS)}
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1][1]), rank.get(kv[0], len(rank))))
    return [(kind, meaning, lines) for kind, (meaning, lines) in ordered]


def notes_summary(groups: list[tuple[str, str, list[str]]]) -> str:
    """'30 notes: 24 effect not estimable (no prompt has ...), 6 no base eval (...)'; '' without notes."""
    total = sum(len(lines) for _, _, lines in groups)
    if not total:
        return ""
    parts = ", ".join(f"{len(lines)} {kind} ({meaning})" for kind, meaning, lines in groups)
    return f"{total} note{'s' if total != 1 else ''}: {parts}"
