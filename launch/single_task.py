"""One task outside any sweep, run by the machinery every sweep task uses, and waited for.

The task is a job of one (``launch.graph.Job``) handed to the executor the profile names: locally
``python -m launch.runtask <folder>/jobs/<stage>/tasks/<key>.json`` (launch.executors.run_local, its
output also kept in ``<folder>/jobs/<stage>/logs/<key>.log``), on SLURM a submitit array of one
(launch.executors.submit_slurm, its log under ``<folder>/jobs/<stage>/submitit/<job id>/``). Its record
is ``<folder>/jobs/<stage>/records/<key>.json``, as a sweep's. What ``tracecause demo`` pre-trains the
world's base with (launch/demo.py), so the launcher renders that job too, never runs the trainer itself.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tracecause.contracts import SweepLayout

from launch import failure, records
from launch.executors import Submission, run_local, submit_slurm
from launch.graph import Job, Resources, Task, done
from launch.profiles import ClusterProfile
from launch.submit import live_jobs


@dataclass(frozen=True)
class Outcome:
    ok: bool          # the task's outputs are complete (launch.graph.done)
    log: Path         # where its output went (what a failure message names)
    record: Path      # its state record: attempts, crashes, the last error, the stage command lines
    detail: str = ""  # why not, when it is not ok


def local_log(folder: Path, task: Task) -> Path:
    return SweepLayout(folder).jobs(task.stage) / "logs" / f"{task.key}.log"


def task_log(folder: Path, task: Task) -> Path:
    """The task's log: submitit's stderr file of rank 0 for a SLURM job (its job folder while the file
    is not there), else the local executor's copy."""
    job_id = str(records.read_record(records.record_path(folder, task.stage, task.key)).get("job_id") or "")
    if job_id and not job_id.startswith("local"):
        job_folder = SweepLayout(folder).jobs(task.stage) / "submitit" / job_id
        return failure.error_log(folder, task.stage, job_id) or job_folder
    return local_log(folder, task)


def run_single(task: Task, resources: Resources, folder: Path, profile: ClusterProfile, name: str,
               poll_s: float = 10.0) -> Outcome:
    """Run ``task`` (unless its outputs are complete already) on ``profile``'s executor and wait for it."""
    record = records.record_path(folder, task.stage, task.key)
    if done(task):
        return Outcome(True, task_log(folder, task), record)
    sub = Submission(Job(name, task.stage, [task], resources), [task])
    if profile.is_slurm:
        # a job of an earlier call still pending or running (its caller interrupted) is waited for, not
        # submitted again: a second job would only be refused by the first one's lease on the run folder
        if task.uid not in live_jobs({task.uid: records.read_record(record)}):
            submit_slurm([sub], folder, profile, name)
        detail = _wait_for_slurm(task, record, poll_s)
    else:
        local_log(folder, task).unlink(missing_ok=True)  # the log of this attempt, not of an older one
        run_local([sub], folder, profile, log_dir=local_log(folder, task).parent)
        detail = ""  # why is in the task's record (its error) and log
    if done(task):
        return Outcome(True, task_log(folder, task), record)
    error = (records.read_record(record).get("error") or "").strip().splitlines()
    return Outcome(False, task_log(folder, task), record, detail or (error[-1] if error else "it failed"))


def _wait_for_slurm(task: Task, record: Path, poll_s: float) -> str:
    """Wait while the task's job is pending or running (requeues included); "" once it ended, else why."""
    while not done(task):
        rec = records.read_record(record)
        if rec.get("state") == records.FAILED:  # its crash cap reached: no requeue will come
            return f"{task.uid} failed after {rec.get('crashes', 0)} crash(es)"
        if task.uid not in live_jobs({task.uid: rec}):
            return "" if done(task) else f"SLURM job {rec.get('job_id')} ended without finishing it"
        time.sleep(poll_s)
    return ""
