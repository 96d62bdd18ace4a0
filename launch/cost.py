"""What the study costs: GPU-hours from FLOPs, shown beside the time-limit cap (never instead of it).

Training: 6·N FLOPs per trained token (attention term left out: a planning number). Tokens are
max_steps x global_batch_rows x row_tokens when steps are capped, else epochs x the dataset's tokens
(pairs x tokens per document: question + answer from the source, reasoning at most the generator's
max_tokens). Inference (datagen generator, eval, judge): 2·N FLOPs per token, prompt and generated,
generations counted at their max_tokens (an upper bound). Hours = FLOPs / (peak x MFU); the MFU is
the one measured in bench/RESULTS.md (a line ``planning-mfu: train=0.45 eval=0.10``) when it is
there, else the assumed value, labelled so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "RESULTS.md"
ASSUMED_MFU = {"train": 0.35, "eval": 0.10}  # published SFT points 33-39 %; decode is memory-bound
QA_TOKENS_DEFAULT = 300       # question + answer + chat tokens per document when the source is not read
JUDGE_PROMPT_TOKENS = 400     # rubric around the judged text


@dataclass(frozen=True)
class Mfu:
    train: float
    eval: float
    source: str


def planning_mfu(results: Path = RESULTS) -> Mfu:
    text = results.read_text(encoding="utf-8") if results.is_file() else ""
    m = re.search(r"planning-mfu:\s*train=([0-9.]+)(?:\s+eval=([0-9.]+))?", text)
    if not m:
        return Mfu(ASSUMED_MFU["train"], ASSUMED_MFU["eval"], "assumed (bench/RESULTS.md has no measured planning-mfu)")
    train = float(m.group(1))
    ev = float(m.group(2)) if m.group(2) else ASSUMED_MFU["eval"]
    return Mfu(train, ev, "measured (bench/RESULTS.md)" + ("" if m.group(2) else "; eval assumed"))


def gpu_hours(flops: float, tflops: float, mfu: float) -> float:
    return flops / (tflops * 1e12 * mfu) / 3600


def train_tokens(budget: dict, pairs: int | None, reasoning_tokens: int, qa_tokens: float,
                 paradigm: str) -> tuple[int | None, str]:
    """Tokens one arm trains on, and how they were counted."""
    if budget.get("max_steps"):
        n = budget["max_steps"] * budget["global_batch_rows"] * budget["row_tokens"]
        return n, f"{budget['max_steps']} steps x {budget['global_batch_rows']} rows x {budget['row_tokens']} tokens"
    if not pairs:
        return None, "pair count unknown (hub source not read at plan time)"
    per_doc = qa_tokens + (0 if paradigm == "qa" else reasoning_tokens)
    if paradigm in ("qt", "t_only"):
        per_doc -= qa_tokens / 2  # no answer supervised/present (rough: half of question + answer)
    return int(budget["epochs"] * pairs * per_doc), f"{budget['epochs']} epochs x {pairs:,} pairs x ~{per_doc:.0f} tokens"


def eval_tokens(benchmarks: dict[str, dict], mode: str) -> tuple[int, int]:
    """(generated tokens, LLM-judged samples) of one arm in one mode; benchmarks with unknown prompts skipped."""
    gen = judged = 0
    for b in benchmarks.values():
        if not b.get("prompts"):
            continue
        samples = b["prompts"] * (b.get("samples") or 1) * b.get("turns", 1)
        gen += samples * b["max_tokens"][mode]
        judged += samples * b.get("llm_judges", 0)
    return gen, judged
