"""Status logic that needs no cluster: why a task failed, what it blocks, eval progress over shards."""
from __future__ import annotations

import json

from launch import failure
from launch.status import eval_progress, mark_blocked
from tracecause.contracts import eval_progress_file


def _row(stage, key, state, arm="", slurm=""):
    return {"stage": stage, "key": key, "arm": arm, "state": state, "slurm": slurm}


def test_slurm_verdicts_read_as_what_to_do():
    assert failure.slurm_reason("OUT_OF_MEMORY").startswith("out of memory") and "mem_gb" in failure.slurm_reason("OUT_OF_MEMORY")
    assert failure.slurm_reason("NODE_FAIL").startswith("node failure")
    assert failure.slurm_reason("TIMEOUT").startswith("time limit") and "time_min" in failure.slurm_reason("TIMEOUT")
    assert "SIGKILL" in failure.slurm_reason("FAILED", 0, 9) and "SIGKILL" in failure.slurm_reason("FAILED", 9, 0)
    assert failure.slurm_reason("FAILED", 143, 0) == "killed by signal 15 (exit 143)"
    assert failure.slurm_reason("FAILED", 3, 0) == "exited with status 3"
    assert failure.slurm_reason("COMPLETED") == ""
    assert failure.counts({"preemptions": 2, "crashes": 1}) == "preempted 2 times, crashed once"
    assert failure.counts({}) == ""


def test_a_failure_blocks_everything_downstream_and_is_named_as_the_root():
    rows = [_row("datagen", "shard-00000", "done"), _row("datagen", "shard-00001", "failed"),
            _row("merge", "merge", "pending"), _row("train", "m.evil.qta.s0", "pending", "m.evil.qta.s0"),
            _row("eval", "m.evil.qta.s0.all.0", "pending", "m.evil.qta.s0"),
            _row("eval", "m.none.base.s0.all.0", "running", "m.none.base.s0"), _row("analysis", "analysis", "pending")]
    mark_blocked(rows)
    states = {f"{r['stage']}/{r['key']}": (r["state"], r.get("blocked_by")) for r in rows}
    root = "datagen/shard-00001"
    assert states["merge/merge"] == ("blocked", root)
    assert states["train/m.evil.qta.s0"] == ("blocked", root)
    assert states["eval/m.evil.qta.s0.all.0"] == ("blocked", root)
    assert states["eval/m.none.base.s0.all.0"] == ("running", None)  # a base arm needs no training
    assert states["analysis/analysis"] == ("blocked", root)


def test_only_the_failed_arm_blocks_its_own_evals_and_cancelled_dependents_count_as_blocked():
    rows = [_row("train", "a.evil.qta.s0", "failed", "a.evil.qta.s0"), _row("train", "a.none.qa.s0", "done", "a.none.qa.s0"),
            _row("eval", "a.evil.qta.s0.think.0", "failed", "a.evil.qta.s0", slurm="CANCELLED"),
            _row("eval", "a.none.qa.s0.think.0", "pending", "a.none.qa.s0")]
    mark_blocked(rows)
    assert [r["state"] for r in rows] == ["failed", "done", "blocked", "pending"]
    assert rows[2]["blocked_by"] == "train/a.evil.qta.s0"


def test_eval_progress_adds_up_the_current_stage_over_modes(tmp_path):
    arm = "m.evil.qta.s0"
    for mode, done in (("think", 30), ("no_think", 10)):
        d = tmp_path / "eval" / arm / mode
        d.mkdir(parents=True)
        (d / eval_progress_file(1, 2)).write_text(json.dumps(
            {"stage": "generate", "mode": mode, "done": done, "total": 40, "tokens_per_s": 50.0,
             "wandb_run_id": "eval-x", "updated_at": 1.0 + done}))
        (d / eval_progress_file(0, 2)).write_text(json.dumps(  # another shard: another task
            {"stage": "score", "done": 1, "total": 1, "wandb_run_id": "eval-y", "updated_at": 99.0}))
    p = eval_progress(tmp_path, arm, f"{arm}.all.1")
    assert (p["stage"], p["done"], p["total"], p["wandb"]) == ("generate", 40, 80, "eval-x")
    assert eval_progress(tmp_path, arm, f"{arm}.think.1")["done"] == 30
    assert eval_progress(tmp_path, arm, f"{arm}.think.0")["wandb"] == "eval-y"
