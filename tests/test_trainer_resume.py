"""Preemption and resume of a real 2-process ZeRO-3 run (gloo, CPU): losses bit-identical.

The reference is one uninterrupted run (torchrun). The interrupted run is started like submitit
starts it — one process per rank, rendezvous from SLURM_* variables — then SIGUSR2 goes to ONE
rank at a random step (all ranks must agree, save together and exit 75), it is resumed, then
both workers are SIGKILLed at a random later step (possibly mid-checkpoint), and resumed again
to the end. Every logged loss must equal the reference's exactly.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal

import pytest

from tests.conftest import need_module
from tests.trainer_runs import MAX_STEPS, SlurmStyleJob, base_args, last_step, wait_for_step
from tracecause.contracts import EXIT_REQUEUE
from tracecause.io import is_complete

pytestmark = [pytest.mark.deepspeed, pytest.mark.slow]


def losses(metrics_path) -> dict[int, float]:
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)), f"every step logged once, in order: {steps}"
    return {r["step"]: r["loss"] for r in rows}


@pytest.fixture(scope="module")
def interrupted_run(tiny_model_dir, trainer_data_dir, tmp_path_factory):
    need_module("deepspeed")
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng = random.Random(seed)
    out = tmp_path_factory.mktemp("trainer-interrupted") / "run"
    logs = out.parent
    args = base_args(tiny_model_dir, trainer_data_dir, out)
    metrics = out / "metrics.jsonl"
    events = {"seed": seed}

    # 1. SIGUSR2 to rank 1 only, at a random step
    job = SlurmStyleJob(args, logs, "a")
    usr2_at = rng.randint(1, 3)
    events["usr2_seen_at"] = wait_for_step(metrics, usr2_at, job)
    job.procs[1].send_signal(signal.SIGUSR2)
    events["usr2_rc"] = job.wait()
    events["after_usr2"] = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())

    # 2. resume, then SIGKILL both workers (by PID) at a random later step
    job = SlurmStyleJob(args, logs, "b")
    kill_at = rng.randint(max(events["after_usr2"]) + 1, MAX_STEPS - 1)
    events["kill_seen_at"] = wait_for_step(metrics, kill_at, job)
    for pid in job.pids:  # each worker leads its own group: its wandb-core dies with it, as under SLURM
        os.killpg(pid, signal.SIGKILL)
    events["kill_rc"] = job.wait()
    events["before_resume_metrics"] = metrics.read_text()
    events["checkpoints_after_kill"] = sorted(p.name for p in (out / "checkpoints").iterdir())

    # 3. resume to the end
    job = SlurmStyleJob(args, logs, "c")
    events["final_rc"] = job.wait()
    if events["final_rc"] != [0, 0]:
        for f in sorted(logs.glob("*.log")):
            print(f, f.read_text()[-3000:])
    return out, events


def test_sigusr2_to_one_rank_saves_on_all_and_exits_for_requeue(interrupted_run):
    out, ev = interrupted_run
    assert ev["usr2_rc"] == [EXIT_REQUEUE, EXIT_REQUEUE], ev
    assert ev["after_usr2"] and max(ev["after_usr2"]) >= ev["usr2_seen_at"], ev


def test_sigkill_then_resume_finishes(interrupted_run):
    out, ev = interrupted_run
    assert ev["kill_rc"] == [-signal.SIGKILL, -signal.SIGKILL], ev
    assert ev["final_rc"] == [0, 0], ev
    assert is_complete(out / "export")
    assert last_step(out / "metrics.jsonl") == MAX_STEPS


def test_losses_bit_identical_to_uninterrupted_run(interrupted_run, trainer_reference_run):
    out, ev = interrupted_run
    ref = losses(trainer_reference_run / "metrics.jsonl")
    got = losses(out / "metrics.jsonl")
    assert sorted(ref) == list(range(1, MAX_STEPS + 1))
    assert got == ref, f"events {ev}"  # exact float equality, not approx
    # the steps logged before the kill (and recomputed after resume) matched too
    for line in ev["before_resume_metrics"].splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by SIGKILL
        assert row["loss"] == ref[row["step"]], (row, ev)


def test_only_complete_checkpoints_kept_and_loaded(interrupted_run):
    out, ev = interrupted_run
    ckpts = out / "checkpoints"
    kept = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    assert kept == [MAX_STEPS - 2, MAX_STEPS], kept  # keep_last=2, every 2 steps
    assert all(is_complete(ckpts / str(s)) for s in kept)
    assert not [p for p in ckpts.iterdir() if p.name.startswith(".partial-")]
    state = json.loads((ckpts / str(MAX_STEPS) / "trainer_state.json").read_text())
    assert state["step"] == MAX_STEPS and state["world_size"] == 2
    ref_state = json.loads((ckpts / str(MAX_STEPS) / "trainer_state.json").read_text())
    assert state["wandb_run_id"] == ref_state["wandb_run_id"]


def test_incomplete_checkpoint_is_never_loaded(interrupted_run, tmp_path):
    """A folder without its marker (a crash mid-rename) is invisible to resume."""
    from trainer import checkpoint

    out, _ = interrupted_run
    copy = tmp_path / "ckpts"
    shutil.copytree(out / "checkpoints", copy)
    newest = copy / str(MAX_STEPS)
    (newest / "_COMPLETE").unlink()
    assert checkpoint.latest(copy) == copy / str(MAX_STEPS - 2)
    shutil.copytree(copy / str(MAX_STEPS - 2), copy / ".partial-99")
    assert checkpoint.latest(copy) == copy / str(MAX_STEPS - 2)


def test_wandb_fragments_of_a_requeued_run_share_one_id(interrupted_run, trainer_reference_run):
    """One W&B id across the three fragments (start, after SIGUSR2, after SIGKILL); every logged
    loss equals the reference's. A SIGKILLed fragment may lose records W&B had not written yet —
    metrics.jsonl (fsynced per line) is the complete record, and the next attempt backfills from it."""
    from tracecause import wandb_records

    out, ev = interrupted_run
    ref_id = wandb_records.run_info(trainer_reference_run)["id"]
    info = wandb_records.run_info(out)  # raises if the fragments carry different ids
    assert info["id"] == ref_id and len(info["files"]) == 3, info
    ref = {r["train/global_step"]: r["train/loss"] for r in wandb_records.history(trainer_reference_run)
           if "train/loss" in r}
    fragments = {code: [(r["train/global_step"], r["train/loss"]) for r in wandb_records.history(f) if "train/loss" in r]
                 for f, code in zip(info["files"], info["exited"])}
    # requeued after SIGUSR2 (finish(exit_code=75)), SIGKILLed (no exit record), finished (0)
    assert sorted(fragments, key=str) == sorted([EXIT_REQUEUE, None, 0], key=str), info["exited"]
    for rows in fragments.values():
        assert all(ref[step] == loss for step, loss in rows)
    usr2_rows = [s for s, _ in fragments[EXIT_REQUEUE]]
    assert usr2_rows == list(range(1, max(ev["after_usr2"]) + 1)), "a requeue save flushes W&B"
    resumed_from = max(int(n) for n in ev["checkpoints_after_kill"] if n.isdigit())
    killed = {s for s, _ in fragments[None]}
    # the last attempt backfills (from metrics.jsonl) what the killed one never flushed, and does not
    # log again the replayed steps it did flush: every step once across the fragments
    assert sorted(s for s, _ in fragments[0] if s > resumed_from) == sorted(set(range(resumed_from + 1, MAX_STEPS + 1)) - killed)
    every = sorted(s for rows in fragments.values() for s, _ in rows)
    assert every == list(range(1, MAX_STEPS + 1)), (every, ev)
