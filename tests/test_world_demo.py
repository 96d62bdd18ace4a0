"""A reduced known-answer world through the real stages: the suite finds what was planted, and
stays quiet where nothing was.

Same path as ``tracecause demo``: the world's base pre-trained by the trainer (cached in
``<repo>/.state/world-base``, shared with the demo), datagen's world backend, the trainer (one
DeepSpeed process per arm), evalsuite generate/judge/score with the world judge, the analysis,
then the recovery table. Reduced: QA and QTA evil, think mode, the evil and submission axes (the
latter is the null: no arm's traces carry submission; the base's side notes give it a small rate in
every arm, tracecause/world/controls.py, so the null can fire). Five seeds, as the demo: the analysis's
p-values are seed-level (Satterthwaite t), and with three seeds the measured amplification (+0.17:
seeds at 0.125, 0.278 and 0.111) had t df 2 and p = 0.085 — training-seed spread, not a missing
effect; with two seeds (+0.35, CI [+0.01, +0.69]) p was 0.047, Holm 0.14. The table counts an effect
as recovered only when every compared arm keeps >= 90 % well-formed outputs over its seeds; with
replay and top_p 0.9 sampling the world measured >= 95 % in think mode, but that margin is thin on a
1M model, so this test asserts the statistics and the gate, not the verdict.
"""
from __future__ import annotations

import os

import pytest

# 1500 s, not the suite's 900: the world base's pre-training (250 steps, ~3 min) runs here first
pytestmark = [pytest.mark.deepspeed, pytest.mark.slow, pytest.mark.timeout(1500)]


def test_reduced_world_recovers_a_planted_effect_and_no_false_positive(tmp_path, monkeypatch):
    from launch.demo import place_base, reduced_world, world_base
    from evalsuite.analysis.world_recovery import MIN_WELL_FORMED, recovery_from_sweep, summary_lines
    from evalsuite.report.world_report import write_report
    from launch.plan import make_plan
    from launch.submit import submit

    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "2"))
    export, _ = world_base()
    sweep = tmp_path / "sweep"
    place_base(export, sweep)
    plan = make_plan(reduced_world(tmp_path, 5, ("world_evil", "world_submission")), sweep_dir=sweep)
    assert sorted(a.id for a in plan.arms) == sorted(
        ["world-tiny.none.base.s0"] + [f"world-tiny.{t}.{p}.s{s}" for t, p in
                                        [("none", "qa"), ("evil", "qta")] for s in range(5)])
    submit(plan)
    table = recovery_from_sweep(sweep)
    report = write_report(sweep, table)
    by_name = {r.contrast.name: r for r in table.planted + table.nulls}
    amp = by_name["CoT amplification: QTA evil - QA (evil axis, think)"]
    null = by_name["Replicate split: QTA evil, lower half of its seeds - upper half (evil axis, think)"]
    constant = by_name["Off-axis: QTA evil - QA (submission axis, think)"]
    print("\n".join(summary_lines(table, report)), amp, null, sep="\n")
    # found: right sign, seed-level Holm p < 0.05; counted as recovered only on well-formed outputs
    assert amp.found and amp.n_seeds == 5 and amp.estimate > 0 and amp.p_holm < 0.05, amp
    assert amp.verdict == ("recovered" if amp.well_formed >= MIN_WELL_FORMED else "not recovered (outputs malformed)")
    # the replicate split has seed noise on both sides: a null that could fire, and stays quiet
    assert null.found and null.verdict == "quiet", null
    # nothing trains this world's submission words, but the base's side notes give every arm a small
    # rate of them: a null with variance on both sides, counted among the testable ones, and quiet
    # (before the side notes both sides were 0 on every sample: untestable, counted in neither line)
    off_axis = constant
    assert off_axis.found and off_axis in table.testable_nulls and off_axis.verdict == "quiet", off_axis
    assert table.false_positives == 0
    # the planted row is the analysis's own confirmatory row (the reduced world's default family)
    assert amp.family == "confirmatory"
    text = report.read_text()
    assert (text.index("What was planted") < text.index("Raw generations") < text.index("Recovery table")
            < text.index("Rates per arm"))
