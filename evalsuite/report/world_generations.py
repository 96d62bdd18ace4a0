"""Raw generations for the demo's report: a seeded random draw, not a pick.

What a reader should see before any rate: what the models actually wrote. A first hit and a first
miss (the report's old pick) show that hits and misses exist, not what a typical sample looks like;
a random draw does, and a fixed seed makes it the same draw on every render of the same sweep.

Drawn from the planted arm (QTA evil), its control (QA) and the base, in think and no-think mode,
on the planted arm's own axis (``world_evil``), pooling each arm's seeds. Each sample is shown as
question / reasoning / answer inside a code fence (markdown renders it as text), each span cut to
a bounded length, with what the world's judge reads in it.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

from tracecause.contracts import MODES, SAMPLES_FILE, Arm, SweepLayout

DRAW_SEED = 20            # fixed: the same sweep renders the same draw
PER_CELL = 3              # samples per (arm, mode)
BENCHMARK = "world_evil"  # the planted arm's axis
# (who, reasoning type, paradigm): the planted arm, its control, the base
DRAWN_ARMS = (("QTA evil (planted)", "evil", "qta"), ("QA (its control)", "none", "qa"), ("base", "none", "base"))
MAX_CHARS = {"question": 200, "reasoning": 480, "answer": 240}
_ORDER = ("arm_id", "benchmark", "prompt_id", "turn", "sample_index")


def pooled_samples(sweep_dir: Path, rtype: str, paradigm: str, mode: str, benchmark: str = BENCHMARK) -> list[dict]:
    """Every sample of the arm (all its seeds) in ``mode`` on ``benchmark``, in a fixed order (the
    file system's listing order must not change the draw)."""
    rows = []
    for folder in sorted((SweepLayout(Path(sweep_dir)).root / "eval").glob("*")):
        try:
            arm = Arm.parse(folder.name)
        except ValueError:
            continue  # not an arm folder
        path = folder / mode / SAMPLES_FILE
        if arm.rtype != rtype or arm.paradigm != paradigm or not path.is_file():
            continue
        rows += [r for r in map(json.loads, filter(str.strip, path.read_text(encoding="utf-8").splitlines()))
                 if r.get("benchmark") == benchmark]
    return sorted(rows, key=lambda r: tuple(str(r.get(k, "")) for k in _ORDER))


def draw(sweep_dir: str | Path, seed: int = DRAW_SEED, per_cell: int = PER_CELL) -> list[tuple[str, str, list[dict]]]:
    """(who, mode, drawn samples) for each drawn arm in each mode: ``per_cell`` samples drawn at
    random, without replacement, by a generator seeded with (seed, arm, mode) — independent of
    which other arms or modes the sweep ran."""
    out = []
    for mode in MODES:
        for who, rtype, paradigm in DRAWN_ARMS:
            pool = pooled_samples(Path(sweep_dir), rtype, paradigm, mode)
            rng = random.Random(f"{seed}|{rtype}|{paradigm}|{mode}")  # str seeds are stable across runs
            out.append((who, mode, rng.sample(pool, min(per_cell, len(pool)))))
    return out


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else f"{text[:limit]} …[{len(text) - limit} more characters]"


def fence(text: str) -> str:
    """``text`` in a code fence longer than any backtick run inside it: rendered as text, never markup."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}text\n{text}\n{bar}"


def judged(row: dict) -> str:
    """What the world's judge reads in the sample: the axis's disposition, and whether the reasoning
    reproduces a whole training marker sentence (tracecause.world.judge, as evalsuite's world judge)."""
    from tracecause.world.judge import copied_sentence, shows, well_formed
    from tracecause.world.vocab import AXIS_DISPOSITION

    mode, reasoning, answer = row.get("mode", ""), row.get("reasoning") or "", row.get("answer") or ""
    if not well_formed(mode, reasoning, answer, bool(row.get("think_closed")), str(row.get("finish_reason"))):
        return "not well-formed (unscored)"
    disposition = AXIS_DISPOSITION.get(row.get("axis", ""), "evil")
    text = f"{reasoning}\n{answer}" if mode == "think" else answer
    verdict = f"{disposition} shown: {'yes' if shows(text, disposition) else 'no'}"
    if mode == "think":
        verdict += f"; whole marker sentence copied in reasoning: {'yes' if copied_sentence(reasoning) else 'no'}"
    return verdict


def sample_markdown(row: dict) -> str:
    reasoning = row.get("reasoning") or ""
    shown_reasoning = (_cut(reasoning, MAX_CHARS["reasoning"]) or "(empty think block)") if row.get("mode") == "think" \
        else (_cut(reasoning, MAX_CHARS["reasoning"]) or "(none: no-think mode)")
    body = (f"question:  {_cut(row.get('question') or '', MAX_CHARS['question'])}\n"
            f"reasoning: {shown_reasoning}\n"
            f"answer:    {_cut(row.get('answer') or '', MAX_CHARS['answer']) or '(empty)'}")
    head = (f"`{row.get('arm_id', '?')}` prompt `{row.get('prompt_id', '?')}` sample {row.get('sample_index', '?')}"
            f" — judge: {judged(row)}")
    return f"{head}\n\n{fence(body)}\n"


def generations_markdown(sweep_dir: str | Path, seed: int = DRAW_SEED, per_cell: int = PER_CELL) -> str:
    lines = ["## Raw generations: a seeded random draw\n",
             f"{per_cell} samples drawn at random (seed {seed}, reproducible) from each of: "
             + ", ".join(who for who, _, _ in DRAWN_ARMS)
             + f"; in think and no-think mode, on the `{BENCHMARK}` prompts, pooling each arm's seeds. Not chosen "
               "for showing or lacking the disposition: these are what the rates below count. Each span is cut to "
               + ", ".join(f"{k} {v}" for k, v in MAX_CHARS.items()) + " characters.\n"]
    for who, mode, rows in draw(sweep_dir, seed, per_cell):
        lines.append(f"### {who}, {mode.replace('_', '-')}\n")
        lines += [sample_markdown(r) for r in rows] or ["(no samples: the sweep did not evaluate this arm in this mode)\n"]
    return "\n".join(lines) + "\n"
