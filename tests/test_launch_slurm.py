"""launch's SLURM machinery on the real local cluster (2 nodes, accounting), with a stand-in stage.

The stand-in (tests/test_launch_fake_stage.py) keeps the trainer's contract: save every step,
USR2/SIGTERM -> save -> exit 75, resume from the saved step. Jobs go through the same submitit
arrays, dependencies, StageTask requeue logic and records as a real sweep.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from launch import records
from launch.executors import submit_slurm
from launch.graph import Job, Resources, Task
from launch.profiles import load_profile
from launch.status import collect
from launch.submit import pending_work

pytestmark = [pytest.mark.slurm]
FAKE = "tests.test_launch_fake_stage"


def fake(stage: str, key: str, out: Path, **kw) -> Task:
    argv = ("run", f"out={out}", *(f"{k}={v}" for k, v in kw.items()))
    return Task(stage, key, (argv,), str(out), arm=key, module=FAKE)


def res(cpus: int = 1) -> Resources:
    return Resources(nodes=1, tasks_per_node=1, cpus_per_task=cpus, mem_gb=1, time_min=5)


def wait_final(job_ids, timeout=180):
    from slurm.cluster import sacct_states

    t0 = time.time()
    while time.time() - t0 < timeout:
        states = sacct_states({j.split("_")[0] for j in job_ids})
        if all(j in states and states[j].final for j in job_ids):
            return states
        time.sleep(2)
    raise AssertionError(f"jobs {job_ids} not final after {timeout}s: {states}")


def wait_for(cond, timeout=120, what=""):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(slurm_env, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # jobs import tests.* from their cwd
    prof = load_profile("local-slurm", ["max_crash_retries=1"])
    return prof


def submit(jobs, sweep, prof):
    subs = pending_work(jobs, {})
    submit_slurm(subs, sweep, prof, "t")
    return subs


def steps(out: Path) -> list[int]:
    return [json.loads(l)["step"] for l in (out / "metrics.jsonl").read_text().splitlines()]


def test_graph_runs_in_dependency_order_and_sacct_sees_every_task(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    a = Job("a", "datagen", [fake("datagen", f"a{i}", sweep / f"a{i}", steps=2, sleep=1) for i in range(2)], res())
    b = Job("b", "train", [fake("train", f"a{i}", sweep / f"b{i}", steps=1, sleep=0) for i in range(2)], res(),
            after_corr="a")
    c = Job("c", "analysis", [fake("analysis", "c", sweep / "c", steps=1, sleep=0)], res(), after=["b"])
    subs = submit([a, b, c], sweep, cluster)
    assert subs[1].corr_name == "a" and subs[2].after_names == ["b"]
    ids = [j for s in subs for j in s.job_ids]
    states = wait_final(ids)
    assert {states[j].state for j in ids} == {"COMPLETED"}, states
    done_at = lambda d: json.loads((d / "_COMPLETE").read_text())["completed_at"]
    started = lambda d: float((d / "starts.log").read_text().split()[0])
    for i in range(2):
        assert started(sweep / f"b{i}") >= done_at(sweep / f"a{i}")
    assert started(sweep / "c") >= max(done_at(sweep / f"b{i}") for i in range(2))
    rows = {r["key"]: r for r in collect(sweep) if r["stage"] == "train"}
    assert all(r["state"] == "done" and r["attempts"] == 1 for r in rows.values())


def _preempt_case(cluster, tmp_path, interrupt, stage="train"):
    sweep = tmp_path / "sweep"
    out = sweep / "run"
    job = Job(f"{stage}.x", stage, [fake(stage, "arm", out, steps=24, sleep=0.5)], res(cpus=2))
    sub = submit([job], sweep, cluster)[0]
    jid = sub.job_ids[0]
    wait_for(lambda: (out / "metrics.jsonl").is_file() and len(steps(out)) >= 3, what="first steps")
    interrupt(jid)
    states = wait_final([jid], timeout=240)
    assert states[jid].state == "COMPLETED", states[jid]
    rec = records.read_record(records.record_path(sweep, stage, "arm"))
    assert rec["attempts"] >= 2 and rec["preemptions"] >= 1 and rec["crashes"] == 0, rec
    assert steps(out) == list(range(1, 25))  # resumed exactly where it saved: no step lost or repeated
    row = next(r for r in collect(sweep) if r["stage"] == stage)  # status shows the count per task
    assert row["state"] == "done" and row["preemptions"] == rec["preemptions"] and "preempted" in row["counts"], row
    return rec


@pytest.mark.slow
def test_usr2_from_scancel_requeues_the_same_task_which_resumes(cluster, tmp_path):
    """The requeue machinery alone (partition preemption with the real trainer: test_launch_train_slurm)."""
    _preempt_case(cluster, tmp_path, lambda jid: subprocess.run(["scancel", "--signal=USR2", jid], check=True))


@pytest.mark.slow
def test_usr2_preempts_a_stage_running_as_a_child_process(cluster, tmp_path):
    """datagen/merge/eval/analysis run as a child of the task process and SLURM signals both: the
    task forwards the signal instead of submitit's requeue, and it counts as a preemption, not a crash."""
    _preempt_case(cluster, tmp_path, lambda jid: subprocess.run(["scancel", "--signal=USR2", jid], check=True),
                  stage="datagen")


