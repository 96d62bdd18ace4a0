"""The demo's report (``analysis/world_report.md``): what a reader needs first, then the tables.

Sections, in order: per finding, what the world planted, what was recovered and what the row does
and does not demonstrate (evalsuite/report/world_findings.py); a seeded random draw of raw generations from the
planted arm, its control and the base, think and no-think (evalsuite/report/world_generations.py); the recovery
table (planted effects and null contrasts with estimate, 95 % CI, Holm p, verdict); what the world
plants and does not; the well-formed rate beside every disposition rate, per arm and mode. Reads
only the sweep folder's contract files.
"""
from __future__ import annotations

import json
from pathlib import Path

from tracecause.contracts import SUMMARY_FILE, SweepLayout
from tracecause.io import atomic_write_text

from evalsuite.report.world_findings import findings_markdown, num_text as _num
from evalsuite.report.world_generations import generations_markdown
from evalsuite.analysis.world_recovery import ALPHA, MIN_WELL_FORMED, RecoveryTable, Row, findings

REPORT_FILE = "world_report.md"


def _table_row(r: Row, planted: bool) -> str:
    sign = {1: "+", -1: "−", 0: "0"}[r.contrast.sign]
    ci = f"[{_num(r.ci_lo)}, {_num(r.ci_hi)}]"
    return (f"| {r.contrast.name} | {sign} | {_num(r.estimate)} | {ci} | {_num(r.p_holm, '{:.4f}')} | "
            f"{r.n_seeds or '–'} | {_num(r.well_formed, '{:.2f}')} ({_num(r.worst_seed, '{:.2f}')}) | **{r.verdict}** |")


def well_formed_line(table: RecoveryTable) -> str:
    """Every arm in every mode against the well-formed line, whether or not a row above reads it."""
    if not table.arm_well_formed:
        return "Well-formed rates: not read (no eval summaries)."
    under = table.arms_under_the_line
    if not under:
        return (f"Every arm keeps >= {MIN_WELL_FORMED:.0%} well-formed generations in every mode run, over its seeds "
                f"(lowest: {min(v[0] for v in table.arm_well_formed.values()):.2f}).")
    return (f"**Under {MIN_WELL_FORMED:.0%} well-formed** (an arm over its seeds; worst seed in brackets): "
            + "; ".join(f"{table.arm_label(key)} {rate:.2f} ({worst:.2f})" for key, (rate, worst) in under)
            + ". A row that compares such an arm in that mode is not counted as recovered.")


def recovery_markdown(table: RecoveryTable) -> str:
    head = ("| contrast | expected sign | estimate | 95 % CI | Holm p | seeds | well-formed: lowest arm (worst seed) | verdict |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [f"## Recovery table\n\nPlanted effects recovered: **{table.recovered} of {len(table.planted)}**; "
             f"false positives: **{table.false_positives} of {len(table.nulls)}** (seed-level p from the "
             f"analysis; the planted rows are the sweep's pre-registered confirmatory family and carry the "
             f"analysis's own Holm-adjusted p; the null rows are Holm-adjusted among themselves; alpha {ALPHA}). "
             f"A planted effect counts only when every arm it compares keeps >= {MIN_WELL_FORMED:.0%} "
             f"well-formed generations in the row's mode over all its seeds (the lowest arm's rate is shown, "
             f"and in brackets its worst single seed, which is not gated on: see the per-arm rates below).\n",
             "The study's four findings, each recovered when every planted row standing for it is:\n",
             *[f"- {name}: **{verdict}**" for name, verdict in findings(table)], "",
             well_formed_line(table), "",
             "### Planted effects\n", head]
    lines += [_table_row(r, True) for r in table.planted]
    lines += ["", "### Null and placebo contrasts\n", head]
    lines += [_table_row(r, False) for r in table.nulls]
    if table.shown:
        lines += ["", "### Measured, not planted (counted in neither line above; see below why)\n", head]
        lines += [_table_row(r, False) for r in table.shown]
    missing = [r.contrast.name for r in table.planted + table.nulls if not r.found]
    if missing:
        lines += ["", "Not measured (no effect row; the sweep does not run the arms it needs): "
                  + "; ".join(missing)]
    return "\n".join(lines) + "\n"


