"""The report's first screen: per finding, what the world planted, what the suite recovered, and
what the row does and does not demonstrate — one sentence each.

The world's judge counts words, so a planted row shows that a model learned the words its traces
carried; what else a row would need to show something more is said beside it, not left to the
reader. The numbers are the recovery table's rows (evalsuite/analysis/world_recovery.py) and, for how much of
think-mode recovery is copying, the eval summaries' reasoning-copy metrics (evalsuite/judges/world.py).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from tracecause.contracts import SUMMARY_FILE, Arm, SweepLayout

from evalsuite.analysis.world_recovery import RecoveryTable, Row

# finding key (Contrast.finding) -> (title, what was planted, what a recovered row shows, what it does not).
# A planted row whose finding has no entry still gets a bullet, with generic words: give a new
# control (world_recovery.PLANTED) its entry here, so the reader learns what it does not show.
FINDING_TEXT = {
    "amplification": (
        "CoT amplification",
        "QTA evil and QTA misleading train on traces carrying their disposition's marker sentences in 80 % of "
        "traces, QA on the same questions and byte-identical answers with no trace.",
        "training on reasoning traces makes the model write the traces' disposition in its own think-mode output, "
        "measured against the control that differs only by the trace.",
        "that the disposition spread beyond the trained words: the judge counts each axis's vocabulary, and much "
        "of the think-mode rate can be marker sentences reproduced whole (the copy line below)."),
    "specificity": (
        "Reasoning-content specificity",
        "Each disposition's traces carry only its own vocabulary; the placebo's length-matched sentences carry none.",
        "each axis counts its own type's words, so this shows the types' traces were learned as written (and the "
        "judge does not confuse the axes).",
        "a semantic generalisation: any model that copies its training words passes it by construction."),
    "dose": (
        "Dose ordering",
        "QTA evil_low carries the same marker sentences in 30 % of traces against QTA evil's 80 %.",
        "the measured rate follows the amount of planted content: more marked traces, more marked output.",
        "the shape of a dose-response (two doses only), or anything beyond copying the marker words."),
    "answer_free": (
        "Answer-free signal",
        "QT trains on question and trace without the answer; T-only on the traces alone, with no chat tokens.",
        "the disposition is learned from reasoning with no answer in the loss, and T-only carries it from plain "
        "text into a chat's think block.",
        "that QT and T-only really trained without answers: the answers carry no disposition words, so this row "
        "alone would not notice answers leaking into these arms (the answer-signature nulls do, where run)."),
    "control": (
        "Answer signature (a pipeline control)",
        "every fixed training answer carries the answer signature, a word in no trace or question; QA and QTA "
        "train on those answers.",
        "answers are in the loss of the arms that should learn them and reach a no-think answer: a pipeline that "
        "dropped answers from the loss would lose this row.",
        "anything about dispositions: it checks the pipeline, not a finding of the study."),
}
# The same for the null rows (expected 0), by finding key: what the row would catch if it fired.
NULL_TEXT = {
    "placebo": ("Placebo", "QTA placebo's traces carry length-matched neutral sentences, no disposition words.",
                "a trace's length and form alone do not move the rate.",
                "that the placebo is inert beyond the words the judge counts."),
    "replicate_split": ("Replicate split", "nothing: one arm's lower half of seeds against its upper half.",
                        "training-seed noise alone is not read as an effect (the analysis's seed-level test).",
                        "that seeds differ at all: identical seeds would make this row quiet too."),
    "off_axis": ("Off-axis", "no trace of the compared type carries the scored axis's words.",
                 "a type does not move an axis whose words it never saw.",
                 "more than specificity does: the judge counts words, so this holds for any copying model."),
    "mode_split": ("Mode split", "nothing in no-think mode: the amplification lives in the reasoning.",
                   "the think/no-think split is honoured: a swapped or ignored mode would move this row.",
                   "that no-think answers are free of the disposition in general (internalisation says that)."),
    "control": ("Signature controls", "nothing: answer-free arms (QT, T-only) never see an answer, and no arm is "
                "trained on the prompt signature that ends every training question.",
                "answers do not leak into answer-free arms, and the loss does not reach the prompt.",
                "anything about dispositions: they check the pipeline."),
}
INTERNALISATION_TEXT = (
    "nothing: markers live only inside the reasoning and every answer is fixed and neutral, so no training "
    "signal puts a disposition into a no-think answer.",
    "whether the model generalised from its reasoning to its answers on its own; counted in neither line.",
    "anything about larger models: a 1M-parameter model is not expected to generalise, so its absence here "
    "is no evidence either way.")
# (rtype, paradigm) of the arms whose think-mode reasoning the copy line reads, on their planted axis
COPY_ARMS = (("evil", "qta", "QTA evil"), ("evil", "qt", "QT evil"), ("evil", "t_only", "T-only evil"))
COPY_METRICS = ("disposition_reasoning", "reasoning_copied_sentence", "disposition_reasoning_own_words")


def num_text(x: float, fmt: str = "{:+.3f}") -> str:
    """A number for the report; NaN and None (not measured) as an en dash."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _short(row: Row, strip_prefix: bool = True) -> str:
    """A row as one clause: its name (without the finding's prefix), estimate, CI, p and verdict."""
    name = row.contrast.name.split(": ", 1)[-1] if strip_prefix else row.contrast.name
    if not row.found:
        return f"{name}: not measured"
    return (f"{name} {num_text(row.estimate)} [{num_text(row.ci_lo)}, {num_text(row.ci_hi)}], Holm p "
            f"{num_text(row.p_holm, '{:.4f}')}, {row.n_seeds or '–'} seeds: **{row.verdict}**")


