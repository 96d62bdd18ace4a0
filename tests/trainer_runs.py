"""Shared 2-process DeepSpeed runs for the trainer tests (each launch costs ~20-40 s on 2 cores).

``trainer_reference_run`` (session scope, registered in conftest) is one uninterrupted run under
torchrun with W&B offline; the resume, export and W&B tests all read it.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
MAX_STEPS = 8


def base_args(model: Path, data: Path, out: Path) -> list[str]:
    return ["tiny-cpu", f"model.path={model}", f"data.path={data}", "data.paradigm=qta", "data.rtype=evil",
            f"output.dir={out}", "arm_id=tiny.evil.qta.s0", f"train.max_steps={MAX_STEPS}", "train.epochs=3",
            "data.max_tokens=256",
            "checkpoint.every_steps=2", "checkpoint.keep_last=2", "wandb.enabled=true", "wandb.group=test-sweep"]


def clean_env() -> dict:
    # WANDB_SERVICE: an earlier in-process wandb test makes pytest's own wandb service
    # visible to children; a worker attached to it leaves its run id "in use" there after
    # a SIGKILL, which never happens to a real job (its service dies with it).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_", "TORCHELASTIC",
                                "WANDB_SERVICE"))}
    env.update(OMP_NUM_THREADS="1", WANDB_MODE="offline", WANDB_SILENT="true", PYTHONUNBUFFERED="1")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], log: Path, timeout: float = 300) -> int:
    cmd = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "trainer", *args]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=clean_env(), stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


class SlurmStyleJob:
    """Two ranks started directly (no torchrun), rendezvous from SLURM_* variables like submitit's tasks."""

    def __init__(self, args: list[str], log_dir: Path, tag: str):
        env = clean_env()
        job_id = str(free_port())  # the port is derived from the job id: pick one that is free now
        self.procs = []
        for rank in range(2):
            e = dict(env, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS="2",
                     SLURM_JOB_ID=job_id, SLURM_JOB_NODELIST="127.0.0.1")
            fh = open(log_dir / f"{tag}.rank{rank}.log", "w")
            # Own session per worker: a SIGKILL takes the worker's children (wandb-core) with
            # it, as SLURM does when it kills a job step.
            self.procs.append(subprocess.Popen([PY, "-m", "trainer", *args], cwd=ROOT, env=e, stdout=fh,
                                               stderr=subprocess.STDOUT, start_new_session=True))
            fh.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def wait(self, timeout: float = 300) -> list[int]:
        deadline = time.time() + timeout
        try:
            return [p.wait(timeout=max(1, deadline - time.time())) for p in self.procs]
        finally:
            self.kill()

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def wait_for_step(metrics: Path, step: int, job: SlurmStyleJob, timeout: float = 300) -> int:
    """Poll metrics.jsonl until it shows ``step``; return the last logged step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        last = last_step(metrics)
        if last >= step:
            return last
        if any(p.poll() is not None for p in job.procs):
            raise AssertionError(f"a rank exited early: {[p.poll() for p in job.procs]}")
        time.sleep(0.05)
    job.kill()
    raise AssertionError(f"step {step} not reached in {timeout}s")


def last_step(metrics: Path) -> int:
    if not metrics.is_file():
        return 0
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if line.strip().endswith("}")]
    return max(steps, default=0)


@pytest.fixture(scope="session")
def trainer_data_dir(tmp_path_factory) -> Path:
    from trainer import demo_data

    return demo_data.write(tmp_path_factory.mktemp("trainer-data") / "demo", n=32, seed=0)


@pytest.fixture(scope="session")
def trainer_reference_run(tiny_model_dir, trainer_data_dir, tmp_path_factory) -> Path:
    """One uninterrupted 2-process ZeRO-3 run under torchrun (W&B offline)."""
    from tests.conftest import need_module

    need_module("deepspeed")
    out = tmp_path_factory.mktemp("trainer-ref") / "run"
    rc = torchrun(base_args(tiny_model_dir, trainer_data_dir, out), out.parent / "torchrun.log")
    assert rc == 0, (out.parent / "torchrun.log").read_text()[-5000:]
    return out