@pytest.mark.slow
def test_crash_is_retried_up_to_the_cap_then_status_shows_the_error(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    job = Job("train.x", "train", [fake("train", "arm", sweep / "run", crash="true")], res())
    jid = submit([job], sweep, cluster)[0].job_ids[0]
    wait_for(lambda: records.read_record(records.record_path(sweep, "train", "arm")).get("state") == "failed",
             timeout=180, what="failed state")
    states = wait_final([jid])
    assert states[jid].state == "FAILED"
    rec = records.read_record(records.record_path(sweep, "train", "arm"))
    assert rec["attempts"] == 2 and rec["crashes"] == 2  # cap 1 -> one retry, not more
    starts = (sweep / "run" / "starts.log").read_text().splitlines()
    assert len(starts) == 2
    row = next(r for r in collect(sweep) if r["stage"] == "train")
    assert row["state"] == "failed" and "boom" in row["error"]


def test_status_of_a_thousand_arms_makes_one_sacct_call(slurm_env, tmp_path, monkeypatch):
    import shutil

    real = shutil.which("sacct")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "sacct.log"
    (bindir / "sacct").write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexec {real} \"$@\"\n")
    (bindir / "sacct").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    sweep = tmp_path / "sweep"
    for i in range(1000):
        for stage, key in (("train", f"m.evil.qta.s{i}"), ("eval", f"m.evil.qta.s{i}.think.0")):
            records.update_record(records.record_path(sweep, stage, key), stage=stage, key=key,
                                  arm=f"m.evil.qta.s{i}", job_id=f"{900000 + i // 100}_{i % 100}", state="submitted")
    rows = collect(sweep)
    assert len(rows) == 2000
    calls = log.read_text().splitlines()
    assert len(calls) == 1, calls
    assert "900009" in calls[0]


def test_resubmission_skips_done_work_leaves_running_work_alone_and_waits_for_it(cluster, tmp_path):
    from launch.submit import live_jobs

    sweep = tmp_path / "sweep"
    a = Job("a", "train", [fake("train", f"x{i}", sweep / f"a{i}", steps=6, sleep=1) for i in range(3)], res())
    b = Job("b", "eval", [fake("eval", f"x{i}", sweep / f"b{i}", steps=1, sleep=0) for i in range(3)], res(),
            after_corr="a")
    from tracecause.io import mark_complete
    mark_complete(sweep / "a0")  # finished earlier
    mark_complete(sweep / "b0")
    first = submit([Job("a", "train", [a.tasks[1]], res())], sweep, cluster)  # "still running" from before
    running = first[0].job_ids[0]
    live = live_jobs(records.all_records(sweep))
    assert live == {"train/x1": running}
    subs = pending_work([a, b], live)
    assert [(s.job.name, [t.key for t in s.tasks]) for s in subs] == [("a", ["x2"]), ("b", ["x1", "x2"])]
    assert subs[1].after == [running] and subs[1].after_names == ["a"]  # not aligned: wait for both
    submit_slurm(subs, sweep, cluster, "t")
    ids = [running] + [j for s in subs for j in s.job_ids]
    states = wait_final(ids)
    assert all(states[j].state == "COMPLETED" for j in ids), states
    done_at = json.loads((sweep / "a1" / "_COMPLETE").read_text())["completed_at"]
    assert float((sweep / "b1" / "starts.log").read_text().split()[0]) >= done_at
    assert not (sweep / "a0" / "starts.log").exists() and not (sweep / "b0" / "starts.log").exists()


def test_cancel_scancels_the_sweeps_unfinished_jobs_by_stage(cluster, tmp_path):
    from launch.cli import main

    sweep = tmp_path / "sweep"
    a = Job("a", "train", [fake("train", "x", sweep / "a", steps=100, sleep=1)], res())
    b = Job("b", "eval", [fake("eval", "x", sweep / "b", steps=1, sleep=0)], res(), after=["a"])
    subs = submit([a, b], sweep, cluster)
    assert main(["cancel", str(sweep), "--stage", "eval"]) == 0
    states = wait_final([subs[1].job_ids[0]], timeout=60)
    assert states[subs[1].job_ids[0]].state == "CANCELLED"
    assert main(["cancel", str(sweep)]) == 0
    states = wait_final([subs[0].job_ids[0]], timeout=60)
    assert states[subs[0].job_ids[0]].state == "CANCELLED"
