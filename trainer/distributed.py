"""Rank, world size and rendezvous from torchrun or from SLURM/submitit (one process per rank).

torchrun exports RANK/LOCAL_RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT. Under SLURM without
torchrun (submitit starts one task per GPU) we derive them: rank from SLURM_PROCID, the master
from the first host of SLURM_JOB_NODELIST (``scontrol show hostnames``), the port from the job id
so that every task of one job agrees without talking first.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class DistEnv:
    rank: int
    local_rank: int
    world_size: int
    master_addr: str
    master_port: int
    source: str  # "torchrun" | "slurm" | "single"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def first_host(nodelist: str) -> str:
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             check=True, timeout=30).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    # no scontrol: expand the simple forms ourselves ("node1", "node[1-2,5]", "a,b")
    head = nodelist.split(",")[0]
    if "[" in nodelist:
        prefix, rest = nodelist.split("[", 1)
        first = rest.split("]")[0].split(",")[0].split("-")[0]
        return prefix + first
    return head


def port_from_job(job_id: str) -> int:
    digits = "".join(c for c in job_id if c.isdigit()) or "0"
    return 20000 + int(digits[-6:]) % 20000


def detect(environ: dict | None = None) -> DistEnv:
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistEnv(int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"])), int(env["WORLD_SIZE"]),
                       env.get("MASTER_ADDR", "127.0.0.1"), int(env.get("MASTER_PORT", "29500")), "torchrun")
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        job = env.get("SLURM_ARRAY_JOB_ID", env.get("SLURM_JOB_ID", "0"))
        task = env.get("SLURM_ARRAY_TASK_ID", "")
        addr = env.get("MASTER_ADDR") or first_host(env.get("SLURM_JOB_NODELIST", env.get("SLURM_NODELIST", "127.0.0.1")))
        port = int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else port_from_job(job + task)
        return DistEnv(int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", "0")), int(env["SLURM_NTASKS"]),
                       addr, port, "slurm")
    # One process alone: any free port, so that several single-process runs on one host (tests, the
    # world demo's arms, another user's job) never collide on torch's default 29500.
    return DistEnv(0, 0, 1, "127.0.0.1", int(env["MASTER_PORT"]) if env.get("MASTER_PORT") else free_port(), "single")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def export_env(d: DistEnv) -> None:
    """DeepSpeed and torch.distributed read the env:// variables; make them consistent."""
    os.environ.update(RANK=str(d.rank), LOCAL_RANK=str(d.local_rank), WORLD_SIZE=str(d.world_size),
                      MASTER_ADDR=d.master_addr, MASTER_PORT=str(d.master_port))


# NCCL failure handling (torch reads the TORCH_NCCL_* names; NCCL_ASYNC_ERROR_HANDLING is the
# deprecated spelling): on an error or a collective timeout, abort the communicators and end the
# process, so that srun --kill-on-bad-exit ends the whole step instead of ranks hanging; dump the
# flight recorder's trace of the last collectives for the post-mortem.
NCCL_DEFAULTS = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "TORCH_NCCL_DUMP_ON_TIMEOUT": "1",
                 "TORCH_NCCL_TRACE_BUFFER_SIZE": "2000"}
LEGACY_NCCL = {"NCCL_ASYNC_ERROR_HANDLING": "TORCH_NCCL_ASYNC_ERROR_HANDLING",
               "NCCL_BLOCKING_WAIT": "TORCH_NCCL_BLOCKING_WAIT"}


def nccl_env(environ: dict) -> dict:
    """The TORCH_NCCL_* settings to export: a user's value wins, a legacy name is carried over."""
    out = {}
    for legacy, current in LEGACY_NCCL.items():
        if legacy in environ and current not in environ:
            out[current] = environ[legacy]
    for key, value in NCCL_DEFAULTS.items():
        if key not in environ and key not in out:
            out[key] = value
    return out


def init(d: DistEnv, use_cuda: bool, timeout_min: float = 30.0) -> None:
    import datetime

    import deepspeed
    import torch

    export_env(d)
    if use_cuda:
        os.environ.update(nccl_env(dict(os.environ)))
        torch.cuda.set_device(d.local_rank)
    deepspeed.init_distributed(dist_backend="nccl" if use_cuda else "gloo", auto_mpi_discovery=False,
                               rank=d.rank, world_size=d.world_size,
                               timeout=datetime.timedelta(minutes=timeout_min))


def shutdown() -> None:
    """Tear the process group down while the interpreter is whole. Left to exit-time destruction,
    gloo's threads can outlive it and abort a finished rank ("terminate called without an active
    exception"), which SLURM records as a failed task after every output was written."""
    import torch.distributed as tdist

    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()


def all_reduce_max(value: float) -> float:
    import deepspeed.comm as dist
    import torch

    from .runtime import device

    t = torch.tensor([float(value)], dtype=torch.float64, device=device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_reduce_sum(values: list[float]) -> list[float]:
    import deepspeed.comm as dist
    import torch

    from .runtime import device

    t = torch.tensor(values, dtype=torch.float64, device=device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier() -> None:
    import deepspeed.comm as dist

    dist.barrier()


def take_lease(folder, rank: int):
    """Collective: rank 0 takes the output folder's lease (tracecause.lease); every rank learns the
    fencing token, or every rank raises LeaseHeld naming the holder (rank 0's words), so that no
    rank of a refused attempt writes anything and none waits forever for rank 0."""
    from tracecause.lease import Lease, LeaseHeld

    lease, token, refusal = None, 0, ""
    if rank == 0:
        try:
            lease = Lease(folder).acquire()
            token = lease.token
        except LeaseHeld as err:
            token, refusal = -1, str(err)
    agreed = int(all_reduce_sum([float(token)])[0])  # only rank 0 contributes: its token, or -1
    if agreed < 0:
        raise LeaseHeld(refusal or f"{folder} is being written by another attempt (rank 0 found its lease held)")
    return lease, agreed


def fence(lease, what: str) -> None:
    """Collective fencing check before a destructive step: if a newer attempt took this attempt's lease
    over, every rank raises LeaseLost (rank 0 names the new holder) and nothing is touched."""
    from tracecause.lease import LeaseLost

    reason = ""
    if lease is not None:
        try:
            lease.check(what)
        except LeaseLost as err:
            reason = str(err)
    if all_reduce_max(float(bool(reason))) > 0:
        raise LeaseLost(reason or f"{what}: refused, rank 0 found this attempt's lease taken over")
