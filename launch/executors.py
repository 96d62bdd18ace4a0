"""Backends that run a pruned stage graph: SLURM arrays via submitit, a dry run, and ``local``.

All three take the same ``Submission`` list from launch.submit and the same sweep folder.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tracecause.contracts import EXIT_REQUEUE, SweepLayout
from tracecause.io import atomic_write_json, atomic_write_text

from launch import records
from launch.graph import Job, done
from launch.profiles import ClusterProfile
from launch.task import StageTask
from launch.warm import WarmStarter


@dataclass
class Submission:
    """One job to submit now: the tasks still missing, and dependencies already resolved to job ids."""

    job: Job
    tasks: list                          # the Task objects to run (subset of job.tasks, same order)
    after: list[str] = field(default_factory=list)        # job ids / array ids (afterok)
    after_corr: str = ""                 # array job id (aftercorr), when task lists align
    after_names: list[str] = field(default_factory=list)  # the same, by job name (dry run)
    corr_name: str = ""
    job_ids: list[str] = field(default_factory=list)      # filled on submission


def dependency_string(after: list[str], after_corr: str) -> str:
    parts = []
    if after:
        parts.append("afterok:" + ":".join(after))
    if after_corr:
        parts.append(f"aftercorr:{after_corr}")
    return ",".join(parts)


def mem_string(gb: float) -> str:
    """sbatch --mem: a bare number means MB, so always say the unit."""
    return f"{int(gb)}G" if gb == int(gb) else f"{int(gb * 1024)}M"


def slurm_parameters(sub: Submission, profile: ClusterProfile, sweep_name: str) -> dict:
    r = sub.job.resources
    params = dict(job_name=f"{sweep_name}.{sub.job.name}", time=r.time_min, nodes=r.nodes,
                  ntasks_per_node=r.tasks_per_node, cpus_per_task=r.cpus_per_task, mem=mem_string(r.mem_gb),
                  signal_delay_s=profile.signal_lead_s, setup=list(r.setup),
                  array_parallelism=profile.array_parallelism, stderr_to_stdout=False,
                  additional_parameters={"requeue": True, **profile.extra_sbatch})
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(profile, key):
            params[key] = getattr(profile, key)
    if r.gpus_per_node:
        params["gpus_per_node"] = r.gpus_per_node
    if r.nodes * r.tasks_per_node > 1:
        # one crashed rank ends the step at once instead of the others hanging in a collective
        params["srun_args"] = ["--kill-on-bad-exit=1"]
    return params


def _callables(subs_tasks, sweep_dir, profile: ClusterProfile, r) -> list[StageTask]:
    return [StageTask(t, str(sweep_dir), "slurm", profile.max_crash_retries, r.time_min, profile.signal_lead_s)
            for t in subs_tasks]


def submit_slurm(subs: list[Submission], sweep_dir: Path, profile: ClusterProfile, sweep_name: str) -> None:
    """Submit in order; each job's dependency names the job ids its upstream got a moment ago."""
    from submitit import SlurmExecutor

    layout = SweepLayout(sweep_dir)
    ids_by_name: dict[str, str] = {}
    for sub in subs:
        sub.after += [ids_by_name[n] for n in sub.after_names if n in ids_by_name]
        if sub.corr_name and sub.corr_name in ids_by_name:
            sub.after_corr = ids_by_name[sub.corr_name]
        r = sub.job.resources
        folder = layout.jobs(sub.job.stage) / "submitit" / "%j"
        ex = SlurmExecutor(folder=folder, max_num_timeout=MAX_SUBMITIT_TIMEOUTS,
                           python=r.python or None)
        params = slurm_parameters(sub, profile, sweep_name)
        dep = dependency_string(sub.after, sub.after_corr)
        if dep:
            params["dependency"] = dep
        ex.update_parameters(**params)
        jobs = ex.submit_array(_callables(sub.tasks, sweep_dir, profile, r))
        sub.job_ids = [j.job_id for j in jobs]
        ids_by_name[sub.job.name] = sub.job_ids[0].split("_")[0]
        for task, jid in zip(sub.tasks, sub.job_ids):
            rec = records.record_path(sweep_dir, task.stage, task.key)
            records.add_event(rec, {"event": "submitted", "job_id": jid, "dependency": dep},
                              stage=task.stage, key=task.key, arm=task.arm, job_id=jid, state="submitted",
                              job_name=sub.job.name, crashes=0, error="", done_dir=task.done_dir,
                              argvs=[list(a) for a in task.argvs])  # the resolved stage command lines
        print(f"submitted {sub.job.name}: {len(jobs)} task(s) as {ids_by_name[sub.job.name]}"
              + (f"  [{dep}]" if dep else ""), flush=True)


MAX_SUBMITIT_TIMEOUTS = 20  # submitit's own cap on USR2-near-the-limit requeues (its default 3 is low)


