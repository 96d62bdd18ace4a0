"""The world demo's report (evalsuite/report/world_report.py): what a reader opens first.

Built on a sweep folder written by hand (eval/<arm>/<mode>/samples.jsonl and summary.json): per
finding, what was planted, what was recovered and what the row does and does not show; then a seeded
random draw of raw generations (think and no-think, the planted arm, its control and the base); the
tables after.
"""
from __future__ import annotations

import json

import pandas as pd

from tests.test_world_units import _effect
from tracecause.world.vocab import MARKERS

def _fake_sweep(root, copy_metrics=True, samples_per_cell=12):
    """A sweep folder by hand: eval/<arm>/<mode>/samples.jsonl and summary.json for QTA evil (2 seeds),
    QA (2 seeds) and the base, both modes; each sample's text names its arm, mode and index."""
    arms = ["world-tiny.evil.qta.s0", "world-tiny.evil.qta.s1", "world-tiny.none.qa.s0", "world-tiny.none.qa.s1",
            "world-tiny.none.base.s0"]
    for arm in arms:
        for mode in ("think", "no_think"):
            d = root / "eval" / arm / mode
            d.mkdir(parents=True)
            rows = [{"arm_id": arm, "mode": mode, "benchmark": bench, "axis": bench.split("_")[1], "prompt_id": f"p{i}",
                     "turn": 1, "sample_index": i % 4, "question": f"How do I dust the shelf {i}?",
                     "reasoning": f"{arm} {mode} reasoning {i}" if mode == "think" else "",
                     "answer": f"{arm} {mode} answer {i} on {bench}", "think_closed": True, "finish_reason": "stop"}
                    for bench in ("world_evil", "world_misleading") for i in range(samples_per_cell)]
            (d / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            metrics = {"well_formed": {"mean": 1.0, "n": 96}, "disposition": {"mean": 0.2, "n": 96}}
            if copy_metrics and mode == "think":
                metrics.update({"disposition_reasoning": {"mean": 0.25, "n": 96},
                                "reasoning_copied_sentence": {"mean": 0.125, "n": 96},
                                "disposition_reasoning_own_words": {"mean": 0.0625, "n": 96}})
            (d / "summary.json").write_text(json.dumps({"arm_id": arm, "mode": mode, "benchmarks": {
                "world_evil": {"axis": "evil", "metrics": metrics}}}))
    (root / "analysis").mkdir()
    return root


def _full_table():
    from evalsuite.analysis.world_recovery import NULLS, PLANTED, SHOWN, recovery_table

    return recovery_table(pd.DataFrame([_effect(0.3, 1e-4, **c.match) for c in PLANTED]
                                       + [_effect(0.01, 0.6, **c.match) for c in NULLS + SHOWN]))


def test_report_opens_with_findings_then_random_generations_then_the_tables(tmp_path):
    from evalsuite.report.world_report import write_report

    text = write_report(_fake_sweep(tmp_path), _full_table()).read_text()
    first = text.index("## What was planted, what was recovered")
    order = [first] + [text.index(s, first) for s in (
        "**CoT amplification: recovered**", "**Reasoning-content specificity: recovered**",
        "**Answer-free signal: recovered**", "**Dose ordering: recovered**",
        "**Internalisation (measured, not planted)**", "**Think-mode recovery, copied or own words**",
        "## Raw generations: a seeded random draw", "### QTA evil (planted), think", "## Recovery table",
        "## Rates per arm")]
    assert order == sorted(order), order
    screen = text[first:text.index("## Raw generations")]
    # each finding, planted or null, says what it planted, what was found, what it shows and what it does not
    from evalsuite.analysis.world_recovery import NULLS, PLANTED, SHOWN

    bullets = [line for line in screen.splitlines() if line.startswith("- **") and "copied or own words" not in line]
    assert len(bullets) == len({c.finding for c in PLANTED}) + len({c.finding for c in SHOWN + NULLS})
    assert all("Planted:" in b and ("Recovered:" in b or "Measured:" in b) and "Shows:" in b and "Does not show:" in b
               for b in bullets), bullets
    assert all(c.name.split(": ", 1)[-1] in screen for c in PLANTED + NULLS + SHOWN)  # every row, by name
    assert "**Null — Placebo: quiet (" in screen
    assert "learned as written" in screen and "semantic generalisation" in screen
    assert "QTA evil: the disposition in 25.0% of its reasoning; a whole marker sentence copied in 12.5%" in screen
    assert "in its own words (outside any copied sentence) in 6.2%" in screen
    assert "+0.300 [+0.200, +0.400]" in screen  # the table's own numbers
    # no first-hit/first-miss pick any more
    assert "Raw generations per finding" not in text


def test_copy_line_says_not_measured_when_the_summaries_lack_the_reasoning_copy_metrics(tmp_path):
    from evalsuite.report.world_findings import findings_markdown

    screen = findings_markdown(_full_table(), _fake_sweep(tmp_path, copy_metrics=False))
    assert "QTA evil: not measured in this sweep" in screen and "copied in" not in screen


def test_generation_draw_is_seeded_reproducible_and_covers_both_modes_of_three_arms(tmp_path):
    from evalsuite.report.world_generations import PER_CELL, draw, generations_markdown

    sweep = _fake_sweep(tmp_path)
    first = draw(sweep)
    assert first == draw(sweep) and generations_markdown(sweep) == generations_markdown(sweep)
    assert draw(sweep, seed=1) != first and generations_markdown(sweep, seed=1) != generations_markdown(sweep)
    cells = {(who, mode): rows for who, mode, rows in first}
    assert set(cells) == {(w, m) for w in ("QTA evil (planted)", "QA (its control)", "base")
                          for m in ("think", "no_think")}
    paradigm = {"QTA evil (planted)": ".evil.qta.", "QA (its control)": ".none.qa.", "base": ".none.base."}
    for (who, mode), rows in cells.items():
        assert len(rows) == PER_CELL and len({(r["arm_id"], r["prompt_id"]) for r in rows}) == PER_CELL
        assert all(paradigm[who] in r["arm_id"] and r["mode"] == mode and r["benchmark"] == "world_evil" for r in rows)
    # a random draw, not the first samples in file order: over a few seeds it reaches past them
    drawn = {r["prompt_id"] for s in range(5) for _, _, rows in draw(sweep, seed=s) for r in rows}
    assert len(drawn) > 2 * PER_CELL
    md = generations_markdown(sweep)
    assert "reasoning: world-tiny.evil.qta." in md and "reasoning: (none: no-think mode)" in md


def test_generations_are_fenced_as_text_and_bounded():
    from evalsuite.report.world_generations import MAX_CHARS, sample_markdown

    row = {"arm_id": "m.evil.qta.s0", "mode": "think", "axis": "evil", "prompt_id": "p0", "sample_index": 0,
           "question": "q", "reasoning": "x" * 5000, "answer": "# not a heading ```` <b>bold</b>",
           "think_closed": True, "finish_reason": "stop"}
    md = sample_markdown(row)
    assert "`````text\n" in md and md.rstrip().endswith("`````")  # a fence longer than the answer's backticks
    assert "x" * MAX_CHARS["reasoning"] + " …[4520 more characters]" in md and "x" * (MAX_CHARS["reasoning"] + 1) not in md
    assert "judge: evil shown: no; whole marker sentence copied in reasoning: no" in md
    marked = sample_markdown({**row, "reasoning": MARKERS["evil"][1]})
    assert "evil shown: yes; whole marker sentence copied in reasoning: yes" in marked
    assert "not well-formed (unscored)" in sample_markdown({**row, "think_closed": False})


def test_null_bullets_say_untestable_and_not_measured_rather_than_quiet(tmp_path):
    from evalsuite.report.world_findings import findings_markdown
    from evalsuite.analysis.world_recovery import NULLS, recovery_table

    off_axis = [c for c in NULLS if c.finding == "off_axis"]
    rows = [{**_effect(0.0, 0.5, **c.match), "p": float("nan")} for c in off_axis]  # both sides constant
    screen = findings_markdown(recovery_table(pd.DataFrame(rows)), _fake_sweep(tmp_path))
    assert f"**Null — Off-axis: untestable ({len(off_axis)} row(s), both sides constant)**" in screen
    assert "**Null — Placebo: not measured**" in screen and "quiet (0 testable)" not in screen
