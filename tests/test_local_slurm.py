"""The real local SLURM cluster: submitit arrays + sacct accounting, multi-node srun, idempotent
start, and partition preemption that requeues a checkpointing submitit job (USR2)."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from slurm.cluster import LOCAL_CLUSTER, default_state_dir, sacct_states, sinfo_nodes
from tests.conftest import need, need_module
from tests.slurm_support import submitit_slurm_executor, unique_submitit_folder

pytestmark = pytest.mark.slurm


def _wait_done(jobs, timeout_s: float) -> None:
    """Bounded wait: a broken cluster must fail the test, not hang it until pytest's timeout."""
    deadline = time.time() + timeout_s
    while not all(j.done() for j in jobs):
        assert time.time() < deadline, f"jobs not done after {timeout_s}s: {[(j.job_id, j.state) for j in jobs]}"
        time.sleep(0.5)


def _square_plus_task(x: int) -> tuple[int, str]:
    return x * x + 1, os.environ.get("SLURM_ARRAY_TASK_ID", "")


def test_submitit_array_completes_and_sacct_sees_every_task(slurm_env, tmp_path):
    need_module("submitit")
    executor = submitit_slurm_executor(unique_submitit_folder(tmp_path), slurm_env,
                                       slurm_partition="debug", cpus_per_task=1, timeout_min=5)
    inputs = [3, 1, 4, 2]
    jobs = executor.map_array(_square_plus_task, inputs)
    assert len({j.job_id.split("_")[0] for j in jobs}) == 1, "map_array must submit ONE array job"
    _wait_done(jobs, 120)
    results = [j.result() for j in jobs]
    assert [r[0] for r in results] == [x * x + 1 for x in inputs]
    assert [r[1] for r in results] == ["0", "1", "2", "3"]

    array_id = jobs[0].job_id.split("_")[0]
    states = sacct_states([array_id], env=slurm_env)
    deadline = time.time() + 20  # slurmctld sends job ends to slurmdbd asynchronously
    while {s.state for s in states.values()} != {"COMPLETED"} or len(states) != 4:
        assert time.time() < deadline, f"sacct never showed 4 COMPLETED tasks: {states}"
        time.sleep(0.5)
        states = sacct_states([array_id], env=slurm_env)
    assert sorted(states) == sorted(j.job_id for j in jobs)
    assert all(s.exit_code == 0 and s.final and s.nodes for s in states.values())