def write_dry_run(subs: list[Submission], sweep_dir: Path, profile: ClusterProfile, sweep_name: str) -> Path:
    """The sbatch scripts submitit would submit (its own builder), plus dry-run.json; submits nothing.

    Dependencies on jobs of this submission read ``afterok:@<job name>`` (their ids do not exist yet).
    """
    from submitit.slurm.slurm import _make_sbatch_string

    out = SweepLayout(sweep_dir).root / "jobs" / "dry-run"
    summary = []
    for i, sub in enumerate(subs):
        r = sub.job.resources
        params = slurm_parameters(sub, profile, sweep_name)
        deps = dependency_string([f"@{n}" for n in sub.after_names] + sub.after,
                                 f"@{sub.corr_name}" if sub.corr_name else sub.after_corr)
        if deps:
            params["dependency"] = deps
        python = r.python or shlex.quote(sys.executable)
        folder = SweepLayout(sweep_dir).jobs(sub.job.stage) / "submitit" / "%j"
        text = _make_sbatch_string(command=f"{python} -u -m submitit.core._submit {shlex.quote(str(folder))}",
                                   folder=folder, map_count=len(sub.tasks) if len(sub.tasks) > 1 else None,
                                   **params)
        name = f"{i:03d}-{sub.job.name}.sbatch"
        atomic_write_text(out / name, text)
        summary.append({"script": name, "job": sub.job.name, "stage": sub.job.stage, "tasks": [t.key for t in sub.tasks],
                        "array_size": len(sub.tasks), "dependency": deps, "nodes": r.nodes,
                        "tasks_per_node": r.tasks_per_node, "gpus_per_node": r.gpus_per_node})
    atomic_write_json(out / "dry-run.json", summary)
    return out


def run_local(subs: list[Submission], sweep_dir: Path, profile: ClusterProfile, log_dir: Path | None = None) -> bool:
    """Run the graph here, job after job: one process per task (torchrun --standalone for N
    processes; with the profile's ``warm_start``, a single-process task is forked from an interpreter
    that has imported the stages' libraries, launch/warm.py), up to the profile's
    ``array_parallelism`` tasks of one job at once (as SLURM runs an array).

    Same sweep folder, same markers and records as SLURM; a requeue status re-runs the task
    (it resumes from its checkpoint), a crash is retried up to the profile's cap. With ``log_dir``,
    each task's output is also appended to ``<log_dir>/<key>.log`` (launch.single_task names it).
    """
    with (WarmStarter(_task_env(profile.env)) if profile.warm_start else contextlib.nullcontext()) as warm:
        return _run_jobs(subs, sweep_dir, profile, log_dir, warm)


def _run_jobs(subs: list[Submission], sweep_dir: Path, profile: ClusterProfile, log_dir: Path | None,
              warm: WarmStarter | None) -> bool:
    layout = SweepLayout(sweep_dir)
    failed: set[str] = set()
    for sub in subs:
        if set(sub.after_names) & failed or sub.corr_name in failed:
            print(f"skipping {sub.job.name}: an upstream job failed", flush=True)
            failed.add(sub.job.name)
            for task in sub.tasks:  # recorded, so status shows what blocks them
                records.update_record(records.record_path(sweep_dir, task.stage, task.key), stage=task.stage,
                                      key=task.key, arm=task.arm, state="pending", done_dir=task.done_dir)
            continue
        r = sub.job.resources

        def run_task(task) -> bool:
            st = StageTask(task, str(sweep_dir), "local", profile.max_crash_retries, r.time_min, profile.signal_lead_s)
            spec = layout.jobs(task.stage) / "tasks" / f"{task.key}.json"
            atomic_write_json(spec, st.to_json())
            python = r.python or sys.executable
            if r.processes > 1:  # --standalone: each torchrun finds its own free rendezvous port
                cmd = [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={r.processes}",
                       "-m", "launch.runtask", str(spec)]
            else:
                cmd = [python, "-m", "launch.runtask", str(spec)]
            log = log_dir / f"{task.key}.log" if log_dir is not None else None
            forked = warm is not None and r.processes == 1 and python == sys.executable
            return _run_with_retries(cmd, task, profile.max_crash_retries, profile.env, log,
                                     (lambda env: warm.run(spec, env, log)) if forked else None)

        with ThreadPoolExecutor(max_workers=max(1, min(profile.array_parallelism, len(sub.tasks)))) as pool:
            if not all(list(pool.map(run_task, sub.tasks))):  # list(): every task runs, failed or not
                failed.add(sub.job.name)
        print(f"{sub.job.name}: {'FAILED' if sub.job.name in failed else 'done'}", flush=True)
    return not failed


def _task_env(extra_env: dict) -> dict[str, str]:
    return {**os.environ, **{k: str(v) for k, v in extra_env.items()}, "PYTHONUNBUFFERED": "1"}


def _run_with_retries(cmd: list[str], task, max_crash_retries: int, extra_env: dict, log: Path | None = None,
                      forked=None) -> bool:
    """The task until it is done, requeued or out of retries; ``forked(env)`` runs it warm instead
    of ``cmd`` (launch/warm.py)."""
    crashes = 0
    while True:
        print(f"[local] {task.uid}: {' '.join(cmd[-3:])}{' (warm)' if forked else ''}", flush=True)
        env = _task_env(extra_env)
        rc = forked(env) if forked else _run_teeing(cmd, env, log)
        if rc == 0 and done(task):
            return True
        if rc == 0:  # exited cleanly but left no marker: a stage bug, not a retry case
            print(f"[local] {task.uid}: exited 0 without its completion marker in {task.done_dir}", flush=True)
            return False
        if rc == EXIT_REQUEUE:
            continue
        crashes += 1
        if crashes > max_crash_retries:
            return False


def _run_teeing(cmd: list[str], env: dict, log: Path | None) -> int:
    """The task's process; with ``log``, its output (stderr merged) also appended to that file."""
    if log is None:
        return subprocess.run(cmd, env=env).returncode
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh, subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            fh.write(line)
            fh.flush()
    sys.stdout.flush()
    return proc.returncode
