"""One launch task submitted alone to the local cluster, and what the suite reads back about it."""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

from tracecause.io import is_complete

from faults import inject
from faults.endpoint import FaultyEndpoint
from faults.scoreboard import Outcome, Scoreboard

TIMEOUT_S = 300


class StageJob:
    """A stage task through launch's real path (submitit array, StageTask, records, requeue)."""

    def __init__(self, sweep: Path, stage: str, key: str, argvs: list[list[str]], done_dir: Path, arm: str = ""):
        self.sweep, self.stage, self.key, self.argvs, self.done_dir, self.arm = sweep, stage, key, argvs, done_dir, arm
        self.job_id = ""

    def submit(self, max_crash_retries: int, tasks_per_node: int = 1, mem_gb: float = 2) -> str:
        from launch.executors import Submission, submit_slurm
        from launch.graph import Job, Resources, Task
        from launch.profiles import load_profile

        task = Task(self.stage, self.key, tuple(tuple(a) for a in self.argvs), str(self.done_dir), arm=self.arm)
        res = Resources(nodes=1, tasks_per_node=tasks_per_node, cpus_per_task=1, mem_gb=mem_gb, time_min=30)
        sub = Submission(Job(f"{self.stage}.faults", self.stage, [task], res), [task])
        profile = replace(load_profile("local-slurm"), max_crash_retries=max_crash_retries)
        submit_slurm([sub], self.sweep, profile, "faults")
        self.job_id = sub.job_ids[0]
        return self.job_id

    def rec(self) -> dict:
        from launch import records

        return records.read_record(records.record_path(self.sweep, self.stage, self.key))

    def logs(self) -> str:
        """Everything the attempts printed (a stage's own error message goes to its log)."""
        folder = self.sweep / "jobs" / self.stage / "submitit"
        return "\n".join(p.read_text(errors="replace") for p in sorted(folder.rglob("*.err"))) if folder.is_dir() else ""

    def error_text(self) -> str:
        return self.rec().get("error", "") + "\n" + self.logs()

    def running(self) -> bool:
        return bool(inject.rank_processes(self.job_id))

    def signal(self, sig: str) -> None:
        subprocess.run(["scancel", f"--signal={sig}", self.job_id], check=True, capture_output=True, timeout=60)

    def cancel(self) -> None:
        subprocess.run(["scancel", self.job_id], capture_output=True, timeout=60)

    def wait_end(self, timeout: float = TIMEOUT_S):
        from slurm.cluster import sacct_states

        return inject.wait_for(lambda: (s := sacct_states([self.job_id]).get(self.job_id)) and s.final and s,
                               timeout, f"{self.stage} job {self.job_id} to end", poll=1)

    def wait_crash(self, crashes_before: int) -> dict:
        return inject.wait_for(lambda: self.rec().get("crashes", 0) > crashes_before and self.rec(), TIMEOUT_S,
                               f"{self.stage} job {self.job_id} to crash")


def preempt_mid_requests(job: StageJob, endpoint: FaultyEndpoint, sig: str, board: Scoreboard) -> Outcome:
    """``scancel --signal`` while the task's requests to ``endpoint`` are in flight; it must be
    requeued and come back. ``lost`` holds, for now, the requests re-asked BEFORE this signal:
    ``attribute_reasked`` turns the counts into per-signal ones once the task has finished."""
    before = endpoint.total_delivered()
    inject.wait_for(lambda: endpoint.total_delivered() >= before + 3 and job.running(), TIMEOUT_S,
                    f"{job.stage} requests in flight before SIG{sig}")
    preemptions, attempts = job.rec().get("preemptions", 0), job.rec().get("attempts", 0)
    reasked_before = endpoint.duplicates()
    job.signal(sig)
    inject.wait_for(lambda: (job.rec().get("preemptions", 0) > preemptions
                             and job.rec().get("attempts", 0) > attempts and job.running())
                    or is_complete(job.done_dir), TIMEOUT_S, f"{job.stage} to come back after SIG{sig}")
    preempted = job.rec().get("preemptions", 0) > preemptions  # not finished before the signal landed
    return board.add(Outcome(f"SIG{sig} preemption", job.stage, preempted, reasked_before, "requests",
                             f"preemptions recorded: {job.rec().get('preemptions', 0)}"))


def attribute_reasked(rows: list[Outcome], endpoint: FaultyEndpoint) -> None:
    """``rows`` (in injection order) hold the re-asked count seen before each fault; each fault's own
    count is what accumulated until the next one (or the end)."""
    before = [r.lost for r in rows] + [endpoint.duplicates()]
    for i, row in enumerate(rows):
        row.lost = before[i + 1] - before[i]


def preempt_when(job: StageJob, ready, what: str, signals: tuple[str, ...], unit: str, board: Scoreboard,
                 note: str = "") -> list[Outcome]:
    """For each signal: wait until ``ready()`` (the attempt is where it should be hit, ``what``),
    ``scancel --signal`` it, and wait for the preemption to be recorded (or the task to end). One row
    per signal, survived iff the preemption was recorded; ``lost`` is left 0: the caller checks the
    finished output and fills it in."""
    rows = []
    for sig in signals:
        preemptions = job.rec().get("preemptions", 0)
        inject.wait_for(ready, TIMEOUT_S, f"{job.stage} {what} before SIG{sig}", poll=0.1)
        job.signal(sig)
        inject.wait_for(lambda: job.rec().get("preemptions", 0) > preemptions or is_complete(job.done_dir)
                        or job.rec().get("state") == "failed", TIMEOUT_S, f"{job.stage} to stop after SIG{sig}")
        recorded = job.rec().get("preemptions", 0)
        rows.append(board.add(Outcome(f"SIG{sig} preemption", job.stage, recorded > preemptions, 0, unit,
                                      f"preemptions recorded: {recorded}" + (f", {note}" if note else ""))))
    return rows


def preempt_while_held(job: StageJob, held_input: Path, signals: tuple[str, ...], unit: str,
                       board: Scoreboard) -> list[Outcome]:
    """A stage that finishes in a fraction of a second (the merge) is held mid-run on a stalled input
    (inject.stalled_input) and signalled there, once per signal, each attempt requeued and held
    again; the input is put back after the last signal and the task must then finish."""
    with inject.stalled_input(held_input):
        job.submit(max_crash_retries=0)
        try:
            return preempt_when(job, lambda: inject.held_on_stalled_input(job.job_id),
                                f"held on {held_input.name}", signals, unit, board,
                                f"held on {held_input.name} when signalled")
        except BaseException:
            job.cancel()
            raise
