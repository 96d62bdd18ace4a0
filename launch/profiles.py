"""Cluster profiles: what a cluster offers and how to ask it for resources.

A profile is a YAML under ``configs/clusters/``. It says nothing about the sweep; the plan
checks the sweep's needs against it (a GPU stage on a profile without GPUs fails there).
Its ``env:``, ``setup:`` and ``extra_sbatch:`` are written into every job script: fine for paths
and switches, never for secrets (launch.profile_env refuses what looks like a key).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from configs import config_path
from tracecause.config import bounded, load, one_of

from launch.profile_env import check_profile_env, check_setup_lines

STAGES = ("datagen", "merge", "train", "eval", "analysis")


@dataclass
class StageResources:
    """What one task of a stage asks for. ``gpus`` is per node; 0 runs on CPUs."""

    gpus: int = bounded(0, ge=0, le=16, help="GPUs per node for one task")
    cpus: int = bounded(1, ge=1, help="CPUs per process (submitit cpus_per_task)")
    mem_gb: float = bounded(8.0, gt=0, help="memory per node, GB")
    time_min: int = bounded(60, ge=1, help="wall-clock limit per attempt, minutes")
    processes_per_node: int = bounded(0, ge=0, help="CPU profiles: processes per node (0 = one per GPU, or 1)")
    max_nodes: int = bounded(1, ge=1, help="upper bound on nodes for one task (training grows to fit memory)")
    nodes: int = bounded(0, ge=0, help="fixed nodes per task (0 = as few as the memory plan allows)")
    python: str = ""  # the interpreter of this stage's environment (training vs vLLM envs); "" = this one
    setup: list[str] = field(default_factory=list)  # extra shell lines for this stage only


@dataclass
class StagesResources:
    """Per-stage requests. Each profile spells its stages out: a partial override starts from
    ``StageResources()`` defaults, not from another profile's."""

    datagen: StageResources = field(default_factory=StageResources)
    merge: StageResources = field(default_factory=StageResources)
    train: StageResources = field(default_factory=StageResources)
    eval: StageResources = field(default_factory=StageResources)
    analysis: StageResources = field(default_factory=StageResources)


@dataclass
class ClusterProfile:
    name: str = "local"
    scheduler: str = one_of("slurm", ("slurm", "local"), help="local = no SLURM, run the graph in order here")
    partition: str = ""
    account: str = ""
    qos: str = ""
    constraint: str = ""
    gpus_per_node: int = bounded(0, ge=0, le=16)
    gpu_memory_gb: float = bounded(0.0, ge=0, help="memory of one GPU; the ZeRO-3 plan must fit it")
    cpus_per_node: int = bounded(2, ge=1)
    mem_per_node_gb: float = bounded(8.0, gt=0)
    max_nodes: int = bounded(1, ge=1, help="largest job this cluster accepts")
    activation_margin: float = bounded(0.35, ge=0, lt=1, help="fraction of GPU memory kept for activations")
    signal_lead_s: int = bounded(120, ge=10, help="USR2 this long before the time limit: > one step + one save")
    array_parallelism: int = bounded(64, ge=1, help="max simultaneously running tasks of one array "
                                                   "(the local executor: of one job)")
    max_crash_retries: int = bounded(2, ge=0, help="requeues after a crash (preemption/timeouts are not counted)")
    # The local executor forks each single-process task from one interpreter that has imported the
    # stages' libraries (launch/warm.py): the same task, without ~5 s of imports each time.
    warm_start: bool = False
    setup: list[str] = field(default_factory=list)  # module loads, exports: every job
    # Environment of every task (SLURM: exported in setup). Written into every job script: paths and
    # switches only; a value that looks like a key is refused (launch.profile_env).
    env: dict[str, str] = field(default_factory=dict)
    extra_sbatch: dict[str, str] = field(default_factory=dict)
    stages: StagesResources = field(default_factory=StagesResources)
    gpu_tflops: float = bounded(989.0, gt=0, help="peak dense bf16 per GPU (estimates only)")

    def validate(self) -> None:
        check_profile_env(self.env, self.setup, self.extra_sbatch)  # written into every job script
        if self.warm_start and self.scheduler != "local":
            raise ValueError("warm_start forks tasks on this machine: it applies to scheduler: local only "
                             "(SLURM starts each task's own interpreter); remove it")
        for stage in STAGES:
            res: StageResources = getattr(self.stages, stage)
            check_setup_lines(res.setup, f"stages.{stage}.setup")
            if res.gpus > self.gpus_per_node:
                raise ValueError(f"stages.{stage}.gpus={res.gpus} but the nodes have gpus_per_node={self.gpus_per_node}")
            if res.mem_gb > self.mem_per_node_gb:
                raise ValueError(f"stages.{stage}.mem_gb={res.mem_gb} exceeds mem_per_node_gb={self.mem_per_node_gb}")
            if res.max_nodes > self.max_nodes:
                raise ValueError(f"stages.{stage}.max_nodes={res.max_nodes} exceeds the cluster's max_nodes={self.max_nodes}")
            if res.nodes > res.max_nodes:
                raise ValueError(f"stages.{stage}.nodes={res.nodes} exceeds stages.{stage}.max_nodes={res.max_nodes}")
            procs = self.processes_per_node(stage)
            if procs * res.cpus > self.cpus_per_node:
                raise ValueError(f"stages.{stage}: {procs} processes x {res.cpus} cpus exceed cpus_per_node={self.cpus_per_node}")

    def resources(self, stage: str) -> StageResources:
        return getattr(self.stages, stage)

    def processes_per_node(self, stage: str) -> int:
        """One process per GPU; on CPUs the profile says how many."""
        res = self.resources(stage)
        if res.gpus:
            return res.gpus
        return res.processes_per_node or 1

    @property
    def is_slurm(self) -> bool:
        return self.scheduler == "slurm"


def profile_path(name: str | Path) -> Path:
    return config_path("clusters", str(name))


def load_profile(name: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ClusterProfile:
    """``load_profile("h100x8")`` or a path; overrides are ``key=value`` on the profile."""
    path = profile_path(name)
    return load(ClusterProfile, [path], overrides, base={"name": path.stem})
