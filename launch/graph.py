"""The stage graph: tasks grouped into jobs (one SLURM array each) with dependencies.

datagen shards -> merge -> train.<model> (one task per trained arm) -> eval.<model>.<mode>.<shard>
(same arms, same order: ``aftercorr`` pipelines task i on train task i) -> analysis.
Base arms need no training: their eval arrays (eval-base.<mode>.<shard>) start at once.
Export is the last step of a training task (the trainer writes export/ and its marker), so a
train task is done exactly when its export is: eval never sees a half-written model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracecause.contracts import SweepLayout
from tracecause.freshness import stale_eval


@dataclass(frozen=True)
class Task:
    stage: str                    # datagen | merge | train | eval | analysis
    key: str                      # unique in the stage: shard-00003, merge, <arm id>, <arm>.<mode>.<shard>
    argvs: tuple[tuple[str, ...], ...]  # stage CLI calls, in order
    done_dir: str                 # output folder; its completion marker means done
    arm: str = ""
    upstream: str = ""            # the task (stage/key) this one needs, for partial resubmission
    module: str = ""              # the package whose cli.main runs it ("" = the stage's own)
    also_done: tuple[str, ...] = ()  # further output folders that must be complete too

    @property
    def uid(self) -> str:
        return f"{self.stage}/{self.key}"


@dataclass(frozen=True)
class Resources:
    nodes: int = 1
    tasks_per_node: int = 1       # one process per GPU (or per the CPU profile); no torchrun inside
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    time_min: int = 30
    python: str = ""
    setup: tuple[str, ...] = ()

    @property
    def processes(self) -> int:
        return self.nodes * self.tasks_per_node

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass
class Job:
    name: str                     # datagen, merge, train.<model>, eval.<model>.<mode>.<shard>, analysis
    stage: str
    tasks: list[Task]
    resources: Resources
    after: list[str] = field(default_factory=list)          # jobs that must end OK first (all of them)
    after_corr: str = ""          # a job whose task i must end OK before task i here
    notes: dict = field(default_factory=dict)               # memory plan, estimates (for the plan table)

    @property
    def size(self) -> int:
        return len(self.tasks)


def order(jobs: list[Job]) -> list[Job]:
    """Topological order (dependencies first); stable for jobs with no relation."""
    by_name = {j.name: j for j in jobs}
    seen: set[str] = set()
    out: list[Job] = []

    def visit(name: str, stack: tuple[str, ...] = ()) -> None:
        if name in seen or name not in by_name:
            return
        if name in stack:
            raise ValueError(f"dependency cycle through {name}")
        job = by_name[name]
        for dep in job.after + ([job.after_corr] if job.after_corr else []):
            visit(dep, stack + (name,))
        seen.add(name)
        out.append(job)

    for j in jobs:
        visit(j.name)
    return out


def done(task: Task) -> bool:
    dirs = (task.done_dir, *task.also_done)
    if not all((Path(d) / "_COMPLETE").is_file() for d in dirs):
        return False
    if any(damaged_output(Path(d)) for d in dirs):  # finished, but its files no longer hold what was sealed
        return False
    if task.stage == "eval" and task.arm:  # eval/<arm>/<mode>: stale once the arm was retrained after it
        in_layout = [Path(d) for d in dirs if Path(d).parents[1].name == "eval"]  # <sweep>/eval/<arm>/<mode>
        return not any(stale_eval(SweepLayout(d.parents[2]), task.arm, d.name) for d in in_layout)
    if task.stage == "analysis":  # an eval finished (e.g. re-run by resume) after it: analyse again
        evals = Path(task.done_dir).parent / "eval"
        newest = max((m.stat().st_mtime for m in evals.glob("*/*/_COMPLETE")), default=0.0)
        return (Path(task.done_dir) / "_COMPLETE").stat().st_mtime >= newest
    return True


def damaged_output(folder: Path) -> str:
    """Why a finished folder is not reusable ("" when it is): a file its completion marker sealed
    (tracecause.seal) that no longer re-hashes to the seal. Such a task is not done: submit and resume
    run it again, and the stage redoes the damaged unit and says so."""
    from tracecause.io import completion_info
    from tracecause.seal import files_problem

    return files_problem(folder, (completion_info(folder) or {}).get("files") or {})
