"""``tracecause status`` on the real local SLURM cluster: a task killed outside its own control shows
SLURM's verdict and its last log lines, what depends on it shows ``blocked by``, and ``--watch`` ends."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from launch import records
from launch.cli import main
from launch.graph import Job
from launch.status import collect
from tests.test_launch_slurm import FAKE, cluster, fake, res, submit, wait_final, wait_for  # noqa: F401

pytestmark = [pytest.mark.slurm]


def test_a_sigkilled_task_shows_slurms_reason_its_log_and_blocks_its_dependents(cluster, tmp_path, capsys):
    sweep = tmp_path / "sweep"
    a = Job("train.x", "train", [fake("train", "m.evil.qta.s0", sweep / "train", sigkill="true")], res())
    ev = dataclasses.replace(fake("eval", "m.evil.qta.s0.all.0", sweep / "eval"), arm="m.evil.qta.s0")  # as planned
    b = Job("eval.x", "eval", [ev], res(), after_corr="train.x")
    subs = submit([a, b], sweep, cluster)
    try:
        _check_killed_and_blocked(sweep, subs[0].job_ids[0], capsys)
    finally:
        main(["cancel", str(sweep)])  # the dependent job would wait forever (DependencyNeverSatisfied)


def _check_killed_and_blocked(sweep, train_job, capsys):
    states = wait_final([train_job], timeout=120)
    assert states[train_job].state == "FAILED", states[train_job]  # srun: exit code 9 = its task's signal
    rows = {r["stage"]: r for r in collect(sweep)}
    train = rows["train"]
    assert records.read_record(records.record_path(sweep, "train", "m.evil.qta.s0"))["state"] == "running"
    assert train["state"] == "failed" and "SIGKILL" in train["reason"], train  # SLURM's word, not the record's
    assert any("allocating far too much memory" in line for line in train["log_tail"]), train["log_tail"]
    assert rows["eval"]["state"] == "blocked" and rows["eval"]["blocked_by"] == "train/m.evil.qta.s0", rows["eval"]
    assert main(["status", str(sweep), "--watch", "0.5"]) == 1  # nothing can move any more: it ends, non-zero
    out = capsys.readouterr().out
    assert "eval/m.evil.qta.s0.all.0: blocked by train/m.evil.qta.s0" in out
    assert "train/m.evil.qta.s0: failed (job" in out and "| fake stage: allocating far too much memory" in out


def test_a_moved_sweep_keeps_its_status(cluster, tmp_path):
    """Records hold paths relative to the sweep folder: a copy elsewhere reads the same."""
    sweep = tmp_path / "sweep"
    job = Job("train.x", "train", [fake("train", "m.evil.qta.s0", sweep / "train" / "out", steps=1, sleep=0)], res())
    jid = submit([job], sweep, cluster)[0].job_ids[0]
    wait_final([jid])
    wait_for(lambda: records.read_record(records.record_path(sweep, "train", "m.evil.qta.s0")).get("state") == "done",
             what="done record")
    rec = records.read_record(records.record_path(sweep, "train", "m.evil.qta.s0"))
    assert rec["done_dir"] == "train/out" and "{sweep}/train/out" in " ".join(rec["argvs"][0]), rec
    moved = tmp_path / "elsewhere" / "sweep"
    shutil.copytree(sweep, moved)
    shutil.rmtree(sweep)
    row = next(r for r in collect(moved) if r["stage"] == "train")
    assert row["state"] == "done" and Path(moved / "train" / "out" / "_COMPLETE").is_file()