def test_two_node_srun_sees_one_rank_per_node(slurm_env):
    need(shutil.which("srun") is not None, "SLURM client (srun)")
    out = subprocess.run(
        ["srun", "-p", "debug", "-N2", "-n2", "--time=1", "bash", "-c", 'echo "$SLURM_PROCID $SLURMD_NODENAME"'],
        env={**os.environ, **slurm_env}, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    ranks = dict(line.split() for line in out.stdout.splitlines() if line.strip())
    assert ranks == {"0": "node1", "1": "node2"}


def test_sacct_states_expands_a_pending_1001_task_array_in_one_call(slurm_env):
    need(shutil.which("sbatch") is not None, "SLURM client (sbatch)")
    sub = subprocess.run(["sbatch", "--parsable", "--hold", "--array=0-1000%4", "--time=1", "-o", "/dev/null",
                          "--wrap", "true"],
                         env={**os.environ, **slurm_env}, capture_output=True, text=True, timeout=30)
    assert sub.returncode == 0, sub.stderr  # MaxArraySize must allow launch's 1001-task arrays
    array_id = sub.stdout.strip().split(";")[0]
    try:
        deadline = time.time() + 20
        while len(states := sacct_states([array_id], env=slurm_env)) < 1001:
            assert time.time() < deadline, f"sacct shows {len(states)} of 1001 tasks"
            time.sleep(0.5)
        assert sorted(states) == sorted(f"{array_id}_{i}" for i in range(1001))
        assert {s.state for s in states.values()} == {"PENDING"}
        assert all(s.exit_code == -1 and not s.final and s.nodes == () for s in states.values())
    finally:
        subprocess.run(["scancel", array_id], env={**os.environ, **slurm_env}, timeout=30)


def _pidfiles() -> dict[str, str]:
    run = default_state_dir() / "run"
    return {p.name: p.read_text().strip() for p in sorted(run.glob("*.pid"))}


def test_start_is_idempotent_and_prints_only_exports(slurm_env):
    before = _pidfiles()
    outs = []
    for _ in range(2):
        proc = subprocess.run([str(LOCAL_CLUSTER), "start", "--print-env"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    lines = outs[0].splitlines()
    assert lines and all(line.startswith("export ") for line in lines), outs[0]
    assert f"export SLURM_CONF={slurm_env['SLURM_CONF']}" in lines
    assert _pidfiles() == before, "start on a running cluster must not restart any daemon"
    status = subprocess.run([str(LOCAL_CLUSTER), "status"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and "local-cluster: running" in status.stdout, status.stdout + status.stderr


class _CheckpointedCounter:
    """Counts to ``steps`` one second at a time; on USR2 submitit pickles it (with ``done``) and requeues."""

    def __init__(self) -> None:
        self.done = 0

    def __call__(self, runs_file: str, steps: int) -> tuple[int, list[str]]:
        with open(runs_file, "a") as f:
            f.write(f"{os.environ.get('SLURM_RESTART_COUNT', '0')} {self.done}\n")
        while self.done < steps:
            time.sleep(1)
            self.done += 1
        return self.done, Path(runs_file).read_text().splitlines()

    def checkpoint(self, runs_file: str, steps: int):
        import submitit

        return submitit.helpers.DelayedSubmission(self, runs_file, steps)


@pytest.mark.slow
def test_high_partition_preempts_debug_job_which_checkpoints_requeues_and_completes(slurm_env, tmp_path):
    need_module("submitit")
    need(shutil.which("sbatch") is not None, "SLURM client (sbatch)")
    # Everything happens on node2 only, so that jobs of other tests on node1 are left alone.
    cpus = sinfo_nodes(env=slurm_env)["node2"].cpus
    executor = submitit_slurm_executor(unique_submitit_folder(tmp_path), slurm_env, slurm_partition="debug",
                                       slurm_nodelist="node2", nodes=1, tasks_per_node=1, cpus_per_task=cpus,
                                       timeout_min=5)
    runs_file = tmp_path / "runs.txt"
    steps = 8
    job = executor.submit(_CheckpointedCounter(), str(runs_file), steps)

    deadline = time.time() + 60
    while not (runs_file.exists() and runs_file.read_text().strip()):
        assert time.time() < deadline and not job.done(), "debug job never started"
        time.sleep(0.3)
    time.sleep(2)  # let it make progress that the checkpoint must carry over

    # All of node2: only possible by preempting the debug job.
    high = subprocess.run(["sbatch", "--parsable", "-p", "high", "-w", "node2", "--exclusive", "--time=1",
                           "-o", str(tmp_path / "high-%j.out"), "--wrap", "sleep 2"],
                          env={**os.environ, **slurm_env}, capture_output=True, text=True, timeout=30)
    assert high.returncode == 0, high.stderr
    high_id = high.stdout.strip().split(";")[0]

    _wait_done([job], 120)
    done, runs = job.result()
    assert done == steps
    assert len(runs) >= 2, f"job was never requeued: runs={runs}"
    first_restart, resumed_from = runs[1].split()
    assert int(first_restart) >= 1, runs
    assert 0 < int(resumed_from) < steps, f"requeued run did not resume from the checkpoint: {runs}"

    deadline = time.time() + 20
    while True:
        states = sacct_states([job.job_id, high_id], env=slurm_env)
        if all(states.get(j) and states[j].final for j in (job.job_id, high_id)) or time.time() > deadline:
            break
        time.sleep(0.5)
    assert states[high_id].state == "COMPLETED" and states[high_id].nodes == ("node2",), states
    assert states[job.job_id].state == "COMPLETED", states