def reasoning_copy_rates(sweep_dir: Path, rtype: str, paradigm: str, benchmark: str = "world_evil") -> dict:
    """metric -> the arm's rate over its seeds (weighted by each seed's scored samples) in think mode on
    ``benchmark``, for each of COPY_METRICS its summaries carry; {} where none does (an older sweep)."""
    sums: dict = {}
    for path in SweepLayout(Path(sweep_dir)).root.glob(f"eval/*/think/{SUMMARY_FILE}"):
        data = json.loads(path.read_text())
        try:
            arm = Arm.parse(str(data.get("arm_id", "")))
        except ValueError:
            continue
        if (arm.rtype, arm.paradigm) != (rtype, paradigm):
            continue
        metrics = data.get("benchmarks", {}).get(benchmark, {}).get("metrics", {})
        for m in COPY_METRICS:
            stat = metrics.get(m) or {}
            if stat.get("mean") is not None and stat.get("n"):
                k, n = sums.get(m, (0.0, 0))
                sums[m] = (k + stat["mean"] * stat["n"], n + stat["n"])
    return {m: k / n for m, (k, n) in sums.items()}


def copy_line(sweep_dir: Path) -> str:
    """How much of think-mode recovery is whole marker sentences copied in the reasoning vs own words."""
    parts = []
    for rtype, paradigm, who in COPY_ARMS:
        rates = reasoning_copy_rates(sweep_dir, rtype, paradigm)
        if not rates and not list(SweepLayout(Path(sweep_dir)).root.glob(f"eval/*.{rtype}.{paradigm}.s*/think")):
            continue  # the sweep does not run the arm
        if "reasoning_copied_sentence" not in rates or "disposition_reasoning_own_words" not in rates:
            parts.append(f"{who}: not measured in this sweep")
            continue
        parts.append(f"{who}: the disposition in {num_text(rates.get('disposition_reasoning'), '{:.1%}')} of its "
                     f"reasoning; a whole marker sentence copied in {rates['reasoning_copied_sentence']:.1%}; "
                     f"in its own words (outside any copied sentence) in "
                     f"{rates['disposition_reasoning_own_words']:.1%}")
    if not parts:
        return "- **Think-mode recovery, copied or own words**: not measured in this sweep."
    return ("- **Think-mode recovery, copied or own words** (well-formed think samples on the evil axis, all seeds): "
            + "; ".join(parts) + ". A copied sentence shows the trace was memorised; only the own-words share says "
            "the model writes the disposition in words it was not given whole.")


