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
STEPS = 24


def train_task(model: Path, data: Path, out: Path) -> Task:
    from configs import config_path

    argv = (str(config_path("trainer", "tiny-cpu")), f"arm_id={ARM}", f"model.path={model}", f"data.path={data}",
            "data.paradigm=qta", "data.rtype=evil", "train.seed=0", f"output.dir={out}", "train.epochs=8",
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
    assert sorted(got) == list(range(1, STEPS + 1)), sorted(got)
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


def _interrupted_run(tiny_inputs, local_reference, sweep: Path, interrupt) -> None:
    from tracecause import wandb_records

    jid, out = slurm_run(tiny_inputs, sweep, nodes=1, per_node=2)
    wait_for(lambda: (out / "metrics.jsonl").is_file() and max(losses(out), default=0) >= 2, timeout=300,
             what="training steps")
    interrupt(jid)
    states = wait_final([jid], timeout=400)
    assert states[jid].state == "COMPLETED", (states[jid], _log_tail(sweep))
    rec = records.read_record(records.record_path(sweep, "train", ARM))
    assert rec["attempts"] >= 2 and rec["preemptions"] >= 1 and rec["crashes"] == 0, rec
    assert_same_losses(out, local_reference)
    # W&B: one run id, several offline fragments, steps continuing where the save left them.
    files = wandb_records.find_run_files(out / "wandb")
    assert len({f.name for f in files}) == 1 and len(files) >= 2
    steps = [int(r["train/global_step"]) for r in wandb_records.history(out / "wandb") if "train/global_step" in r]
    first = [int(r["train/global_step"]) for r in wandb_records.history(files[0]) if "train/global_step" in r]
    assert steps == list(range(1, STEPS + 1)) or (sorted(set(steps)) == list(range(1, STEPS + 1))
                                                  and steps[len(first)] <= first[-1] + 1), steps


def test_usr2_from_scancel_saves_requeues_and_resumes_with_identical_losses(tiny_inputs, local_reference,
                                                                            tmp_path, in_repo):
    _interrupted_run(tiny_inputs, local_reference, tmp_path / "sweep",
                     lambda jid: subprocess.run(["scancel", "--signal=USR2", jid], check=True))


def test_preemption_by_the_high_partition_resumes_with_identical_losses(tiny_inputs, local_reference,
                                                                       tmp_path, in_repo):
    from slurm.cluster import sacct_states

    def preempt(jid):
        node = sacct_states([jid])[jid].nodes[0]
        subprocess.run(["sbatch", "-p", "high", "-w", node, "-c", "2", "--mem=100M", "-o", "/dev/null",
                        "--wrap", "sleep 2"], check=True, capture_output=True)

    _interrupted_run(tiny_inputs, local_reference, tmp_path / "sweep", preempt)
