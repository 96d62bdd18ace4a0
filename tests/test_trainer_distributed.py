"""Rank/world/rendezvous detection from torchrun and from SLURM (submitit: one process per rank)."""
from __future__ import annotations

from trainer import distributed
from trainer.distributed import detect


def test_torchrun_variables_win():
    env = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "n1", "MASTER_PORT": "29501",
           "SLURM_PROCID": "0", "SLURM_NTASKS": "9"}
    d = detect(env)
    assert (d.rank, d.local_rank, d.world_size, d.master_addr, d.master_port, d.source) == (3, 1, 4, "n1", 29501, "torchrun")


def test_slurm_tasks_agree_on_the_master_without_talking(monkeypatch):
    monkeypatch.setattr(distributed.subprocess, "run", _no_scontrol)
    ranks = []
    for procid, localid in ((0, 0), (1, 1), (2, 0), (3, 1)):
        env = {"SLURM_PROCID": str(procid), "SLURM_LOCALID": str(localid), "SLURM_NTASKS": "4",
               "SLURM_JOB_ID": "123456", "SLURM_JOB_NODELIST": "node[3-4]"}
        ranks.append(detect(env))
    assert [r.rank for r in ranks] == [0, 1, 2, 3] and {r.world_size for r in ranks} == {4}
    assert {(r.master_addr, r.master_port) for r in ranks} == {("node3", 20000 + 123456 % 20000)}
    assert {r.source for r in ranks} == {"slurm"}
    # array tasks of one job get different ports
    a = detect({"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "1",
                "SLURM_JOB_NODELIST": "gpu-a,gpu-b"})
    b = detect({"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "2",
                "SLURM_JOB_NODELIST": "gpu-a,gpu-b"})
    assert a.master_addr == "gpu-a" and a.master_port != b.master_port


def test_first_host_uses_scontrol_when_present(monkeypatch):
    class Done:
        stdout = "alpha7\nalpha8\n"

    calls = []
    monkeypatch.setattr(distributed.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Done())
    assert distributed.first_host("alpha[7-8]") == "alpha7"
    assert calls == [["scontrol", "show", "hostnames", "alpha[7-8]"]]


def test_single_process_default():
    d = detect({})
    assert (d.rank, d.world_size, d.source) == (0, 1, "single")


def _no_scontrol(*args, **kwargs):
    raise FileNotFoundError("scontrol")