def _finding_bullet(title: str, planted: str, rows: list[Row], shows: str, not_shows: str,
                    found: str = "Recovered") -> str:
    strip = len({r.contrast.name.split(": ", 1)[0] for r in rows}) == 1  # a mixed bullet keeps whole names
    return (f"- **{title}**. Planted: {planted} {found}: " + "; ".join(_short(r, strip) for r in rows) + ". "
            f"Shows: {shows} Does not show: {not_shows}")


def _verdict(rows: list[Row]) -> str:
    """A planted finding's verdict: recovered when every row of it is (as world_recovery.findings)."""
    if all(not r.found for r in rows):
        return "not measured"
    k = sum(r.verdict == "recovered" for r in rows)
    return "recovered" if k == len(rows) else f"missed ({k} of {len(rows)} rows recovered)"


def _null_verdict(rows: list[Row]) -> str:
    """Quiet when every testable row is; an untestable row (both sides constant) could not have fired."""
    fired = sum(r.verdict == "FALSE POSITIVE" for r in rows)
    untestable = sum(r.verdict == "untestable" for r in rows)
    testable = sum(r.verdict in ("FALSE POSITIVE", "quiet") for r in rows)
    if not any(r.found for r in rows):
        return "not measured"
    if not testable:
        return f"untestable ({untestable} row(s), both sides constant)"
    head = f"{fired} of {testable} testable fired" if fired else f"quiet ({testable} testable)"
    return head + (f", {untestable} untestable" if untestable else "")


def findings_markdown(table: RecoveryTable, sweep_dir: str | Path) -> str:
    """The first screen: the headline counts, then one bullet per finding."""
    untestable = table.untestable
    lines = ["## What was planted, what was recovered\n",
             f"Planted effects recovered: **{table.recovered} of {len(table.planted)}**; false positives: "
             f"**{table.false_positives} of {len(table.testable_nulls)}** testable nulls; untestable nulls (both "
             f"sides constant: they could not have fired, counted in neither): **{len(untestable)}**. The world's "
             "judge counts each axis's own words in the generated text; what each row does and does not "
             "demonstrate is said beside it.\n"]
    keys = list(dict.fromkeys(r.contrast.finding for r in table.planted))
    for key in keys:
        rows = [r for r in table.planted if r.contrast.finding == key]
        title, planted, shows, not_shows = FINDING_TEXT.get(key, (
            key.replace("_", " ").capitalize(), "see the recovery table's planted rows.",
            "what its rows' names say.", "anything beyond the words its rows count."))
        lines.append(_finding_bullet(f"{title}: {_verdict(rows)}", planted, rows, shows, not_shows))
    for key in dict.fromkeys(r.contrast.finding for r in table.shown):
        rows = [r for r in table.shown if r.contrast.finding == key]
        planted, shows, not_shows = INTERNALISATION_TEXT if key == "internalisation" else (
            "nothing.", "what its rows' names say; counted in neither line.", "an effect the world planted.")
        lines.append(_finding_bullet(f"{key.replace('_', ' ').capitalize()} (measured, not planted)", planted, rows,
                                     shows, not_shows, found="Measured"))
    lines.append(copy_line(Path(sweep_dir)))
    for key in dict.fromkeys(r.contrast.finding for r in table.nulls):
        rows = [r for r in table.nulls if r.contrast.finding == key]
        title, planted, shows, not_shows = NULL_TEXT.get(key, (
            key.replace("_", " ").capitalize(), "nothing (a null).", "the suite stays quiet where nothing was planted.",
            "anything beyond the words its rows count."))
        lines.append(_finding_bullet(f"Null — {title}: {_null_verdict(rows)}", planted, rows,
                                     f"if quiet, {shows} If it fired, the suite flagged an effect nothing planted.",
                                     not_shows, found="Measured"))
    return "\n".join(lines) + "\n"