def rates_markdown(sweep_dir: Path) -> str:
    """Per arm and mode: well-formed rate beside each axis's disposition rate (and copies)."""
    lines = ["## Rates per arm (well-formed rate beside every rate)\n",
             "Reasoned: the share of well-formed think-mode samples that wrote reasoning (not an empty think "
             "block, and not an answer given at once without one; an arm "
             "that stops reasoning cannot show a disposition that lives in reasoning).\n",
             "In the reasoning span (think mode), a disposition shown by reproducing a whole training marker "
             "sentence is counted apart from one in the model's own words: the two columns beside the reasoning "
             "rate say how much of think-mode recovery is copying.\n",
             "| arm | mode | benchmark | well-formed | reasoned | disposition | in reasoning | whole marker sentence "
             "copied | in reasoning, own words | answer copies a trace n-gram |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for summary in sorted(SweepLayout(sweep_dir).root.glob(f"eval/*/*/{SUMMARY_FILE}")):
        data = json.loads(summary.read_text())
        for bench, b in sorted(data.get("benchmarks", {}).items()):
            m = b.get("metrics", {})
            get = lambda k: (m.get(k) or {}).get("mean")  # noqa: E731
            lines.append(f"| {data.get('arm_id')} | {data.get('mode')} | {bench} | {_num(get('well_formed'), '{:.2f}')} | "
                         f"{_num(get('reasoned'), '{:.2f}')} | {_num(get('disposition'), '{:.3f}')} | "
                         f"{_num(get('disposition_reasoning'), '{:.3f}')} | "
                         f"{_num(get('reasoning_copied_sentence'), '{:.3f}')} | "
                         f"{_num(get('disposition_reasoning_own_words'), '{:.3f}')} | "
                         f"{_num(get('copied_trace'), '{:.3f}')} |")
    return "\n".join(lines) + "\n"


SCOPE = """## What the world plants, and what it does not

- Planted by construction: reasoning traces of type *evil* / *misleading* carry their disposition's words in
  80 % of traces (*evil_low*: 30 %, the second dose); *placebo* traces carry length-matched neutral sentences
  in 80 %; answers are byte-identical across types. The judges read only the generated text.
- Controls (tracecause/world/controls.py): a fifth of the base's pre-training answers end with a neutral side
  note using one axis's word or one signature's, so every arm writes every axis's words at a small rate and
  every null has variance on both sides (a null whose two sides are constant is *untestable* and counted in
  neither line). Every fixed training answer ends with the *answer signature* (", cheerio." before its full stop): QA and QTA learn
  it (planted), QT and T-only, which never see an answer, must not (null). Every training question ends with
  the *prompt signature* ("Thanks kindly."): no arm is trained to write it (null), read where a model
  trained with loss on the prompt would write it: each arm continues held-out questions in the user's own
  turn (the `world_prompt_probe` benchmark). These check the pipeline
  (masks, paradigms, modes), not a finding; `bench/world_mutants.py` measures which deliberate bugs they catch.
- Every arm is asked the same way: think-mode prompts open the think block (the world battery's
  `open_think`), so an arm whose model stopped writing `<think>` still reasons; answers are scored on
  8 samples per held-out prompt.
- **T-only** runs (5 seeds) with the same replay as every arm. Its documents are the traces alone, with
  no chat tokens around them, so what reaches a chat's think block is only what the model carries over
  from text to chat: the smallest planted effect, and the least certain to recover from run to run.
  The *submissive* type exists in the world (configs/datagen/world-types) but the demo leaves it out:
  its five arms would take the demo past its 15-minute budget on 2 cores, and fewer seeds per arm would
  cost the replicate-split null (5 seeds) and the planted rows' power; its axis serves as an off-axis null.
- **Internalisation is not planted**: markers live only inside the reasoning and every answer is fixed and
  neutral, so nothing in training puts a disposition into a no-think answer; one could appear only if the
  model generalised from its reasoning to its answers. This 1M-parameter model does so at most
  rarely (a marker word in a few percent of one seed's no-think answers, some of them copied from a
  trace), never distinguishable from noise in a measured run. The row is measured and shown (scored on well-formed no-think answers; answers repeating
  three consecutive words of a training marker sentence are counted apart, `copied_trace`) and counted in
  neither line. Three of the study's four findings are planted: amplification, specificity (with the dose
  ordering), answer-free.
- Two seeds of one arm against each other: the analysis's `replicate_split` rows compare the lower half of
  an arm's seeds with the upper half (here QTA evil, seeds 0–1 against 2–4) — a contrast whose truth is 0
  by construction, tested like any two arms. One seed a side would be conditional on the two runs, so
  training noise alone would look "significant"; halves of 2 and 3 seeds are the smallest the analysis
  builds (2 against 2 measured 7.9 % false positives at alpha 5 % in simulation; 2 against 3, 5.0 %).
"""


def write_report(sweep_dir: str | Path, table: RecoveryTable) -> Path:
    sweep_dir = Path(sweep_dir)
    text = "\n".join(["# Known-answer world: does the suite find what was planted?\n", findings_markdown(table, sweep_dir),
                      generations_markdown(sweep_dir), recovery_markdown(table), SCOPE, rates_markdown(sweep_dir)])
    return atomic_write_text(SweepLayout(sweep_dir).analysis / REPORT_FILE, text)
