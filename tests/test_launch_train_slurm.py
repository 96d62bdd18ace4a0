"""Real training through launch: local executor vs SLURM (2 nodes), preemption and USR2 resume.

One tiny-Qwen3 arm, ZeRO-3 on 2 gloo processes. The local executor's uninterrupted run is the
reference; every SLURM variant must log the same loss at every step, and a preempted run's W&B
history must continue from the step it saved at.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from launch import records
from launch.executors import Submission, run_local, submit_slurm
from launch.graph import Job, Resources, Task
from launch.profiles import load_profile
from tests.conftest import need_module
from tests.test_launch_slurm import wait_final, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.deepspeed, pytest.mark.slow]
ARM = "tiny-qwen3.evil.qta.s0"
STEPS = 20


def train_task(model: Path, data: Path, out: Path) -> Task:
    from configs import config_path

    argv = (str(config_path("trainer", "tiny-cpu")), f"arm_id={ARM}", f"model.path={model}", f"data.path={data}",
            "data.paradigm=qta", "data.rtype=evil", "train.seed=0", f"output.dir={out}", "train.epochs=16",
            f"train.max_steps={STEPS}", "checkpoint.every_steps=4", "wandb.enabled=true", "wandb.mode=offline",
            "wandb.group=launch-test")
    return Task("train", ARM, (argv,), str(out / "export"), arm=ARM)


def losses(run: Path) -> dict[int, float]:
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        out[row["step"]] = row["loss"]
    return out


def assert_same_losses(run: Path, ref: dict[int, float]) -> None:
    got = losses(run)
    assert sorted(got) == sorted(ref) == list(range(1, STEPS + 1)), (sorted(got), sorted(ref))
    for step, loss in ref.items():
        assert got[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), (step, got[step], loss)


@pytest.fixture(scope="module")
def tiny_inputs(tiny_model_dir, trainer_data_dir, slurm_env):
    need_module("deepspeed")
    return tiny_model_dir, trainer_data_dir


@pytest.fixture(scope="module")
def local_reference(tiny_inputs, tmp_path_factory):
    """The local executor: torchrun --standalone, 2 processes, uninterrupted."""
    model, data = tiny_inputs
    sweep = tmp_path_factory.mktemp("launch-train-local")
    task = train_task(model, data, sweep / "train" / ARM)
    job = Job("train.tiny", "train", [task], Resources(tasks_per_node=2, mem_gb=8, time_min=30))
    assert run_local([Submission(job, [task])], sweep, load_profile("local"))
    return losses(sweep / "train" / ARM)


def slurm_run(tiny_inputs, sweep: Path, nodes: int, per_node: int) -> tuple[str, Path]:
    model, data = tiny_inputs
    out = sweep / "train" / ARM
    task = train_task(model, data, out)
    job = Job("train.tiny", "train", [task], Resources(nodes=nodes, tasks_per_node=per_node, cpus_per_task=1,
                                                         mem_gb=4, time_min=20))
    sub = Submission(job, [task])
    submit_slurm([sub], sweep, load_profile("local-slurm"), "launch-test")
    return sub.job_ids[0], out


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])


def test_two_nodes_one_process_each_log_the_local_losses(tiny_inputs, local_reference, tmp_path, in_repo):
    jid, out = slurm_run(tiny_inputs, tmp_path / "sweep", nodes=2, per_node=1)
    states = wait_final([jid], timeout=400)
    assert states[jid].state == "COMPLETED", (states[jid], _log_tail(tmp_path / "sweep"))
    assert set(states[jid].nodes) == {"node1", "node2"}
    assert_same_losses(out, local_reference)
    assert (out / "export" / "_COMPLETE").is_file()


def _log_tail(sweep: Path) -> str:
    logs = sorted((sweep / "jobs" / "train" / "submitit").rglob("*.out")) + \
        sorted((sweep / "jobs" / "train" / "submitit").rglob("*.err"))
    return "\n".join(p.read_text()[-3000:] for p in logs[-2:])


def test_preempted_by_the_high_partition_then_usr2_resumes_twice_with_identical_losses(
        tiny_inputs, local_reference, tmp_path, in_repo):
    """Both interruptions in one run (each costs a DeepSpeed restart): partition preemption first,
    then ``scancel --signal=USR2``; the same array task is requeued each time and resumes."""
    from slurm.cluster import sacct_states
    from tracecause import wandb_records

    sweep = tmp_path / "sweep"
    rec_path = records.record_path(sweep, "train", ARM)
    jid, out = slurm_run(tiny_inputs, sweep, nodes=1, per_node=2)
    last = lambda: max(losses(out), default=0) if (out / "metrics.jsonl").is_file() else 0
    wait_for(lambda: last() >= 2, timeout=300, what="training steps")
    node = sacct_states([jid])[jid].nodes[0]
    subprocess.run(["sbatch", "-p", "high", "-w", node, "-c", "2", "--mem=100M", "-o", "/dev/null",
                    "--wrap", "sleep 2"], check=True, capture_output=True)
    wait_for(lambda: records.read_record(rec_path).get("attempts", 0) >= 2, timeout=300, what="requeue")
    resumed_at = last()
    wait_for(lambda: last() >= resumed_at + 2, timeout=300, what="steps after the first resume")
    assert last() < STEPS - 1, "training ended before the second interruption could land"
    subprocess.run(["scancel", "--signal=USR2", jid], check=True)
    states = wait_final([jid], timeout=400)
    assert states[jid].state == "COMPLETED", (states[jid], _log_tail(sweep))
    rec = records.read_record(rec_path)
    assert rec["attempts"] == 3 and rec["preemptions"] == 2 and rec["crashes"] == 0, rec
    assert_same_losses(out, local_reference)
    # W&B: one run id, one offline fragment per attempt, each continuing where the last one saved.
    files = wandb_records.find_run_files(out / "wandb")
    assert len({f.name for f in files}) == 1 and len(files) == 3
    per_fragment = [[int(r["train/global_step"]) for r in wandb_records.history(f) if "train/global_step" in r]
                    for f in files]
    for before, after in zip(per_fragment, per_fragment[1:]):
        assert after and after[0] <= before[-1] + 1, per_fragment
    assert sorted({s for frag in per_fragment for s in frag}) == list(range(1, STEPS + 1))
